// The system calls berth's container setup makes, behind one interface (youki's Syscall seam):
// runtime/linux/syscalls.ts implements it with koffi, test/support/fake-syscalls.ts records calls
// so rootfs, namespace and credential logic can be unit-tested without root. Every method throws
// an ErrnoError (code, errno, syscall, path) on failure, shaped like node:fs errors.

export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  SILENT: 0x8000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
  LAZYTIME: 0x2000000,
} as const;

export const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
  NEWTIME: 0x00000080,
  FS: 0x00000200,
} as const;

export const MNT_DETACH = 2;

export interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

export interface Syscalls {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  pivotRoot(newRoot: string, putOld: string): void;
  chdir(path: string): void;
  /** fchdir to an open directory fd. */
  fchdir(fd: number): void;
  unshare(flags: number): void;
  setns(fd: number, nstype: number): void;
  sethostname(name: string): void;
  setdomainname(name: string): void;
  mknod(path: string, mode: number, major: number, minor: number): void;
  /** Open with raw open(2) flags, for O_PATH and O_NOFOLLOW which node:fs does not pass through. */
  open(path: string, flags: number, mode?: number): number;
  close(fd: number): void;
  /** Mark fds ≥ `from` close-on-exec (close_range with CLOSE_RANGE_CLOEXEC). */
  cloexecFrom(from: number): void;
  /** Clear close-on-exec on one fd (Node sets it on 0-2 at start). */
  clearCloexec(fd: number): void;
  dup2(oldfd: number, newfd: number): void;
  setsid(): void;
  /** ioctl(fd, TIOCSCTTY, 0) */
  setControllingTerminal(fd: number): void;
  setgroups(gids: number[]): void;
  setresgid(rgid: number, egid: number, sgid: number): void;
  setresuid(ruid: number, euid: number, suid: number): void;
  umask(mask: number): void;
  prctl(option: number, arg2: bigint | number, arg3?: bigint | number, arg4?: bigint | number, arg5?: bigint | number): number;
  capget(): CapSets;
  capset(sets: CapSets): void;
  setrlimit(resource: number, soft: bigint, hard: bigint): void;
  getrlimit(resource: number): { soft: bigint; hard: bigint };
  /** Reset every catchable signal to SIG_DFL and empty the blocked mask (Node ignores SIGPIPE; ignores survive execve). */
  resetSignals(): void;
  /** Load a compiled seccomp filter (struct sock_filter[] bytes) into this thread. */
  seccomp(program: Buffer, flags: number): void;
  execve(path: string, argv: string[], envp: string[]): never;
  getpid(): number;
}

export class ErrnoError extends Error {
  constructor(
    readonly code: string,
    readonly errno: number,
    readonly syscall: string,
    readonly path?: string,
    detail?: string,
  ) {
    super(`${syscall}${path ? ` ${path}` : ""}: ${code}${detail ? ` (${detail})` : ""}`);
    this.name = "ErrnoError";
  }
}
