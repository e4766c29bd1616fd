// One JSON file per pod or container (<dir>/<id>.json), written atomically, mirrored in memory.
// Loading tolerates what a crash can leave: temp files of an interrupted write are removed, and
// a file that does not parse is set aside (renamed *.corrupt) with a warning instead of stopping
// the daemon, so one bad record cannot take the others down.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { NotFoundError } from "../errors";
import type { Logger } from "../log";
import { ATOMIC_TEMP_PATTERN, fsyncDir, writeJsonAtomic } from "../store/atomic";

export class RecordStore<T extends { id: string }> {
  private readonly records = new Map<string, T>();
  private graveyardMade = false;

  constructor(
    private readonly dir: string,
    private readonly kind: string,
    private readonly log: Logger,
  ) {}

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (ATOMIC_TEMP_PATTERN.test(name)) {
        await unlink(path).catch(() => {});
        continue;
      }
      if (!name.endsWith(".json")) continue;
      try {
        const rec = JSON.parse(await readFile(path, "utf8")) as T;
        if (typeof rec.id !== "string" || `${rec.id}.json` !== name) throw new Error("its id does not match its file name");
        this.records.set(rec.id, rec);
      } catch (err) {
        this.log.warn(`${this.kind} record is unreadable; set aside`, { file: path, error: (err as Error).message });
        await rename(path, `${path}.corrupt`).catch(() => {});
      }
    }
  }

  get(id: string): T | undefined {
    return this.records.get(id);
  }

  /** The record, or NOT_FOUND naming the kind and id. */
  must(id: string): T {
    const rec = this.records.get(id);
    if (!rec) throw new NotFoundError(`${this.kind} "${id}" not found`);
    return rec;
  }

  list(): T[] {
    return [...this.records.values()];
  }

  /** Resolves a full id or a unique prefix (crictl accepts prefixes). */
  resolve(idOrPrefix: string): T | undefined {
    const exact = this.records.get(idOrPrefix);
    if (exact || idOrPrefix.length < 4) return exact;
    const matches = this.list().filter((r) => r.id.startsWith(idOrPrefix));
    return matches.length === 1 ? matches[0] : undefined;
  }

  async put(rec: T): Promise<void> {
    await writeJsonAtomic(join(this.dir, `${rec.id}.json`), rec, 0o600);
    this.records.set(rec.id, rec);
  }

  /**
   * Takes the record out of the store but keeps it on disk as a tombstone (<dir>/removing/<id>.json,
   * moved there by one rename): the object is gone for every reader at once, and what releasing
   * its resources has not finished when the daemon dies is finished from the tombstone at the next
   * start (retired, forgetRetired).
   */
  async retire(id: string): Promise<void> {
    const graveyard = join(this.dir, "removing");
    const move = () => rename(join(this.dir, `${id}.json`), join(graveyard, `${id}.json`));
    if (!this.graveyardMade) await mkdir(graveyard, { recursive: true, mode: 0o700 });
    this.graveyardMade = true;
    await move().catch(async (err: NodeJS.ErrnoException) => {
      // The directory was removed behind our back (the record itself is there: it is in memory).
      if (err.code !== "ENOENT" || !existsSync(join(this.dir, `${id}.json`))) throw err;
      await mkdir(graveyard, { recursive: true, mode: 0o700 });
      await move();
    });
    await fsyncDir(this.dir);
    this.records.delete(id);
  }

  /** The tombstones retire left (unreadable ones are dropped with a warning). */
  async retired(): Promise<T[]> {
    const graveyard = join(this.dir, "removing");
    const out: T[] = [];
    for (const name of await readdir(graveyard).catch(() => [] as string[])) {
      const path = join(graveyard, name);
      try {
        out.push(JSON.parse(await readFile(path, "utf8")) as T);
      } catch (err) {
        this.log.warn(`removed ${this.kind}'s tombstone is unreadable; dropped`, { file: path, error: (err as Error).message });
        await unlink(path).catch(() => {});
      }
    }
    return out;
  }

  async forgetRetired(id: string): Promise<void> {
    await unlink(join(this.dir, "removing", `${id}.json`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }

  async remove(id: string): Promise<void> {
    await unlink(join(this.dir, `${id}.json`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
    this.records.delete(id);
  }
}
