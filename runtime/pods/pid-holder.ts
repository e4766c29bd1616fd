// A PID namespace shared by a pod's containers (shareProcessNamespace, CRI pid mode POD) needs a
// process to keep it: a PID namespace whose init has exited accepts no new process. Without a
// pause image, berth's holder is util-linux `unshare --pid --fork --kill-child sleep infinity`:
// `sleep` is PID 1 of the pod's namespace and the containers join it by /proc/PID/ns/pid. It runs
// in its own session, so it outlives the daemon with the pod; killing `unshare` kills it.
// Limit: `sleep` does not reap, so processes orphaned inside the pod stay zombies until the pod stops.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
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

export async function startPidHolder(podId: string): Promise<PidHolder> {
  const child = spawn("unshare", ["--pid", "--fork", "--kill-child=SIGKILL", "--", "sleep", "infinity"], { detached: true, stdio: "ignore" });
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
