// Where a layer may write. Every entry path is cleaned lexically (a leading "/" or "./" dropped,
// as Docker does) and refused if it still climbs out; no parent of an entry may be a symlink,
// whether this layer planted it or a lower layer holds it (lower layers are looked up top-down as
// overlayfs would merge them, honouring whiteouts and opaque directories). The checks are per
// path component with lstat rather than openat2(RESOLVE_BENEATH): nothing but the unpacker
// writes into a fresh upper directory while it runs, so what was checked stays true.
import { type BigIntStats, lstatSync, readlinkSync } from "node:fs";
import { join, posix } from "node:path";
import { DataLossError } from "../../errors";
import { lgetxattr } from "../../linux/file-calls";

export const OPAQUE = "trusted.overlay.opaque";

export function refuse(entry: string, why: string): DataLossError {
  return new DataLossError(`layer entry "${entry}": ${why}; the layer was not applied`);
}

/** Entry path relative to the layer root ("" is the root itself), or a refusal if it climbs out. */
export function cleanPath(name: string, entry: string, what = "its path"): string {
  if (name.includes("\0")) throw refuse(entry, `${what} contains a NUL byte`);
  let p = posix.normalize(name.replace(/^\/+/, "") || ".");
  if (p.endsWith("/")) p = p.slice(0, -1);
  if (p === "." || p === "") return "";
  if (p === ".." || p.startsWith("../")) throw refuse(entry, `${what} "${name}" leads outside the layer`);
  return p;
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf("/");
  return i < 0 ? "" : rel.slice(0, i);
}

function ancestorsOf(rel: string): string[] {
  const out = [""];
  let i = rel.indexOf("/");
  while (i >= 0) {
    out.push(rel.slice(0, i));
    i = rel.indexOf("/", i + 1);
  }
  return out;
}

/** Whether `rel` is `root` or lies below it. */
export function under(rel: string, root: string): boolean {
  return root === "" || rel === root || rel.startsWith(`${root}/`);
}

/** lstat, or undefined when nothing is there (or a parent is not a directory). */
export function lstatMaybe(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw err;
  }
}

/** overlayfs's whiteout: a 0/0 character device. */
export function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

function isOpaque(path: string): boolean {
  return lgetxattr(path, OPAQUE)?.toString() === "y";
}

export type LowerInfo =
  | { kind: "absent" }
  /** The lower layers whose directory merges into this one, top first. */
  | { kind: "dir"; layers: string[] }
  | { kind: "nondir"; layer: string; st: BigIntStats };

/** How a missing directory of the upper dir gets made; PathGuard.ensureDir decides which. */
export interface DirMaker {
  /** `rel` exists nowhere: a directory no layer described. */
  plain(rel: string): void;
  /** This layer deleted `rel` (a whiteout is there): the directory it now needs starts empty. */
  overWhiteout(rel: string): void;
  /** `rel` is a directory in lower layer `layer`: made here as overlayfs's copy-up would. */
  copyUp(rel: string, layer: string): void;
}

/** What the upper dir and the layers below hold, as far as the entries written so far needed to know. */
export class PathGuard {
  /** Directories of the upper dir known to be real directories (checked or made by us). */
  private readonly upperDirs = new Set<string>([""]);
  /** Upper directories that hide everything below them. */
  private readonly upperOpaque = new Set<string>();
  private readonly lowerCache = new Map<string, LowerInfo>();

  constructor(
    private readonly dir: string,
    private readonly lowers: string[],
  ) {}

  /** The path of `rel` in the upper dir. */
  up(rel: string): string {
    return rel === "" ? this.dir : join(this.dir, rel);
  }

  /** `rel` is a real directory of the upper dir. */
  markDir(rel: string): void {
    this.upperDirs.add(rel);
  }

  /** `rel` is an opaque directory of the upper dir: nothing below it shows through. */
  markOpaque(rel: string): void {
    this.upperOpaque.add(rel);
  }

  /** `rel` and everything under it are gone from the upper dir. */
  forget(rel: string): void {
    for (const set of [this.upperDirs, this.upperOpaque]) {
      for (const k of set) if (under(k, rel) && k !== "") set.delete(k);
    }
  }

  /** What the committed layers below show at `rel`, merged as overlayfs would. */
  lowerInfo(rel: string): LowerInfo {
    const cached = this.lowerCache.get(rel);
    if (cached) return cached;
    let info: LowerInfo;
    if (rel === "") {
      const layers: string[] = [];
      for (const l of this.lowers) {
        layers.push(l);
        if (isOpaque(l)) break;
      }
      info = { kind: "dir", layers };
    } else {
      const parent = this.lowerInfo(parentOf(rel));
      info = { kind: "absent" };
      if (parent.kind === "dir") {
        const layers: string[] = [];
        for (const l of parent.layers) {
          const st = lstatMaybe(join(l, rel));
          if (!st) continue;
          if (isWhiteout(st)) break;
          if (!st.isDirectory()) {
            if (layers.length === 0) info = { kind: "nondir", layer: l, st };
            break;
          }
          layers.push(l);
          if (isOpaque(join(l, rel))) break;
        }
        if (layers.length > 0) info = { kind: "dir", layers };
      }
    }
    this.lowerCache.set(rel, info);
    return info;
  }

  /** Whether the lower layers show through at `rel` (no opaque directory of this layer above it). */
  lowersVisible(rel: string): boolean {
    return !ancestorsOf(rel).some((a) => this.upperOpaque.has(a));
  }

  /**
   * Makes `rel` a real directory of the upper dir that entries may be written into: made through
   * `maker` as needed, refused if it is a symlink or not a directory here or in the layers below.
   */
  ensureDir(rel: string, entry: string, maker: DirMaker, linkTarget?: string): void {
    if (this.upperDirs.has(rel)) return;
    this.ensureDir(parentOf(rel), entry, maker, linkTarget);
    const subject = linkTarget === undefined ? `its parent "${rel}"` : `its hard link target "${linkTarget}" goes through "${rel}", which`;
    const path = this.up(rel);
    const st = lstatMaybe(path);
    if (st?.isDirectory()) {
      this.upperDirs.add(rel);
      return;
    }
    if (st?.isSymbolicLink()) {
      throw refuse(entry, `${subject} is a symlink to "${readlinkSync(path)}" that this layer made, and a layer may not write through a symlink`);
    }
    if (st && !isWhiteout(st)) throw refuse(entry, `${subject} is not a directory in this layer`);
    if (st) {
      maker.overWhiteout(rel);
      this.upperDirs.add(rel);
      return;
    }
    const low = this.lowersVisible(rel) ? this.lowerInfo(rel) : ({ kind: "absent" } as const);
    if (low.kind === "nondir") {
      const where = `in a lower layer (${low.layer})`;
      if (low.st.isSymbolicLink()) {
        throw refuse(entry, `${subject} is a symlink to "${readlinkSync(join(low.layer, rel))}" ${where}, and a layer may not write through a symlink`);
      }
      throw refuse(entry, `${subject} is not a directory ${where}`);
    }
    if (low.kind === "absent") maker.plain(rel);
    else maker.copyUp(rel, low.layers[0]!);
    this.upperDirs.add(rel);
  }
}
