// Work a request starts and does not wait for: what RemoveContainer leaves to do once the
// container is gone from the API — the runtime's state, conmon's files, the rootfs mount, the
// writable layer — as containerd leaves a removed container's snapshot to its garbage collector.
// Kept per pod: stopping or removing the pod waits for its containers' share (a pod cgroup cannot
// go while a container cgroup is below it), and the daemon waits for all of it before it exits.
// A crash in between is covered by the tombstone RemoveContainer writes first (recover.ts).
import type { Logger } from "../log";

export class BackgroundWork {
  private readonly pending = new Map<string, Set<Promise<void>>>();

  constructor(private readonly log: Logger) {}

  /** Runs `fn` for `key` without waiting; its failure is logged, with `what`. */
  start(key: string, what: string, fn: () => Promise<void>): void {
    const set = this.pending.get(key) ?? new Set<Promise<void>>();
    this.pending.set(key, set);
    // From a timer, not at once nor from setImmediate: the synchronous start of `fn` would run
    // before the HTTP/2 frames of the answer to the request that started it are flushed (Node
    // flushes them from an immediate queued after ours).
    const p: Promise<void> = new Promise<void>((resolve) => setTimeout(resolve, 0))
      .then(fn)
      .catch((err: unknown) => this.log.warn(`${what} failed; the next start of the daemon finishes it`, { error: (err as Error).message }))
      .finally(() => {
        set.delete(p);
        if (set.size === 0 && this.pending.get(key) === set) this.pending.delete(key);
      });
    set.add(p);
  }

  /** Waits for the work of `key`, or of every key. */
  async drain(key?: string): Promise<void> {
    for (;;) {
      const sets = key === undefined ? [...this.pending.values()] : [this.pending.get(key)].filter((s): s is Set<Promise<void>> => s !== undefined);
      const all = sets.flatMap((s) => [...s]);
      if (all.length === 0) return;
      await Promise.all(all);
    }
  }
}
