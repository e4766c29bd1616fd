// Serialises work per key (one pod, one container, one image, one blob) while different keys run
// in parallel. `acquire` hands back the release for turns that span several calls (an ingest is
// held from open to commit); `run` is the usual scoped form.
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Waits for the key's turn; the returned function ends it (calling it twice is harmless). */
  async acquire(key: string): Promise<() => void> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
