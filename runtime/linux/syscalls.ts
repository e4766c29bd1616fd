// The Syscalls seam (types.ts) implemented on glibc through koffi. Each libc function is declared
// the first time it is called and cached: `berth runtime create` boots Node for one container and
// uses a fraction of these, and binding all of them up front costs milliseconds on every boot.
//
// Credentials go through glibc's setgroups/setresgid/setresuid on purpose: glibc broadcasts them
// to every thread of the process (setxid), which a raw syscall would not, and Node has ~7 threads.
// Everything else that changes process state here (unshare, capset, prctl, seccomp, sigprocmask)
// applies to the calling thread only, which is the thread that later calls execve.
import { readdirSync } from "node:fs";
import { getSystemErrorName } from "node:util";
import koffi, { type LibraryHandle } from "koffi";
import { InvalidArgumentError } from "../errors";
import { makedev } from "./file-calls";
import { type CapSets, ErrnoError, type Syscalls } from "./types";

/** open(2) flags, raw, for the calls node:fs cannot make (O_PATH, O_NOFOLLOW without a stat race). */
export const O = {
  RDONLY: 0,
  WRONLY: 0o1,
  RDWR: 0o2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
} as const;

/** prctl option that seccomp filters need when the process lacks CAP_SYS_ADMIN. */
export const PR_SET_NO_NEW_PRIVS = 38;

/** rlim_t's "no limit" (RLIM_INFINITY, 2^64-1). */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

export const RLIMIT = {
  CPU: 0,
  FSIZE: 1,
  DATA: 2,
  STACK: 3,
  CORE: 4,
  RSS: 5,
  NPROC: 6,
  NOFILE: 7,
  MEMLOCK: 8,
  AS: 9,
  LOCKS: 10,
  SIGPENDING: 11,
  MSGQUEUE: 12,
  NICE: 13,
  RTPRIO: 14,
  RTTIME: 15,
} as const;

// x86_64 numbers for the calls glibc has no wrapper for (or a wrapper we must avoid).
const SYS_capget = 125;
const SYS_capset = 126;
const SYS_pivot_root = 155;
const SYS_seccomp = 317;
const SYS_close_range = 436;

const CLOSE_RANGE_CLOEXEC = 4;
const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const TIOCSCTTY = 0x540e;
const SIG_SETMASK = 2;
const SECCOMP_SET_MODE_FILTER = 1;
const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
const BPF_MAXINSNS = 4096;
const EINTR = 4;

type NativeFunction = ReturnType<LibraryHandle["func"]>;

let lib: LibraryHandle | undefined;
const declared = new Map<string, NativeFunction>();

/**
 * A libc function from its C prototype, declared on first use and cached. Shared by the other
 * binding modules of runtime/linux so that libc is loaded and each function bound once.
 */
export function libcFunction(prototype: string): NativeFunction {
  let fn = declared.get(prototype);
  if (!fn) {
    lib ??= koffi.load("libc.so.6");
    fn = lib.func(prototype);
    declared.set(prototype, fn);
  }
  return fn;
}

/** The ErrnoError for the errno the last libc call left (node:fs convention: `errno` is negative). */
export function errnoError(syscall: string, path?: string, detail?: string, errno = koffi.errno()): ErrnoError {
  return new ErrnoError(getSystemErrorName(-errno), -errno, syscall, path, detail);
}

/** Throws the current errno when a libc call returned -1; passes other results through. */
function check(result: number | bigint, syscall: string, path?: string, detail?: string): number {
  const n = Number(result);
  if (n === -1) throw errnoError(syscall, path, detail);
  return n;
}

const syscall = () => libcFunction("long syscall(long number, ...)");
const fcntl = () => libcFunction("int fcntl(int fd, int cmd, ...)");

function getFdFlags(fd: number): number {
  return check(fcntl()(fd, F_GETFD), "fcntl", undefined, `fd ${fd} F_GETFD`);
}

function setFdFlags(fd: number, flags: number): void {
  check(fcntl()(fd, F_SETFD, "int", flags), "fcntl", undefined, `fd ${fd} F_SETFD`);
}

/**
 * The fallback of cloexecFrom for kernels without close_range's CLOEXEC flag (before 5.11):
 * mark each open fd found in /proc/self/fd. Exported so that the fallback can be tested here.
 */
export function cloexecFromByWalking(from: number): void {
  for (const name of readdirSync("/proc/self/fd")) {
    const fd = Number(name);
    if (fd < from) continue;
    const flags = fcntl()(fd, F_GETFD);
    // The directory fd readdirSync used is listed but already closed: skip what is gone.
    if (flags === -1) {
      if (koffi.errno() === 9 /* EBADF */) continue;
      throw errnoError("fcntl", undefined, `fd ${fd} F_GETFD`);
    }
    if (!(flags & FD_CLOEXEC)) setFdFlags(fd, flags | FD_CLOEXEC);
  }
}

