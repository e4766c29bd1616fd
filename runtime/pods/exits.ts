// Learning that a container exited: conmon writes the exit code into its exit dir; the monitor's
// watcher calls back, and a poll catches anything a watch missed. The exit is recorded once, with
// CRI's reason: OOMKilled when the kernel's OOM killer ended it, Completed for 0, Error otherwise.
import { openCgroupOf } from "./container-cgroup";
import { type PodContext, handlerFor } from "./context";
import { containerEvent } from "./container-status";
import { msToNanos } from "./time";
import type { ContainerRecord } from "./types";

const waiters = new WeakMap<PodContext, Map<string, Set<() => void>>>();

function waitersOf(ctx: PodContext): Map<string, Set<() => void>> {
  let m = waiters.get(ctx);
  if (!m) {
    m = new Map();
    waiters.set(ctx, m);
  }
  return m;
}

/** Wakes whoever waits on container `id` (the exit watcher calls this). */
export function notifyExit(ctx: PodContext, id: string): void {
  const set = waitersOf(ctx).get(id);
  if (!set) return;
  for (const w of set) w();
}

/** Records the exit if conmon has written it; true once the container is (already) exited. */
export async function recordExitIfAny(ctx: PodContext, rec: ContainerRecord): Promise<boolean> {
  if (rec.phase === "exited") return true;
  const exit = await ctx.monitor.exitOf(rec);
  if (!exit) return false;
  rec.phase = "exited";
  rec.exitCode = exit.exitCode;
  rec.finishedAt = msToNanos(exit.finishedAt);
  const oom = exit.oomKilled || (await oomKillsOf(ctx, rec)) > 0;
  rec.reason = oom ? "OOMKilled" : exit.exitCode === 0 ? "Completed" : "Error";
  if (exit.lost) {
    rec.message = exit.lost;
    ctx.log.error("a container's monitor died; its exit status is lost", { container: rec.config.metadata?.name, id: rec.id.slice(0, 12), conmonPid: rec.conmonPid });
  }
  await ctx.containers.put(rec);
  ctx.log.info("container exited", { container: rec.config.metadata?.name, id: rec.id.slice(0, 12), exitCode: rec.exitCode, reason: rec.reason });
  ctx.events.emit(containerEvent(ctx, rec, "CONTAINER_STOPPED_EVENT"));
  return true;
}

/**
 * The kernel's count of OOM kills in the container's cgroup: the cgroup is still there when the
 * exit is recorded (the runtime's delete comes with RemoveContainer), and catches what conmon's
 * own OOM watch can miss (a child process killed, the init then exiting on its own).
 */
async function oomKillsOf(ctx: PodContext, rec: ContainerRecord): Promise<number> {
  try {
    const cg = openCgroupOf(handlerFor(ctx, rec.runtimeHandler), rec.id, rec.cgroupsPath);
    return (await cg.stats()).memory.oomKills;
  } catch {
    return 0;
  }
}

/** Waits up to `ms` for the container's exit to be recorded; true if it was. */
export async function waitForExit(ctx: PodContext, rec: ContainerRecord, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  const map = waitersOf(ctx);
  for (;;) {
    if (await recordExitIfAny(ctx, rec)) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await new Promise<void>((resolve) => {
      let set = map.get(rec.id);
      if (!set) {
        set = new Set();
        map.set(rec.id, set);
      }
      const done = () => {
        clearTimeout(t);
        set!.delete(done);
        if (set!.size === 0) map.delete(rec.id);
        resolve();
      };
      // The poll: an inotify event can be missed (a watch set up after the write).
      const t = setTimeout(done, Math.min(left, 100));
      set.add(done);
    });
  }
}
