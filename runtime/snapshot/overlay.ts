// Overlay snapshotter. Every snapshot is a numbered directory with its metadata beside its files:
//   <root>/snapshots/<id>/fs          the layer's files (the upper dir while active)
//   <root>/snapshots/<id>/work        overlayfs's work dir (active snapshots only)
//   <root>/snapshots/<id>/meta.json   key, kind, parent, labels, written atomically
// meta.json is written last when a snapshot is made and removed first when it goes, so after a
// kill -9 a directory without it is half-made or half-removed, and cleanup() deletes it. Keys
// live only in meta.json (they are arbitrary strings: chain IDs, container IDs), so the index
// of keys is rebuilt by reading every meta.json on first use.
//
// Mounts, as containerd's overlayfs snapshotter makes them:
//   active, no parent       bind rw of fs
//   active on a parent      overlay index=off,workdir,upperdir,lowerdir=<parent chain, top first>
//   view of one layer       bind ro of that layer's fs
//   view of several layers  overlay with lowerdir only (overlayfs is read-only without an upper)
// index=off: the same committed layers are lowers of many mounts at once; with the index on,
// overlayfs records which lowers an upper was first mounted with and refuses other combinations.
//
// Limits: mount(2) takes at most one page of options (4095 bytes here), and overlayfs at most
// 500 lower layers. Lowers are absolute paths, about 30 bytes each under /var/lib/berth, so a
// chain of roughly 125 layers is the most this layout can mount; prepare() and view() refuse a
// longer chain with FAILED_PRECONDITION before making anything. containerd gets to ~500 by
// mounting from inside the snapshots directory with short relative paths; a Mount here carries
// no working directory, so berth does not.
import { constants as C, type Dirent } from "node:fs";
import { lstat, mkdir, open, readdir, readFile, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { AlreadyExistsError, DataLossError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../errors";
import { syncfs } from "../linux/file-calls";
import { ATOMIC_TEMP_PATTERN, fsyncDir, writeJsonAtomic } from "../store/atomic";
import { KeyedMutex } from "../sync/keyed-mutex";
import { type Mount, type SnapshotInfo, type SnapshotKind, type Snapshotter, UNPACKING_LABEL, type Usage } from "./types";

/** mount(2) copies one page of option data, NUL included. */
const MAX_MOUNT_DATA = 4095;
/** OVL_MAX_STACK in fs/overlayfs. */
const MAX_LOWER_LAYERS = 500;

interface Meta {
  v: 1;
  id: number;
  key: string;
  kind: SnapshotKind;
  parent?: string;
  labels: Record<string, string>;
  createdAt: number;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === "ENOENT";
}

function infoOf(m: Meta): SnapshotInfo {
  return { key: m.key, kind: m.kind, ...(m.parent !== undefined ? { parent: m.parent } : {}), labels: { ...m.labels }, createdAt: m.createdAt };
}

export class OverlaySnapshotter implements Snapshotter {
  readonly dir: string;
  private readonly byKey = new Map<string, Meta>();
  private nextId = 1;
  private loaded: Promise<void> | undefined;
  private readonly mu = new KeyedMutex();
  /** Keys this process made: a live unpack, never half-made from cleanup()'s point of view. */
  private readonly madeHere = new Set<string>();

  /** `root` is berth's state directory (e.g. /var/lib/berth); snapshots live in `<root>/snapshots`. */
  constructor(root: string) {
    this.dir = join(root, "snapshots");
    // Both separate mount options (",") and overlay layers (":"); escaping them is not worth it.
    if (/[,:]/.test(this.dir)) throw new InvalidArgumentError(`snapshot root ${this.dir} contains "," or ":", which overlay mount options cannot carry`);
  }

  private idDir(id: number): string {
    return join(this.dir, String(id));
  }

  private fsDir(m: Meta): string {
    return join(this.idDir(m.id), "fs");
  }

  private load(): Promise<void> {
    this.loaded ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      for (const id of await this.numberedDirs()) {
        this.nextId = Math.max(this.nextId, id + 1);
        const meta = await this.readMeta(id);
        if (meta) this.byKey.set(meta.key, meta);
      }
    })().catch((err) => {
      // A later call tries again rather than failing for the life of the process.
      this.loaded = undefined;
      this.byKey.clear();
      throw err;
    });
    return this.loaded;
  }

  private async numberedDirs(): Promise<number[]> {
    return (await readdir(this.dir)).filter((n) => /^[1-9][0-9]*$/.test(n)).map(Number);
  }

  /** The snapshot's metadata, or undefined when the directory is half-made (or half-removed). */
  private async readMeta(id: number): Promise<Meta | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.idDir(id), "meta.json"), "utf8");
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    let meta: Meta;
    try {
      meta = JSON.parse(text) as Meta;
    } catch (err) {
      // Written atomically, so only a damaged disk gets here; deleting the layer would hide that.
      throw new DataLossError(`snapshot metadata ${join(this.idDir(id), "meta.json")} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (meta.id !== id) throw new InvalidArgumentError(`snapshot metadata ${join(this.idDir(id), "meta.json")} names id ${meta.id}; was the directory renamed by hand?`);
    return meta;
  }

  private get(key: string): Meta {
    const m = this.byKey.get(key);
    if (!m) throw new NotFoundError(`snapshot "${key}" does not exist`);
    return m;
  }

  /** The committed chain a snapshot sits on, its parent first. */
  private chainBelow(m: Meta): Meta[] {
    const out: Meta[] = [];
    for (let p = m.parent; p !== undefined; ) {
      const pm = this.byKey.get(p);
      if (!pm) throw new NotFoundError(`snapshot "${m.key}": parent "${p}" is missing from the snapshot store`);
      out.push(pm);
      p = pm.parent;
    }
    return out;
  }

  private mountsOf(m: Meta): Mount[] {
    const lowers = this.chainBelow(m).map((p) => this.fsDir(p));
    const fs = this.fsDir(m);
    if (m.kind === "active" && lowers.length === 0) return [{ type: "bind", source: fs, options: ["rbind", "rw"] }];
    if (m.kind === "view" && lowers.length === 0) return [{ type: "bind", source: fs, options: ["rbind", "ro"] }];
    if (m.kind === "view" && lowers.length === 1) return [{ type: "bind", source: lowers[0]!, options: ["rbind", "ro"] }];
    if (m.kind === "committed") {
      // containerd refuses this; berth answers with what a view of the layer would mount (read-only).
      const all = [fs, ...lowers];
      if (all.length === 1) return [{ type: "bind", source: fs, options: ["rbind", "ro"] }];
      return [{ type: "overlay", source: "overlay", options: [`lowerdir=${all.join(":")}`] }];
    }
    const options =
      m.kind === "active"
        ? ["index=off", `workdir=${join(this.idDir(m.id), "work")}`, `upperdir=${fs}`, `lowerdir=${lowers.join(":")}`]
        : [`lowerdir=${lowers.join(":")}`];
    return [{ type: "overlay", source: "overlay", options }];
  }

  /** Refuses a chain that overlayfs or mount(2) could not take, before anything is made. */
  private checkMountable(key: string, kind: SnapshotKind, parent: Meta | undefined): void {
    if (!parent) return;
    // The id is not claimed yet; a 7-digit one makes the estimate err on the long side.
    const probe: Meta = { v: 1, id: this.nextId + 1_000_000, key, kind, parent: parent.key, labels: {}, createdAt: 0 };
    const layers = this.chainBelow(probe).length;
    if (layers > MAX_LOWER_LAYERS) {
      throw new FailedPreconditionError(`snapshot "${key}": its parent chain has ${layers} layers, more than the ${MAX_LOWER_LAYERS} overlayfs can stack`);
    }
    const [mount] = this.mountsOf(probe);
    const data = mount!.options.join(",");
    if (Buffer.byteLength(data) > MAX_MOUNT_DATA) {
      throw new FailedPreconditionError(
        `snapshot "${key}": mounting its ${layers} parent layers needs ${Buffer.byteLength(data)} bytes of overlay options, more than the ${MAX_MOUNT_DATA} mount(2) accepts; squash the image to fewer layers or use a shorter berth root than ${this.dir}`,
      );
    }
  }

  async stat(key: string): Promise<SnapshotInfo | undefined> {
    await this.load();
    const m = this.byKey.get(key);
    return m ? infoOf(m) : undefined;
  }

  prepare(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]> {
    return this.create("active", key, parent, labels);
  }

  view(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]> {
    return this.create("view", key, parent, labels);
  }

  private async create(kind: "active" | "view", key: string, parent: string | undefined, labels: Record<string, string> | undefined): Promise<Mount[]> {
    if (key === "") throw new InvalidArgumentError("a snapshot key must not be empty");
    await this.load();
    return this.mu.run("meta", async () => {
      if (this.byKey.has(key)) throw new AlreadyExistsError(`snapshot "${key}" already exists`);
      let parentMeta: Meta | undefined;
      if (parent !== undefined) {
        parentMeta = this.byKey.get(parent);
        if (!parentMeta) throw new NotFoundError(`cannot make snapshot "${key}": parent "${parent}" does not exist`);
        if (parentMeta.kind !== "committed") throw new FailedPreconditionError(`cannot make snapshot "${key}" on "${parent}": a parent must be committed, and it is ${parentMeta.kind}`);
      }
      this.checkMountable(key, kind, parentMeta);
      const id = await this.claimId();
      const dir = this.idDir(id);
      await mkdir(join(dir, "fs"), { mode: 0o755 });
      if (kind === "active") await mkdir(join(dir, "work"), { mode: 0o700 });
      await fsyncDir(dir);
      const meta: Meta = { v: 1, id, key, kind, ...(parent !== undefined ? { parent } : {}), labels: { ...labels }, createdAt: Date.now() };
      await writeJsonAtomic(join(dir, "meta.json"), meta);
      this.byKey.set(key, meta);
      this.madeHere.add(key);
      return this.mountsOf(meta);
    });
  }

  /** mkdir is the claim: a number already on disk (even half-made) is never reused. */
  private async claimId(): Promise<number> {
    for (;;) {
      const id = this.nextId++;
      try {
        await mkdir(this.idDir(id), { mode: 0o700 });
        await fsyncDir(this.dir);
        return id;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
    }
  }

  async mounts(key: string): Promise<Mount[]> {
    await this.load();
    return this.mountsOf(this.get(key));
  }

  async commit(name: string, key: string, labels?: Record<string, string>): Promise<void> {
    if (name === "") throw new InvalidArgumentError("a snapshot name must not be empty");
    await this.load();
    await this.mu.run("meta", async () => {
      const m = this.get(key);
      if (m.kind !== "active") throw new FailedPreconditionError(`cannot commit snapshot "${key}": only an active snapshot can be committed, and it is ${m.kind}`);
      if (this.byKey.has(name)) throw new AlreadyExistsError(`cannot commit "${key}" as "${name}": snapshot "${name}" already exists`);
      // Layers are written without an fsync per file; one syncfs makes them durable before the
      // metadata says they are complete.
      const fh = await open(this.fsDir(m), C.O_RDONLY | C.O_DIRECTORY);
      try {
        await syncfs(fh.fd, this.fsDir(m));
      } finally {
        await fh.close();
      }
      // Labels of the active snapshot describe the work in progress (e.g. an unpack), not the layer.
      const committed: Meta = { ...m, key: name, kind: "committed", labels: { ...labels }, createdAt: Date.now() };
      await writeJsonAtomic(join(this.idDir(m.id), "meta.json"), committed);
      this.byKey.delete(key);
      this.byKey.set(name, committed);
      this.madeHere.delete(key);
      this.madeHere.add(name);
    });
  }

  async remove(key: string): Promise<void> {
    await this.load();
    await this.mu.run("meta", async () => {
      const m = this.get(key);
      const children = [...this.byKey.values()].filter((c) => c.parent === key).map((c) => c.key);
      if (children.length > 0) {
        throw new FailedPreconditionError(`cannot remove snapshot "${key}": ${children.length} snapshot(s) still use it as parent (${children.slice(0, 5).join(", ")}${children.length > 5 ? ", …" : ""})`);
      }
      await this.removeDir(m.id);
      this.byKey.delete(key);
      this.madeHere.delete(key);
    });
  }

  /** Metadata first: from then on the directory is half-removed, and cleanup() finishes it. */
  private async removeDir(id: number): Promise<void> {
    const dir = this.idDir(id);
    await unlink(join(dir, "meta.json")).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
    await fsyncDir(dir).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
    await rm(dir, { recursive: true, force: true });
    await fsyncDir(this.dir);
  }

  async list(): Promise<SnapshotInfo[]> {
    await this.load();
    return [...this.byKey.values()].map(infoOf);
  }

  async usage(key: string): Promise<Usage> {
    await this.load();
    const root = this.fsDir(this.get(key));
    const seen = new Set<string>();
    const total: Usage = { bytes: 0, inodes: 0 };
    const count = async (path: string): Promise<boolean> => {
      const st = await lstat(path, { bigint: true }).catch((err) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (!st) return false;
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) return false;
      seen.add(id);
      total.inodes++;
      if (st.isFile()) total.bytes += Number(st.size);
      return st.isDirectory();
    };
    const walk = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      for (const e of entries) {
        const path = join(dir, e.name);
        if (await count(path)) await walk(path);
      }
    };
    if (await count(root)) await walk(root);
    return total;
  }

  async upperDir(key: string): Promise<string> {
    await this.load();
    const m = this.get(key);
    if (m.kind !== "active") throw new FailedPreconditionError(`snapshot "${key}" is ${m.kind}; only an active snapshot has a writable directory`);
    return this.fsDir(m);
  }

  async lowerDirs(key: string): Promise<string[]> {
    await this.load();
    return this.chainBelow(this.get(key)).map((p) => this.fsDir(p));
  }

  async cleanup(): Promise<string[]> {
    await this.load();
    return this.mu.run("meta", async () => {
      const removed: string[] = [];
      const known = new Set([...this.byKey.values()].map((m) => m.id));
      for (const id of await this.numberedDirs()) {
        if (!known.has(id)) await this.removeDir(id);
      }
      for (const m of [...this.byKey.values()]) {
        if (m.kind !== "active" || !(UNPACKING_LABEL in m.labels) || this.madeHere.has(m.key)) continue;
        await this.removeDir(m.id);
        this.byKey.delete(m.key);
        removed.push(m.key);
      }
      // Temp files of metadata writes a crash interrupted.
      for (const m of this.byKey.values()) {
        const names = await readdir(this.idDir(m.id)).catch((err) => {
          if (isNotFound(err)) return [] as string[];
          throw err;
        });
        for (const name of names) {
          if (ATOMIC_TEMP_PATTERN.test(name)) await rm(join(this.idDir(m.id), name), { force: true });
        }
      }
      return removed;
    });
  }
}