/** struct __user_cap_header_struct for this thread (pid 0), version 3 (64-bit sets). */
function capHeader(): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  return header;
}

const LOW = 0xffff_ffffn;

/** Two struct __user_cap_data_struct {effective, permitted, inheritable}: low words, then high words. */
function encodeCapData(sets: CapSets): Buffer {
  const data = Buffer.alloc(24);
  const words = [sets.effective, sets.permitted, sets.inheritable];
  words.forEach((set, i) => {
    data.writeUInt32LE(Number(set & LOW), i * 4);
    data.writeUInt32LE(Number((set >> 32n) & LOW), 12 + i * 4);
  });
  return data;
}

function decodeCapData(data: Buffer): CapSets {
  const set = (i: number) => (BigInt(data.readUInt32LE(12 + i * 4)) << 32n) | BigInt(data.readUInt32LE(i * 4));
  return { effective: set(0), permitted: set(1), inheritable: set(2) };
}

/** The signals resetSignals leaves alone: SIGKILL and SIGSTOP cannot change, 32/33 belong to glibc. */
const UNTOUCHABLE_SIGNALS = new Set([9, 19, 32, 33]);
const NSIG = 64;

export const linuxSyscalls: Syscalls = {
  mount(source, target, fstype, flags, data) {
    const mount = libcFunction(
      "int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)",
    );
    check(mount(source, target, fstype, flags, data), "mount", target, `source ${source ?? "none"}, type ${fstype ?? "none"}`);
  },

  umount2(target, flags) {
    check(libcFunction("int umount2(const char *target, int flags)")(target, flags), "umount2", target);
  },

  pivotRoot(newRoot, putOld) {
    // No glibc wrapper exists for pivot_root.
    check(syscall()(SYS_pivot_root, "const char *", newRoot, "const char *", putOld), "pivot_root", newRoot, `put_old ${putOld}`);
  },

  chdir(path) {
    check(libcFunction("int chdir(const char *path)")(path), "chdir", path);
  },

  fchdir(fd) {
    check(libcFunction("int fchdir(int fd)")(fd), "fchdir", undefined, `fd ${fd}`);
  },

  unshare(flags) {
    check(libcFunction("int unshare(int flags)")(flags), "unshare", undefined, `flags 0x${flags.toString(16)}`);
  },

  setns(fd, nstype) {
    check(libcFunction("int setns(int fd, int nstype)")(fd, nstype), "setns", undefined, `fd ${fd}, nstype 0x${nstype.toString(16)}`);
  },

  sethostname(name) {
    const fn = libcFunction("int sethostname(const char *name, size_t len)");
    check(fn(name, Buffer.byteLength(name)), "sethostname", undefined, name);
  },

  setdomainname(name) {
    const fn = libcFunction("int setdomainname(const char *name, size_t len)");
    check(fn(name, Buffer.byteLength(name)), "setdomainname", undefined, name);
  },

  mknod(path, mode, major, minor) {
    const fn = libcFunction("int mknod(const char *path, uint32_t mode, uint64_t dev)");
    check(fn(path, mode, makedev(major, minor)), "mknod", path);
  },

  open(path, flags, mode = 0) {
    // The mode is always passed: open ignores it unless O_CREAT or O_TMPFILE asks for it.
    return check(libcFunction("int open(const char *path, int flags, ...)")(path, flags, "uint32_t", mode), "open", path);
  },

  close(fd) {
    check(libcFunction("int close(int fd)")(fd), "close", undefined, `fd ${fd}`);
  },

  cloexecFrom(from) {
    // Every argument is passed as a long: syscall() reads its variadic arguments as longs.
    const res = syscall()(SYS_close_range, "long", from, "long", 0xffff_ffff, "long", CLOSE_RANGE_CLOEXEC);
    if (Number(res) === 0) return;
    const errno = koffi.errno();
    // ENOSYS: no close_range (before 5.9); EINVAL: no CLOSE_RANGE_CLOEXEC (before 5.11).
    if (errno !== 38 && errno !== 22) throw errnoError("close_range", undefined, `from ${from}`, errno);
    cloexecFromByWalking(from);
  },

  clearCloexec(fd) {
    const flags = getFdFlags(fd);
    if (flags & FD_CLOEXEC) setFdFlags(fd, flags & ~FD_CLOEXEC);
  },

  dup2(oldfd, newfd) {
    check(libcFunction("int dup2(int oldfd, int newfd)")(oldfd, newfd), "dup2", undefined, `${oldfd} -> ${newfd}`);
  },

  setsid() {
    check(libcFunction("int setsid(void)")(), "setsid");
  },

  setControllingTerminal(fd) {
    const ioctl = libcFunction("int ioctl(int fd, unsigned long request, ...)");
    check(ioctl(fd, TIOCSCTTY, "int", 0), "ioctl", undefined, `fd ${fd} TIOCSCTTY`);
  },

  setgroups(gids) {
    const fn = libcFunction("int setgroups(size_t size, const uint32_t *list)");
    check(fn(gids.length, Uint32Array.from(gids, (g) => g >>> 0)), "setgroups", undefined, gids.join(","));
  },

  setresgid(rgid, egid, sgid) {
    const fn = libcFunction("int setresgid(uint32_t rgid, uint32_t egid, uint32_t sgid)");
    check(fn(rgid >>> 0, egid >>> 0, sgid >>> 0), "setresgid", undefined, `${rgid} ${egid} ${sgid}`);
  },

  setresuid(ruid, euid, suid) {
    const fn = libcFunction("int setresuid(uint32_t ruid, uint32_t euid, uint32_t suid)");
    check(fn(ruid >>> 0, euid >>> 0, suid >>> 0), "setresuid", undefined, `${ruid} ${euid} ${suid}`);
  },

  umask(mask) {
    libcFunction("uint32_t umask(uint32_t mask)")(mask);
  },

  prctl(option, arg2, arg3 = 0, arg4 = 0, arg5 = 0) {
    const prctl = libcFunction("int prctl(int option, ...)");
    const ul = "unsigned long";
    return check(prctl(option, ul, arg2, ul, arg3, ul, arg4, ul, arg5), "prctl", undefined, `option ${option}`);
  },

  capget() {
    const data = Buffer.alloc(24);
    check(syscall()(SYS_capget, "void *", capHeader(), "void *", data), "capget");
    return decodeCapData(data);
  },

  capset(sets) {
    check(syscall()(SYS_capset, "void *", capHeader(), "void *", encodeCapData(sets)), "capset");
  },

  setrlimit(resource, soft, hard) {
    const limit = Buffer.alloc(16);
    limit.writeBigUInt64LE(soft, 0);
    limit.writeBigUInt64LE(hard, 8);
    const fn = libcFunction("int prlimit64(int pid, int resource, const void *newlimit, void *oldlimit)");
    check(fn(0, resource, limit, null), "prlimit64", undefined, `resource ${resource}`);
  },

  getrlimit(resource) {
    const limit = Buffer.alloc(16);
    const fn = libcFunction("int prlimit64(int pid, int resource, const void *newlimit, void *oldlimit)");
    check(fn(0, resource, null, limit), "prlimit64", undefined, `resource ${resource}`);
    return { soft: limit.readBigUInt64LE(0), hard: limit.readBigUInt64LE(8) };
  },

  resetSignals() {
    // SIG_DFL is handler 0. Called right before execve: from here on, Node's own handlers
    // (SIGCHLD for child_process, SIGINT...) are gone, so nothing but the exec may follow.
    const signal = libcFunction("intptr_t signal(int signum, intptr_t handler)");
    for (let sig = 1; sig <= NSIG; sig++) {
      if (UNTOUCHABLE_SIGNALS.has(sig)) continue;
      check(signal(sig, 0), "signal", undefined, `signal ${sig}`);
    }
    // glibc's sigset_t is 1024 bits; an all-zero one is the empty set.
    const sigprocmask = libcFunction("int sigprocmask(int how, const void *set, void *oldset)");
    check(sigprocmask(SIG_SETMASK, Buffer.alloc(128), null), "sigprocmask");
  },

  seccomp(program, flags) {
    if (program.length === 0 || program.length % 8 !== 0 || program.length / 8 > BPF_MAXINSNS) {
      throw new InvalidArgumentError(`seccomp program of ${program.length} bytes is not 1..${BPF_MAXINSNS} sock_filter entries of 8 bytes`);
    }
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }: the pointer sits at 8.
    const fprog = Buffer.alloc(16);
    fprog.writeUInt16LE(program.length / 8, 0);
    fprog.writeBigUInt64LE(BigInt(koffi.address(program)), 8);
    const res = syscall()(SYS_seccomp, "long", SECCOMP_SET_MODE_FILTER, "long", flags, "void *", fprog);
    check(res, "seccomp", undefined, `flags 0x${flags.toString(16)}`);
  },

  execve(path, argv, envp): never {
    const execve = libcFunction("int execve(const char *path, const char **argv, const char **envp)");
    execve(path, [...argv, null], [...envp, null]);
    throw errnoError("execve", path);
  },

  getpid() {
    return libcFunction("int getpid(void)")();
  },
};

/** Retry a call interrupted by a signal (EINTR), as blocking socket calls may be. */
export function retryOnEintr(call: () => number | bigint): number {
  for (;;) {
    const res = Number(call());
    if (res !== -1 || koffi.errno() !== EINTR) return res;
  }
}
