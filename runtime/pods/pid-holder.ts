// A PID namespace shared by a pod's containers (shareProcessNamespace, CRI pid mode POD) needs a
// process to keep it: a PID namespace whose init has exited accepts no new process. Without a
// pause image, berth's holder is util-linux `unshare --pid --fork --kill-child` running a shell
// loop as PID 1 of the pod's namespace; the containers join it by /proc/PID/ns/pid. The shell
// waits for its `sleep` with wait(-1), so it also reaps what is orphaned inside the pod, within a
// second. It runs in its own session, so it outlives the daemon with the pod; killing `unshare`
// kills it. Its command line names the pod's directory, so a holder whose pod record was never
// written (a crash mid-RunPodSandbox) is found and ended by recovery.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { InternalError } from "../errors";
import { processStartTime } from "../oci/state-dir";

export interface PidHolder {
  /** The `unshare` process (berth's handle on the holder). */
  pid: number;
  startTime: string;
  /** The namespace containers join. */
  ns: string;
}

const MARK = "berth-pid-holder";

export async function startPidHolder(podId: string, podDir: string): Promise<PidHolder> {
  const script = "trap 'exit 0' TERM; while :; do sleep 1; done";
  const child = spawn("unshare", ["--pid", "--fork", "--kill-child=SIGKILL", "--", "/bin/sh", "-c", script, MARK, podDir], { detached: true, stdio: "ignore" });
  child.unref();
  const pid = child.pid;
  if (!pid) throw new InternalError(`pod ${podId.slice(0, 12)}: cannot start the holder of its PID namespace (unshare)`);
  for (let i = 0; i < 400; i++) {
    let children = "";
    try {
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    } catch {
      break;
    }
    if (children) {
      const inner = Number(children.split(" ")[0]);
      return { pid, startTime: processStartTime(pid) ?? "", ns: `/proc/${inner}/ns/pid` };
    }
    await sleep(5);
  }
  stopPidHolder({ pid, startTime: processStartTime(pid) ?? "", ns: "" });
  throw new InternalError(`pod ${podId.slice(0, 12)}: the holder of its PID namespace did not start`);
}

export function stopPidHolder(h: PidHolder | undefined): void {
  if (!h) return;
  // By PID, and only if it is still the process berth started (PIDs are reused).
  if (processStartTime(h.pid) !== h.startTime) return;
  try {
    process.kill(h.pid, "SIGKILL");
  } catch {}
}

/** Holders of pods under `podsDir` (STATE/pods) that are not in `known`: left by a crash; killed by PID. */
export function stopStrayPidHolders(podsDir: string, known: Set<string>): number[] {
  const killed: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith("unshare") || !argv.includes(MARK)) continue;
    const dir = argv[argv.indexOf(MARK) + 1] ?? "";
    if (!dir.startsWith(`${podsDir}/`) || known.has(dir.slice(podsDir.length + 1))) continue;
    try {
      process.kill(Number(e), "SIGKILL");
      killed.push(Number(e));
    } catch {}
  }
  return killed;
}
