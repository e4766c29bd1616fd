// iproute2 and iptables as child processes, with failures that say which command failed and what
// the tool printed. The network setup they do happens once per daemon start or per pod with
// hostPorts, so a process per call costs nothing that matters, and the tools already carry the
// netlink and nf_tables encodings (and the xtables lock) berth would otherwise re-implement.
import { execFile } from "node:child_process";
import { InternalError } from "../errors";

/** A tool that exited non-zero; `stderr` is what it printed. */
export class HostToolError extends InternalError {
  constructor(
    readonly command: string,
    readonly stderr: string,
    /** The exit code, undefined when the tool did not run or was killed. */
    readonly exitCode: number | undefined,
    exit: string,
  ) {
    super(`${command} ${exit}${stderr ? `: ${stderr}` : ""}`);
  }
}

/** Runs `tool args…` (with `input` on stdin) and resolves with its stdout. */
export function runHostTool(tool: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const command = [tool, ...args].join(" ");
    const child = execFile(tool, args, { timeout: opts.timeoutMs ?? 30_000, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean; signal?: string };
      if (e.code === "ENOENT") return reject(new HostToolError(command, "", undefined, `cannot run: ${tool} is not installed (or not in PATH)`));
      const code = typeof e.code === "number" ? e.code : undefined;
      const exit = e.killed ? "timed out" : code !== undefined ? `exited with code ${code}` : `failed (${e.signal ?? e.code ?? e.message})`;
      reject(new HostToolError(command, String(stderr).trim(), code, exit));
    });
    // A tool that exits without reading stdin makes the write fail with EPIPE; its exit says more.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}
