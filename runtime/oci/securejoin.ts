// Paths inside a container's rootfs, resolved as the container would see them: `root` acts as
// `/`, symlinks are followed but an absolute target restarts at `root` and `..` stops at `root`
// (cyphar/filepath-securejoin's SecureJoin, which runc uses). The answer is a host path that is
// under `root` when it is returned; nothing stops the rootfs from changing afterwards, which is
// acceptable here because the init resolves its mount points before any container process runs.
import { lstatSync, mkdirSync, readlinkSync } from "node:fs";
import { posix } from "node:path";
import { FailedPreconditionError, InternalError, InvalidArgumentError } from "../errors";
import { ErrnoError } from "../linux/types";

/** As filepath-securejoin (and Linux's own MAXSYMLINKS-style limit): more links than this is a loop. */
export const MAX_SYMLINKS = 255;

const ELOOP = 40;

function cleanRoot(root: string): string {
  if (!root.startsWith("/")) throw new InvalidArgumentError(`rootfs "${root}" must be an absolute path`);
  if (`/${root}/`.includes("/../")) throw new InvalidArgumentError(`rootfs "${root}" must not contain ".." components`);
  const clean = posix.normalize(root);
  return clean.length > 1 && clean.endsWith("/") ? clean.slice(0, -1) : clean;
}

/** `rel` ("/a/b", or "" for the root itself) as a host path below `root`. */
function hostPath(root: string, rel: string): string {
  if (rel === "") return root;
  return root === "/" ? rel : root + rel;
}

function lstatOrUndefined(path: string, root: string, unsafePath: string) {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    // A regular file in the middle of the path: nothing below it exists, as with ENOENT.
    if ((err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw new InternalError(`resolving "${unsafePath}" inside ${root}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * `unsafePath` resolved inside `root` as if `root` were `/`. Components that do not exist are
 * taken as they are written (the caller is about to create them).
 */
export function secureJoin(root: string, unsafePath: string): string {
  const base = cleanRoot(root);
  // `current` never holds a symlink or "..": each step appends one real component or pops one.
  let current = "";
  let remaining = unsafePath;
  let links = 0;
  while (remaining !== "") {
    const slash = remaining.indexOf("/");
    const part = slash < 0 ? remaining : remaining.slice(0, slash);
    remaining = slash < 0 ? "" : remaining.slice(slash + 1);
    if (part === "" || part === ".") continue;
    if (part === "..") {
      // Clamped: ".." at the root stays at the root, as it does for a chrooted process.
      current = current.slice(0, current.lastIndexOf("/"));
      continue;
    }
    const next = `${current}/${part}`;
    const full = hostPath(base, next);
    const st = lstatOrUndefined(full, base, unsafePath);
    if (!st?.isSymbolicLink()) {
      current = next;
      continue;
    }
    links++;
    if (links > MAX_SYMLINKS) {
      throw new InvalidArgumentError(`resolving "${unsafePath}" inside ${base}: more than ${MAX_SYMLINKS} symbolic links (ELOOP)`, {
        cause: new ErrnoError("ELOOP", ELOOP, "securejoin", hostPath(base, posix.normalize(`/${unsafePath}`))),
      });
    }
    const target = readlinkSync(full);
    // The link's target is read as if it were written in place of the link; an absolute one
    // starts over at the root, which is what keeps "/etc" inside the container.
    remaining = remaining === "" ? target : `${target}/${remaining}`;
    if (target.startsWith("/")) current = "";
  }
  return hostPath(base, current);
}

/**
 * Make the directory `path` (and its missing parents) inside `root`, following symlinks only as
 * secureJoin does. Each component is created, then lstat-checked, so a symlink that appears
 * after resolution is refused rather than followed out of the root. Returns the host path.
 */
export function mkdirAllInRoot(root: string, path: string, mode: number): string {
  const base = cleanRoot(root);
  const target = secureJoin(base, path);
  const rel = target.slice(base === "/" ? 0 : base.length);
  let current = base;
  for (const part of rel.split("/")) {
    if (part === "") continue;
    current = current === "/" ? `/${part}` : `${current}/${part}`;
    try {
      mkdirSync(current, mode & 0o7777);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new InternalError(`creating directory "${path}" inside ${base}: ${(err as Error).message}`, { cause: err });
      }
    }
    const st = lstatSync(current);
    if (st.isSymbolicLink()) {
      throw new FailedPreconditionError(`creating directory "${path}" inside ${base}: ${current} became a symbolic link while it was being created`);
    }
    if (!st.isDirectory()) {
      throw new FailedPreconditionError(`creating directory "${path}" inside ${base}: ${current} exists and is not a directory`);
    }
  }
  return target;
}
