// Writes the entries of one layer into the upper directory of a new snapshot, turning OCI
// whiteouts into overlayfs's: `.wh.<name>` becomes a 0/0 character device `<name>`,
// `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory. Parents are checked and
// made through PathGuard (safe-path.ts); files are created with O_EXCL|O_NOFOLLOW after whatever
// held the name was unlinked.
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
import { type BigIntStats, constants as C } from "node:fs";
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, open, readlink, rm, symlink, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { lgetxattr, llistxattr, lsetxattr, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from "../../linux/file-calls";
import { cleanPath, type DirMaker, isWhiteout, lstatMaybe, OPAQUE, PathGuard, parentOf, refuse, under } from "./safe-path";

/** A tar entry's header, as tar-stream decodes it. */
export interface EntryHeader {
  name: string;
  type?: string | null;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string | null;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string> | null;
  byteOffset?: number;
}

interface Times {
  atime: number;
  mtime: number;
}

function timesOf(h: EntryHeader): Times {
  const mtime = h.pax?.mtime ? Number(h.pax.mtime) : (h.mtime?.getTime() ?? 0) / 1000;
  const atime = h.pax?.atime ? Number(h.pax.atime) : mtime;
  return { atime, mtime };
}

function idsOf(h: EntryHeader): { uid: number; gid: number } {
  return { uid: h.pax?.uid ? Number(h.pax.uid) : (h.uid ?? 0), gid: h.pax?.gid ? Number(h.pax.gid) : (h.gid ?? 0) };
}

function majorOf(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}

function minorOf(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

export class LayerWriter {
  private readonly guard: PathGuard;
  /** Mode and times of directories, applied once every entry is in. */
  private readonly dirMeta = new Map<string, { mode: number } & Times>();
  private readonly maker: DirMaker = {
    plain: (rel) => this.mkdirPlain(rel),
    overWhiteout: async (rel) => {
      await unlink(this.up(rel));
      await this.mkdirPlain(rel);
      await this.setOpaque(rel);
    },
    copyUp: (rel, layer) => this.copyUpDir(rel, layer),
  };

  constructor(dir: string, lowers: string[]) {
    this.guard = new PathGuard(dir, lowers);
  }

  private up(rel: string): string {
    return this.guard.up(rel);
  }

  private ensureDir(rel: string, entry: string, linkTarget?: string): Promise<void> {
    return this.guard.ensureDir(rel, entry, this.maker, linkTarget);
  }

  private async setOpaque(rel: string): Promise<void> {
    lsetxattr(this.up(rel), OPAQUE, Buffer.from("y"));
    this.guard.markOpaque(rel);
  }

  /** A directory no layer described: root-owned 0755, as Docker makes missing parents. */
  private async mkdirPlain(rel: string): Promise<void> {
    const path = this.up(rel);
    await mkdir(path, { mode: 0o755 });
    await chmod(path, 0o755);
    this.guard.markDir(rel);
  }

  /** A lower layer's directory made here with its owner, mode, times and xattrs, as overlayfs's copy-up does. */
  private async copyUpDir(rel: string, layer: string): Promise<void> {
    const src = join(layer, rel);
    const path = this.up(rel);
    const lst = await lstat(src, { bigint: true });
    await mkdir(path, { mode: 0o700 });
    this.guard.markDir(rel);
    await lchown(path, Number(lst.uid), Number(lst.gid));
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
    const st = await lstatMaybe(path);
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
    await unlink(path);
    return { keep: false, replaced: true };
  }

  async apply(h: EntryHeader, data: AsyncIterable<unknown>, xattrs: Map<string, Buffer>): Promise<void> {
    const entry = h.name;
    const rel = cleanPath(h.name, entry);
    const base = basename(rel);
    if (base.startsWith(".wh.")) return this.whiteout(rel, base, entry);
    const mode = (h.mode ?? 0) & 0o7777;
    const { uid, gid } = idsOf(h);
    const times = timesOf(h);
    const path = this.up(rel);

    if (h.type === "directory") {
      if (rel !== "") {
        await this.ensureDir(parentOf(rel), entry);
        const { keep, replaced } = await this.clear(rel, true);
        if (!keep) {
          await mkdir(path, { mode: 0o700 });
          this.guard.markDir(rel);
          if (replaced) await this.setOpaque(rel);
        }
      }
      await lchown(path, uid, gid);
      for (const [k, v] of xattrs) this.setXattr(path, k, v);
      this.dirMeta.set(rel, { mode, ...times });
      return;
    }
    if (rel === "") throw refuse(entry, `the layer root can only be a directory, not a ${h.type}`);
    await this.ensureDir(parentOf(rel), entry);

    switch (h.type) {
      case "file":
      case "contiguous-file": {
        await this.clear(rel, false);
        const fh = await open(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
        try {
          let pos = 0;
          for await (const chunk of data) {
            const buf = chunk as Buffer;
            let off = 0;
            while (off < buf.length) {
              const { bytesWritten } = await fh.write(buf, off, buf.length - off, pos);
              off += bytesWritten;
              pos += bytesWritten;
            }
          }
          // chown clears setuid bits and file capabilities, so it goes first.
          await fh.chown(uid, gid);
          await fh.chmod(mode);
          for (const [k, v] of xattrs) this.setXattr(path, k, v);
          await fh.utimes(times.atime, times.mtime);
        } finally {
          await fh.close();
        }
        return;
      }
      case "symlink": {
        await this.clear(rel, false);
        await symlink(h.linkname ?? "", path);
        await lchown(path, uid, gid);
        for (const [k, v] of xattrs) this.setXattr(path, k, v);
        await lutimes(path, times.atime, times.mtime);
        return;
      }
      case "link":
        return this.hardlink(rel, h.linkname, entry);
      case "character-device":
      case "block-device":
      case "fifo": {
        await this.clear(rel, false);
        const type = h.type === "fifo" ? S_IFIFO : h.type === "block-device" ? S_IFBLK : S_IFCHR;
        mknod(path, type | (mode & 0o777), h.devmajor ?? 0, h.devminor ?? 0);
        await lchown(path, uid, gid);
        await chmod(path, mode);
        for (const [k, v] of xattrs) this.setXattr(path, k, v);
        await lutimes(path, times.atime, times.mtime);
        return;
      }
      default:
        throw refuse(entry, `tar entry type "${h.type ?? "unknown"}" is not supported`);
    }
  }

  private async whiteout(rel: string, base: string, entry: string): Promise<void> {
    const dirRel = parentOf(rel);
    if (base === ".wh..wh..opq") {
      await this.ensureDir(dirRel, entry);
      await this.setOpaque(dirRel);
      return;
    }
    // Other ".wh..wh." names are aufs bookkeeping (plnk, orph): not files of the image.
    if (base.startsWith(".wh..wh.")) return;
    const name = base.slice(".wh.".length);
    if (name === "" || name === "." || name === "..") throw refuse(entry, "a whiteout must name a file");
    await this.ensureDir(dirRel, entry);
    const target = dirRel === "" ? name : `${dirRel}/${name}`;
    const st = await lstatMaybe(this.up(target));
    if (!st) {
      mknod(this.up(target), S_IFCHR, 0, 0);
      return;
    }
    // Whiteouts hide lower layers only: what this layer wrote under the name stays.
    if (st.isDirectory()) await this.setOpaque(target);
  }

  private async hardlink(rel: string, linkname: string | null | undefined, entry: string): Promise<void> {
    if (!linkname) throw refuse(entry, "a hard link without a target");
    const target = cleanPath(linkname, entry, "its hard link target");
    if (target === "") throw refuse(entry, "a hard link to the layer root");
    await this.ensureDir(parentOf(target), entry, linkname);
    const tpath = this.up(target);
    const st = await lstatMaybe(tpath);
    if (st?.isDirectory()) throw refuse(entry, `its hard link target "${linkname}" is a directory`);
    if (st && isWhiteout(st)) throw refuse(entry, `its hard link target "${linkname}" was deleted by this layer`);
    if (!st) {
      const low = this.guard.lowersVisible(target) ? await this.guard.lowerInfo(target) : ({ kind: "absent" } as const);
      if (low.kind === "dir") throw refuse(entry, `its hard link target "${linkname}" is a directory`);
      if (low.kind === "absent") throw refuse(entry, `its hard link target "${linkname}" exists neither in this layer nor below`);
      await this.copyUp(target, low.layer, low.st, entry);
    }
    if (target === rel) return;
    await this.ensureDir(parentOf(rel), entry);
    await this.clear(rel, false);
    await link(tpath, this.up(rel));
  }

  /** Copies a lower layer's non-directory into the upper dir, as overlayfs does before a change. */
  private async copyUp(rel: string, layer: string, st: BigIntStats, entry: string): Promise<void> {
    const src = join(layer, rel);
    const dst = this.up(rel);
    if (st.isFile()) await copyFile(src, dst, C.COPYFILE_EXCL);
    else if (st.isSymbolicLink()) await symlink(await readlink(src), dst);
    else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const type = st.isFIFO() ? S_IFIFO : st.isBlockDevice() ? S_IFBLK : S_IFCHR;
      mknod(dst, type | 0o600, majorOf(st.rdev), minorOf(st.rdev));
    } else throw refuse(entry, `its hard link target "${rel}" in a lower layer is a socket`);
    await lchown(dst, Number(st.uid), Number(st.gid));
    if (!st.isSymbolicLink()) await chmod(dst, Number(st.mode) & 0o7777);
    this.copyXattrs(src, dst);
    await lutimes(dst, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9);
  }

  /** Directory modes and times last: every entry written inside changed them. */
  async finish(): Promise<void> {
    for (const [rel, m] of this.dirMeta) {
      const path = this.up(rel);
      const st = await lstatMaybe(path);
      if (!st?.isDirectory()) continue;
      await chmod(path, m.mode);
      await lutimes(path, m.atime, m.mtime);
    }
  }
}
