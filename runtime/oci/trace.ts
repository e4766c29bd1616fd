// Step timestamps for bench/runtime.ts: with BERTH_TRACE=FILE in the environment, `berth runtime`
// (launcher, init and start alike) appends one line per step, "PID NANOSECONDS LABEL", on
// CLOCK_MONOTONIC (comparable across processes). The variable is read once, at load: when it is
// unset a mark is one comparison. The init keeps the file open (it is not reachable after
// pivot_root); the fd is close-on-exec, so it never reaches the container's program.
import { openSync, writeSync } from "node:fs";

const file = process.env.BERTH_TRACE || undefined;
let fd: number | undefined;

export function trace(label: string): void {
  if (file === undefined) return;
  const now = process.hrtime.bigint();
  let lines = "";
  if (fd === undefined) {
    fd = openSync(file, "a");
    // This process's own start-up, from Node's milestones (ms after its time origin, the start of main()).
    const origin = now - BigInt(Math.round(performance.now() * 1e6));
    const t = performance.nodeTiming;
    for (const [name, ms] of [["node:start", 0], ["node:v8", t.v8Start], ["node:environment", t.environment], ["node:bootstrapped", t.bootstrapComplete]] as const) {
      lines += `${process.pid} ${origin + BigInt(Math.round(ms * 1e6))} ${name}\n`;
    }
  }
  lines += `${process.pid} ${now} ${label}\n`;
  writeSync(fd, lines);
}

/** The environment entry that carries tracing into the init stage (whose environment is otherwise PATH only). */
export function traceEnv(): Record<string, string> {
  return file === undefined ? {} : { BERTH_TRACE: file };
}
