// libc file-system calls that node:fs lacks: device nodes and fifos (mknod), extended attributes
// on the link itself (l*xattr: never following a symlink), and syncfs. Declared on first use:
// loading koffi and binding functions costs milliseconds that most callers never need to pay.
import { getSystemErrorName } from "node:util";
import koffi from "koffi";

interface Calls {
  mknod(path: string, mode: number, dev: bigint): number;
  lsetxattr(path: string, name: string, value: Buffer, size: number, flags: number): number;
  lgetxattr(path: string, name: string, value: Buffer | null, size: number): number;
  llistxattr(path: string, list: Buffer | null, size: number): number;
  syncfs: { async(fd: number, cb: (err: unknown, res: number) => void): void };
}

let calls: Calls | undefined;

function libc(): Calls {
  if (calls) return calls;
  const lib = koffi.load("libc.so.6");
  calls = {
    mknod: lib.func("int mknod(const char *path, uint32_t mode, uint64_t dev)"),
    lsetxattr: lib.func("int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)"),
    lgetxattr: lib.func("long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)"),
    llistxattr: lib.func("long llistxattr(const char *path, _Out_ void *list, size_t size)"),
    syncfs: lib.func("int syncfs(int fd)"),
  };
  return calls;
}

/** An Error shaped like node:fs's (code, errno, syscall, path), so callers handle both alike. */
function errnoError(syscall: string, path: string, detail?: string): NodeJS.ErrnoException {
  const errno = koffi.errno();
  const code = getSystemErrorName(-errno);
  const err: NodeJS.ErrnoException = new Error(`${code}: ${syscall} failed, '${path}'${detail ? ` (${detail})` : ""}`);
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  err.path = path;
  return err;
}

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** glibc's makedev: the 64-bit dev_t layout the kernel decodes. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffn) << 8n) | ((ma & 0xfffff000n) << 32n) | (mi & 0xffn) | ((mi & 0xffffff00n) << 12n);
}

/** `mode` holds the file type (S_IFCHR, S_IFBLK, S_IFIFO) and permission bits (the umask applies). */
export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  if (libc().mknod(path, mode, makedev(major, minor)) !== 0) throw errnoError("mknod", path);
}

export function lsetxattr(path: string, name: string, value: Uint8Array): void {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (libc().lsetxattr(path, name, buf, buf.length, 0) !== 0) throw errnoError("lsetxattr", path, name);
}

/** The attribute's value, or undefined when the file does not carry it. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const c = libc();
  // Sized first, then read; retried because the value may grow in between.
  for (;;) {
    const size = c.lgetxattr(path, name, null, 0);
    if (size < 0) {
      if (koffi.errno() === 61 /* ENODATA */) return undefined;
      throw errnoError("lgetxattr", path, name);
    }
    const buf = Buffer.alloc(size);
    if (size === 0) return buf;
    const got = c.lgetxattr(path, name, buf, size);
    if (got >= 0) return buf.subarray(0, got);
    if (koffi.errno() !== 34 /* ERANGE */) throw errnoError("lgetxattr", path, name);
  }
}

export function llistxattr(path: string): string[] {
  const c = libc();
  for (;;) {
    const size = c.llistxattr(path, null, 0);
    if (size < 0) throw errnoError("llistxattr", path);
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const got = c.llistxattr(path, buf, size);
    if (got >= 0) return buf.subarray(0, got).toString("utf8").split("\0").filter((n) => n !== "");
    if (koffi.errno() !== 34 /* ERANGE */) throw errnoError("llistxattr", path);
  }
}

/**
 * Flush every dirty page of the file system holding `fd`: one call instead of an fsync per file
 * of a layer. Runs on koffi's worker thread, as it may take seconds on a busy disk.
 */
export function syncfs(fd: number, pathForErrors: string): Promise<void> {
  return new Promise((resolve, reject) => {
    libc().syncfs.async(fd, (err, res) => {
      if (err) reject(err);
      else if (res !== 0) reject(errnoError("syncfs", pathForErrors));
      else resolve();
    });
  });
}
