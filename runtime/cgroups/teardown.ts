// The two ways a cgroup's life ends, shared by both drivers: signalling every process in it
// (kill --all) and removing its directories once it is empty.
import { constants } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { FailedPreconditionError, InvalidArgumentError } from "../errors";
import { allProcs, subCgroups, tryRmdir } from "./cgroupfs";

export function signalNumber(signal: number | NodeJS.Signals): number {
  if (typeof signal === "number") return signal;
  const n = constants.signals[signal];
  if (n === undefined) throw new InvalidArgumentError(`unknown signal ${signal}`);
  return n;
}

export interface Freezable {
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  pids(): Promise<number[]>;
}

/**
 * Signals every process, as runc's signalAllProcesses does without cgroup.kill: freeze first so
 * that nothing forks a child the loop would miss, then signal, then thaw so the signals land.
 */
export async function signalFrozen(group: Freezable, signal: number, warn: (m: string) => void): Promise<void> {
  let frozen = true;
  try {
    await group.freeze();
  } catch (err) {
    frozen = false;
    warn(`kill --all: could not freeze first, signalling a moving target: ${(err as Error).message}`);
  }
  try {
    for (const pid of await group.pids()) {
      try {
        process.kill(pid, signal);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") warn(`kill --all: kill ${pid}: ${(err as Error).message}`);
      }
    }
  } finally {
    if (frozen) await group.thaw();
  }
}

/**
 * Removes cgroup directories, sub-cgroups first. A cgroup whose last process is still exiting
 * refuses rmdir (EBUSY) for a moment, so each attempt is retried with backoff, as runc does. Live
 * processes are never killed here: after the retries the error lists them.
 */
export async function removeCgroupDirs(dirs: string[]): Promise<void> {
  let left = [...new Set(dirs)];
  let delay = 10;
  for (let attempt = 0; ; attempt++) {
    const failed: Array<{ dir: string; code: string }> = [];
    for (const dir of left) {
      for (const sub of subCgroups(dir)) tryRmdir(sub);
      const code = tryRmdir(dir);
      if (code) failed.push({ dir, code });
    }
    if (failed.length === 0) return;
    left = failed.map((f) => f.dir);
    if (attempt >= 5) {
      const detail = failed
        .map(({ dir, code }) => {
          const pids = allProcs(dir);
          return pids.length > 0 ? `${dir} still holds processes ${pids.join(", ")}` : `${dir}: ${code}`;
        })
        .join("; ");
      throw new FailedPreconditionError(`cannot remove cgroup: ${detail} (kill them first, e.g. kill --all)`);
    }
    await sleep(delay);
    delay *= 2;
  }
}
