// Writes the entries of one layer into the upper directory of a new snapshot, turning OCI
// whiteouts into overlayfs's: `.wh.<name>` becomes a 0/0 character device `<name>`,
// `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory. Parents are checked and
// made through PathGuard (safe-path.ts); files are created with O_EXCL|O_NOFOLLOW, and when the
// name is taken, whatever holds it is unlinked (a directory removed) before the next try.
//
// Decisions:
// - A hard link to a file that only a lower layer holds copies the file up first (as overlayfs
//   would on write) and links to the copy.
// - A whiteout for a name this same layer already wrote keeps the layer's own entry (whiteouts
//   only hide lower layers, per the image spec): a directory becomes opaque, a file stays.
// - A directory that replaces something this layer deleted or overwrote is made opaque, so the
//   lower layers' contents do not reappear under it.
// - trusted.overlay.* xattrs in a layer are dropped: only the whiteout conversion may steer
//   overlayfs. Xattrs the file system refuses (ENOTSUP, EPERM) are skipped, as Docker does.
// - Directory modes and times are applied after all entries: writing inside changes mtime.
// - File-system calls are synchronous, except writes of large pieces of data and the two that
//   can take long (removing a directory tree, copying up a lower file). Each is a page-cache or
//   inode operation of microseconds, and a trip through libuv's thread pool costs several times
//   that: 2000 small files took ~1 s with awaited calls and ~0.1 s with synchronous ones here.
//   The event loop still turns between the chunks the layer arrives in. Large writes are the
//   ones the kernel may hold up (dirty-page throttling), so they stay off the loop.
// - Every file is chowned and chmodded, even when it already has the entry's owner and mode:
//   skipping saved ~2 µs a file here, and whether a new file's group is ours depends on setgid
//   directories and the grpid mount option.
import { type BigIntStats, chmodSync, closeSync, constants as C, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readlinkSync, symlinkSync, unlinkSync, write, writeSync } from "node:fs";
import { copyFile, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { lgetxattr, llistxattr, lsetxattr, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from "../../linux/file-calls";
import { cleanPath, type DirMaker, isWhiteout, lstatMaybe, OPAQUE, PathGuard, parentOf, refuse, under } from "./safe-path";
import type { EntryData, EntryHandler, TarHeader } from "./tar-reader";

interface Times {
  atime: number;
  mtime: number;
}

function timesOf(h: TarHeader): Times {
  const mtime = h.pax?.mtime ? Number(h.pax.mtime) : (h.mtime?.getTime() ?? 0) / 1000;
  const atime = h.pax?.atime ? Number(h.pax.atime) : mtime;
  return { atime, mtime };
}

function idsOf(h: TarHeader): { uid: number; gid: number } {
  return { uid: h.pax?.uid ? Number(h.pax.uid) : (h.uid ?? 0), gid: h.pax?.gid ? Number(h.pax.gid) : (h.gid ?? 0) };
}

function majorOf(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

function minorOf(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** mkdir, or false when the name is taken (by a directory or anything else). */
function mkdirIfFree(path: string): boolean {
  try {
    mkdirSync(path, { mode: 0o700 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

/** Pieces of file data at least this large are written off the event loop. */
const ASYNC_WRITE_MIN = 64 * 1024;
/** Bytes of a file's data being written off the loop at once, before the reader waits. */
const MAX_IN_FLIGHT = 4 * 1024 * 1024;

/** pwrite of all of `buf` at `pos`, on the thread pool. */
async function writeAllAt(fd: number, buf: Buffer, pos: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    off += await new Promise<number>((resolve, reject) => {
      write(fd, buf, off, buf.length - off, pos + off, (err, n) => (err ? reject(err) : resolve(n)));
    });
  }
}

/**
 * The data of a regular file, then its metadata once the data is in. Large pieces are written
 * on the thread pool without waiting for each (positional writes do not depend on each other),
 * so hashing and parsing the next chunk overlap with copying this one into the page cache.
 */
class FileData implements EntryData {
  private pos = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private inFlightBytes = 0;
  /** The first error of a write that was not waited for. */
  private failed: { err: unknown } | undefined;
  /** end() took over the fd (and closes it, whatever happens). */
  closed = false;

  constructor(
    readonly fd: number,
    private readonly finishFile: (fd: number) => void,
  ) {}

  write(piece: Buffer): void | Promise<void> {
    if (this.failed) throw this.failed.err;
    const pos = this.pos;
    this.pos += piece.length;
    if (piece.length < ASYNC_WRITE_MIN) {
      let off = 0;
      while (off < piece.length) off += writeSync(this.fd, piece, off, piece.length - off, pos + off);
      return;
    }
    // Settles either way, so a failure is kept for later rather than left unhandled.
    const w: Promise<void> = writeAllAt(this.fd, piece, pos).then(
      () => this.landed(w, piece.length),
      (err) => {
        this.failed ??= { err };
        this.landed(w, piece.length);
      },
    );
    this.inFlight.add(w);
    this.inFlightBytes += piece.length;
    if (this.inFlightBytes >= MAX_IN_FLIGHT) return Promise.race(this.inFlight);
  }

  private landed(w: Promise<void>, n: number): void {
    this.inFlight.delete(w);
    this.inFlightBytes -= n;
  }

  /** Resolves once no write of this file is under way (they use its fd). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  end(): void | Promise<void> {
    if (this.inFlight.size > 0) return this.settled().then(() => this.end());
    if (this.failed) throw this.failed.err;
    this.closed = true;
    try {
      this.finishFile(this.fd);
    } finally {
      closeSync(this.fd);
    }
  }
}

export class LayerWriter implements EntryHandler {
  private readonly guard: PathGuard;
  /** Mode and times of directories, applied once every entry is in. */
  private readonly dirMeta = new Map<string, { mode: number } & Times>();
  /** The file last opened: abort() closes it if the layer fails before its end. */
  private open: FileData | undefined;
  private readonly maker: DirMaker = {
    plain: (rel) => this.mkdirPlain(rel),
    overWhiteout: (rel) => {
      unlinkSync(this.up(rel));
      this.mkdirPlain(rel);
      this.setOpaque(rel);
    },
    copyUp: (rel, layer) => this.copyUpDir(rel, layer),
  };

  constructor(dir: string, lowers: string[]) {
    this.guard = new PathGuard(dir, lowers);
  }

  private up(rel: string): string {
    return this.guard.up(rel);
  }

  private ensureDir(rel: string, entry: string, linkTarget?: string): void {
    this.guard.ensureDir(rel, entry, this.maker, linkTarget);
  }

  private setOpaque(rel: string): void {
    lsetxattr(this.up(rel), OPAQUE, Buffer.from("y"));
    this.guard.markOpaque(rel);
  }

  /** A directory no layer described: root-owned 0755, as Docker makes missing parents. */
  private mkdirPlain(rel: string): void {
    const path = this.up(rel);
    mkdirSync(path, { mode: 0o755 });
    chmodSync(path, 0o755);
    this.guard.markDir(rel);
  }

  /** A lower layer's directory made here with its owner, mode, times and xattrs, as overlayfs's copy-up does. */
  private copyUpDir(rel: string, layer: string): void {
    const src = join(layer, rel);
    const path = this.up(rel);
    const lst = lstatSync(src, { bigint: true });
    mkdirSync(path, { mode: 0o700 });
    this.guard.markDir(rel);
    lchownSync(path, Number(lst.uid), Number(lst.gid));
    this.copyXattrs(src, path);
    this.dirMeta.set(rel, { mode: Number(lst.mode) & 0o7777, atime: Number(lst.atimeNs) / 1e9, mtime: Number(lst.mtimeNs) / 1e9 });
  }

  private copyXattrs(src: string, dst: string): void {
    for (const name of llistxattr(src)) {
      if (name.startsWith("trusted.overlay.")) continue;
      const v = lgetxattr(src, name);
      if (v) this.setXattr(dst, name, v);
    }
  }

  private setXattr(path: string, name: string, value: Buffer): void {
    if (name.startsWith("trusted.overlay.")) return;
    try {
      lsetxattr(path, name, value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "EPERM") throw err;
    }
  }

  /**
   * Clears the name for a new entry, as tar does for a later entry of the same name: an existing
   * directory stays if the new entry is one too. Answers whether the directory stays, and whether
   * something this layer wrote was replaced (a new directory must then hide the lower layers).
   */
  private async clear(rel: string, newIsDir: boolean): Promise<{ keep: boolean; replaced: boolean }> {
    const path = this.up(rel);
    const st = lstatMaybe(path);
    if (!st) return { keep: false, replaced: false };
    if (st.isDirectory()) {
      if (newIsDir) {
        this.guard.markDir(rel);
        return { keep: true, replaced: false };
      }
      await rm(path, { recursive: true, force: true });
      this.guard.forget(rel);
      for (const k of this.dirMeta.keys()) if (under(k, rel)) this.dirMeta.delete(k);
      return { keep: false, replaced: true };
    }
    unlinkSync(path);
    return { keep: false, replaced: true };
  }

  /**
   * Makes a non-directory at `rel` with `make`, which fails with EEXIST when the name is taken;
   * then the name is cleared, as tar does for a later entry of the same name, and `make` runs
   * again. Trying first saves an lstat per entry: names are rarely taken twice in a layer.
   */
  private async create(rel: string, make: () => void): Promise<void> {
    try {
      make();
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    await this.clear(rel, false);
    make();
  }

  async entry(h: TarHeader, xattrs: Map<string, Buffer>): Promise<EntryData | undefined> {
    const entry = h.name;
    const rel = cleanPath(h.name, entry);
    const base = basename(rel);
    if (base.startsWith(".wh.")) {
      this.whiteout(rel, base, entry);
      return undefined;
    }
    const mode = (h.mode ?? 0) & 0o7777;
    const { uid, gid } = idsOf(h);
    const times = timesOf(h);
    const path = this.up(rel);

    if (h.type === "directory") {
      if (rel !== "") {
        this.ensureDir(parentOf(rel), entry);
        if (!mkdirIfFree(path)) {
          const { keep, replaced } = await this.clear(rel, true);
          if (!keep) mkdirSync(path, { mode: 0o700 });
          if (replaced) this.setOpaque(rel);
        }
        this.guard.markDir(rel);
      }
      lchownSync(path, uid, gid);
      for (const [k, v] of xattrs) this.setXattr(path, k, v);
      this.dirMeta.set(rel, { mode, ...times });
      return undefined;
    }
    if (rel === "") throw refuse(entry, `the layer root can only be a directory, not a ${h.type}`);
    this.ensureDir(parentOf(rel), entry);

    switch (h.type) {
      case "file":
      case "contiguous-file": {
        let fd = -1;
        await this.create(rel, () => {
          fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
        });
        this.open = new FileData(fd, (fd) => {
          // chown clears setuid bits and file capabilities, so it goes first.
          fchownSync(fd, uid, gid);
          fchmodSync(fd, mode);
          for (const [k, v] of xattrs) this.setXattr(path, k, v);
          futimesSync(fd, times.atime, times.mtime);
        });
        return this.open;
      }
      case "symlink": {
        await this.create(rel, () => symlinkSync(h.linkname ?? "", path));
        lchownSync(path, uid, gid);
        for (const [k, v] of xattrs) this.setXattr(path, k, v);
        lutimesSync(path, times.atime, times.mtime);
        return undefined;
      }
      case "link":
        await this.hardlink(rel, h.linkname, entry);
        return undefined;
      case "character-device":
      case "block-device":
      case "fifo": {
        const type = h.type === "fifo" ? S_IFIFO : h.type === "block-device" ? S_IFBLK : S_IFCHR;
        await this.create(rel, () => mknod(path, type | (mode & 0o777), h.devmajor ?? 0, h.devminor ?? 0));
        lchownSync(path, uid, gid);
        chmodSync(path, mode);
        for (const [k, v] of xattrs) this.setXattr(path, k, v);
        lutimesSync(path, times.atime, times.mtime);
        return undefined;
      }
      default:
        throw refuse(entry, `tar entry type "${h.type ?? "unknown"}" is not supported`);
    }
  }

  /** The layer failed: closes the file being written, if any, once no write uses its fd. */
  async abort(): Promise<void> {
    const data = this.open;
    this.open = undefined;
    if (!data || data.closed) return;
    await data.settled();
    try {
      closeSync(data.fd);
    } catch {
      // Closing is all that is left to do; the layer's own error is the one to report.
    }
  }

  private whiteout(rel: string, base: string, entry: string): void {
    const dirRel = parentOf(rel);
    if (base === ".wh..wh..opq") {
      this.ensureDir(dirRel, entry);
      this.setOpaque(dirRel);
      return;
    }
    // Other ".wh..wh." names are aufs bookkeeping (plnk, orph): not files of the image.
    if (base.startsWith(".wh..wh.")) return;
    const name = base.slice(".wh.".length);
    if (name === "" || name === "." || name === "..") throw refuse(entry, "a whiteout must name a file");
    this.ensureDir(dirRel, entry);
    const target = dirRel === "" ? name : `${dirRel}/${name}`;
    const st = lstatMaybe(this.up(target));
    if (!st) {
      mknod(this.up(target), S_IFCHR, 0, 0);
      return;
    }
    // Whiteouts hide lower layers only: what this layer wrote under the name stays.
    if (st.isDirectory()) this.setOpaque(target);
  }

  private async hardlink(rel: string, linkname: string | null | undefined, entry: string): Promise<void> {
    if (!linkname) throw refuse(entry, "a hard link without a target");
    const target = cleanPath(linkname, entry, "its hard link target");
    if (target === "") throw refuse(entry, "a hard link to the layer root");
    this.ensureDir(parentOf(target), entry, linkname);
    const tpath = this.up(target);
    const st = lstatMaybe(tpath);
    if (st?.isDirectory()) throw refuse(entry, `its hard link target "${linkname}" is a directory`);
    if (st && isWhiteout(st)) throw refuse(entry, `its hard link target "${linkname}" was deleted by this layer`);
    if (!st) {
      const low = this.guard.lowersVisible(target) ? this.guard.lowerInfo(target) : ({ kind: "absent" } as const);
      if (low.kind === "dir") throw refuse(entry, `its hard link target "${linkname}" is a directory`);
      if (low.kind === "absent") throw refuse(entry, `its hard link target "${linkname}" exists neither in this layer nor below`);
      await this.copyUp(target, low.layer, low.st, entry);
    }
    if (target === rel) return;
    this.ensureDir(parentOf(rel), entry);
    await this.create(rel, () => linkSync(tpath, this.up(rel)));
  }

  /** Copies a lower layer's non-directory into the upper dir, as overlayfs does before a change. */
  private async copyUp(rel: string, layer: string, st: BigIntStats, entry: string): Promise<void> {
    const src = join(layer, rel);
    const dst = this.up(rel);
    if (st.isFile()) await copyFile(src, dst, C.COPYFILE_EXCL);
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const type = st.isFIFO() ? S_IFIFO : st.isBlockDevice() ? S_IFBLK : S_IFCHR;
      mknod(dst, type | 0o600, majorOf(st.rdev), minorOf(st.rdev));
    } else throw refuse(entry, `its hard link target "${rel}" in a lower layer is a socket`);
    lchownSync(dst, Number(st.uid), Number(st.gid));
    if (!st.isSymbolicLink()) chmodSync(dst, Number(st.mode) & 0o7777);
    this.copyXattrs(src, dst);
    lutimesSync(dst, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9);
  }

  /** Directory modes and times last: every entry written inside changed them. */
  finish(): void {
    for (const [rel, m] of this.dirMeta) {
      const path = this.up(rel);
      const st = lstatMaybe(path);
      if (!st?.isDirectory()) continue;
      chmodSync(path, m.mode);
      lutimesSync(path, m.atime, m.mtime);
    }
  }
}
