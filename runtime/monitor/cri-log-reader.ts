// The CRI log format conmon writes (`-l k8s-file:PATH`): one record per line,
// `<RFC3339Nano> <stdout|stderr> <F|P> <content>`, where P marks a partial line that the next
// record of the same stream continues. ExecSync's output comes back through such a file.

export interface CriLogRecord {
  time: string;
  stream: "stdout" | "stderr";
  partial: boolean;
  content: string;
}

const LINE = /^(\S+) (stdout|stderr) ([FP]) (.*)$/s;

/** Parses one record; undefined for a line that is not one (a torn last line after a crash). */
export function parseCriLogLine(line: string): CriLogRecord | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  return { time: m[1]!, stream: m[2] as CriLogRecord["stream"], partial: m[3] === "P", content: m[4]! };
}

/** The bytes each stream carried: full lines get their newline back, partial ones are joined. */
export function streamsOf(text: string): { stdout: string; stderr: string } {
  const out = { stdout: "", stderr: "" };
  for (const line of text.split("\n")) {
    const r = parseCriLogLine(line);
    if (!r) continue;
    out[r.stream] += r.partial ? r.content : `${r.content}\n`;
  }
  return out;
}
