// `berth logs [-f] [--tail N] [--timestamps] CONTAINER`: the container's CRI log file (its path
// from ContainerStatus), stdout lines to stdout and stderr lines to stderr, partial lines joined,
// as `crictl logs`. -f follows the file, also when kubelet rotates it (ReopenContainerLog makes
// conmon write a new file at the same path).
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import type * as cri from "../../runtime/api/cri-v1";
import { parseCriLogLine } from "../../runtime/monitor/cri-log-reader";
import type { CliContext } from "../connect";
import { resolveContainer } from "./resolve";

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { follow: { type: "boolean", short: "f" }, tail: { type: "string" }, timestamps: { type: "boolean", short: "t" }, help: { type: "boolean", short: "h" } } });
  if (values.help || positionals.length !== 1) {
    (values.help ? ctx.out : ctx.err).write("usage: berth logs [-f] [--tail N] [--timestamps] CONTAINER\n");
    return values.help ? 0 : 2;
  }
  const client = await ctx.client();
  const c = await resolveContainer(client, positionals[0]!);
  const { status } = await client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: c.id });
  const path = status!.logPath;
  if (!path) throw new Error(`container ${c.id.slice(0, 13)} has no log file`);
  const partial = { stdout: "", stderr: "" };
  const emit = (line: string) => {
    const r = parseCriLogLine(line);
    if (!r) return;
    if (r.partial) {
      partial[r.stream] += r.content;
      return;
    }
    const text = `${values.timestamps ? `${r.time} ` : ""}${partial[r.stream]}${r.content}\n`;
    partial[r.stream] = "";
    (r.stream === "stdout" ? ctx.out : ctx.err).write(text);
  };
  let fd = openSync(path, "r");
  let ino = statSync(path).ino;
  let pos = 0;
  let buf = "";
  const readMore = (): boolean => {
    const chunk = Buffer.alloc(64 * 1024);
    let any = false;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n <= 0) break;
      pos += n;
      buf += chunk.subarray(0, n).toString();
      any = true;
    }
    return any;
  };
  readMore();
  let lines = buf.split("\n");
  buf = lines.pop() ?? "";
  if (values.tail !== undefined) lines = lines.slice(-Number(values.tail));
  for (const l of lines) emit(l);
  if (!values.follow) {
    closeSync(fd);
    if (buf) emit(buf);
    return 0;
  }
  for (;;) {
    await sleep(200);
    if (readMore()) {
      const ls = buf.split("\n");
      buf = ls.pop() ?? "";
      for (const l of ls) emit(l);
    }
    try {
      const st = statSync(path);
      if (st.ino !== ino) {
        // Rotated: finish the old file, go on with the new one from its start.
        closeSync(fd);
        fd = openSync(path, "r");
        ino = st.ino;
        pos = 0;
      }
    } catch {}
  }
}
