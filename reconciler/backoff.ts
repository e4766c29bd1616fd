// kubelet's crash-loop back-off: the first restart is immediate, then 10 s doubling to 5 min;
// a container that ran for 10 minutes starts a new streak. Keyed by pod uid and container name.
export const BACKOFF_INITIAL_MS = 10_000;
export const BACKOFF_MAX_MS = 300_000;
export const BACKOFF_RESET_AFTER_MS = 600_000;

interface Entry {
  delayMs: number;
  /** The exit this entry has already accounted for (its finishedAt, ms). */
  finishedAt: number;
  restartAt: number;
}

export class RestartBackoff {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly initialMs = BACKOFF_INITIAL_MS,
    private readonly maxMs = BACKOFF_MAX_MS,
    private readonly resetAfterMs = BACKOFF_RESET_AFTER_MS,
  ) {}

  /**
   * When the container that exited at `finishedAt` after starting at `startedAt` may restart.
   * Asking again about the same exit gives the same answer.
   */
  restartAt(key: string, startedAt: number, finishedAt: number): number {
    const e = this.entries.get(key);
    if (e && e.finishedAt === finishedAt) return e.restartAt;
    const ranLong = finishedAt - startedAt >= this.resetAfterMs;
    const delayMs = !e || ranLong ? 0 : e.delayMs;
    const restartAt = finishedAt + delayMs;
    this.entries.set(key, { delayMs: delayMs === 0 ? this.initialMs : Math.min(delayMs * 2, this.maxMs), finishedAt, restartAt });
    return restartAt;
  }

  /** The delay the next crash would wait (for status: "back-off 20s"). */
  currentDelayMs(key: string): number {
    return this.entries.get(key)?.delayMs ?? 0;
  }

  forget(prefix: string): void {
    for (const k of this.entries.keys()) if (k.startsWith(prefix)) this.entries.delete(k);
  }
}
