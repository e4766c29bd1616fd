// A recording Syscalls for unit tests: every call is kept in order as { call, args }, any call can
// be made to fail with an errno, and a small model of the mount table follows mount, umount2 and
// pivot_root so a test can assert what ended up mounted where. Nothing reaches the kernel, with
// one exception: mknod leaves an empty regular file at its path (unless told not to), so code
// that lstats, chowns or re-creates the node afterwards behaves as it would on a real node.
import { constants as osConstants } from "node:os";
import { lstatSync, writeFileSync } from "node:fs";
import { posix } from "node:path";
import { type CapSets, ErrnoError, MNT_DETACH, MS, type Syscalls } from "../../runtime/linux/types";

export type CallName = keyof Syscalls;

export interface Call {
  call: CallName;
  args: unknown[];
}

export interface MountRecord {
  source: string | null;
  target: string;
  fstype: string | null;
  /** Per-mount flags (MS_RDONLY, MS_NOSUID, …): what a remount last set, or for a bind what the source mount had. */
  flags: number;
  data: string | null;
  /** The last propagation change (MS_SHARED/SLAVE/PRIVATE/UNBINDABLE, maybe with MS_REC), 0 if none. */
  propagation: number;
}

/** What execve throws: it never returns, and a test wants to see what would have run. */
export class ExecveCalled extends Error {
  constructor(
    readonly path: string,
    readonly argv: string[],
    readonly envp: string[],
  ) {
    super(`execve ${path}`);
    this.name = "ExecveCalled";
  }
}

interface Failure {
  call: CallName;
  code: string;
  match?: (args: unknown[]) => boolean;
  times: number;
}

const PROPAGATION_BITS = MS.SHARED | MS.SLAVE | MS.PRIVATE | MS.UNBINDABLE;
/** Flags mount(2) takes as requests, not as the mount's own flags. */
const REQUEST_BITS = MS.REMOUNT | MS.BIND | MS.MOVE | MS.REC | PROPAGATION_BITS | MS.SILENT;
/** Where cwd is after fchdir to an fd opened before pivot_root: the old root, stacked on `/`. */
const OLD_ROOT = "(old root)";

function errnoOf(code: string): number {
  return (osConstants.errno as Record<string, number>)[code] ?? 0;
}

function under(path: string, dir: string): boolean {
  return dir === "/" || path === dir || path.startsWith(`${dir}/`);
}

export class FakeSyscalls implements Syscalls {
  readonly calls: Call[] = [];
  umaskValue = 0o022;
  hostname?: string;
  domainname?: string;
  caps: CapSets = { effective: 0n, permitted: 0n, inheritable: 0n };
  readonly rlimits = new Map<number, { soft: bigint; hard: bigint }>();
  readonly seccompPrograms: Buffer[] = [];
  private readonly failures: Failure[] = [];
  private table: MountRecord[] = [];
  private oldRoot: MountRecord[] | undefined;
  private cwd = "/";
  private epoch = 0;
  private readonly fds = new Map<number, { path: string; epoch: number }>();
  private nextFd = 100;
  private readonly createNodes: boolean;

  constructor(opts: { createNodes?: boolean } = {}) {
    this.createNodes = opts.createNodes ?? true;
  }

  /** Make `call` throw ErrnoError(`code`) — only when `match(args)` holds, and `times` times (default: always). */
  failOn(call: CallName, code: string, opts: { match?: (args: unknown[]) => boolean; times?: number } = {}): this {
    this.failures.push({ call, code, match: opts.match, times: opts.times ?? Number.POSITIVE_INFINITY });
    return this;
  }

  /** A mount that exists before the code under test runs (the host's /proc, say). */
  seedMount(m: Partial<MountRecord> & { target: string }): this {
    this.table.push({ source: null, fstype: null, flags: 0, data: null, propagation: 0, ...m });
    return this;
  }

  /** The mounts, bottom first, with targets as this process would name them now. */
  mountTable(): MountRecord[] {
    return this.table.map((m) => ({ ...m }));
  }

  isMounted(path: string): boolean {
    return this.table.some((m) => m.target === path);
  }

  /** Calls of one kind, in order. */
  callsOf(name: CallName): unknown[][] {
    return this.calls.filter((c) => c.call === name).map((c) => c.args);
  }

  /** The per-mount flags of the mount holding `path` (for ContainerViewOptions.mountFlagsOf). */
  mountFlagsOf = (path: string): number => this.holder(this.resolve(path))?.flags ?? 0;

  private holder(path: string): MountRecord | undefined {
    let best: MountRecord | undefined;
    for (const m of this.table) if (under(path, m.target) && (!best || m.target.length >= best.target.length)) best = m;
    return best;
  }

  private topAt(path: string): MountRecord | undefined {
    for (let i = this.table.length - 1; i >= 0; i--) if (this.table[i]!.target === path) return this.table[i];
    return undefined;
  }

  private resolve(p: string): string {
    if (p.startsWith("/")) return posix.normalize(p);
    return posix.join(this.cwd === OLD_ROOT ? "/" : this.cwd, p);
  }

  private record(call: CallName, args: unknown[], path?: string): void {
    this.calls.push({ call, args });
    const f = this.failures.find((x) => x.call === call && x.times > 0 && (!x.match || x.match(args)));
    if (!f) return;
    f.times--;
    throw new ErrnoError(f.code, errnoOf(f.code), call, path);
  }

  private fail(code: string, call: string, path?: string): never {
    throw new ErrnoError(code, errnoOf(code), call, path);
  }

  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void {
    this.record("mount", [source, target, fstype, flags, data], target);
    // "." while cwd is the old root (runc's pivot trick): the old root's propagation, nothing we model.
    if (target === "." && this.cwd === OLD_ROOT) return;
    const t = this.resolve(target);
    if (flags & MS.REMOUNT) {
      const m = this.topAt(t);
      if (!m) this.fail("EINVAL", "mount", t);
      m.flags = flags & ~REQUEST_BITS;
      if (!(flags & MS.BIND)) m.data = data;
    } else if (flags & MS.MOVE) {
      const m = this.topAt(this.resolve(source ?? ""));
      if (!m) this.fail("EINVAL", "mount", source ?? "");
      for (const x of this.table) if (under(x.target, m.target)) x.target = t + x.target.slice(m.target.length);
    } else if (flags & PROPAGATION_BITS && !(flags & MS.BIND)) {
      // The kernel wants a mount point here; the fake cannot know the host's, so it only records.
      const m = this.topAt(t);
      if (m) m.propagation = flags & (PROPAGATION_BITS | MS.REC);
    } else if (flags & MS.BIND) {
      const from = source ? this.holder(this.resolve(source)) : undefined;
      this.table.push({ source, target: t, fstype, flags: from?.flags ?? 0, data, propagation: 0 });
    } else {
      this.table.push({ source, target: t, fstype, flags: flags & ~REQUEST_BITS, data, propagation: 0 });
    }
  }

  umount2(target: string, flags: number): void {
    this.record("umount2", [target, flags], target);
    if (target === "." && this.cwd === OLD_ROOT) {
      this.oldRoot = undefined;
      return;
    }
    const t = this.resolve(target);
    const m = this.topAt(t);
    if (!m) this.fail("EINVAL", "umount2", t);
    this.table = this.table.filter((x) => x !== m && !(flags & MNT_DETACH && x.target.startsWith(`${t}/`)));
  }

  pivotRoot(newRoot: string, putOld: string): void {
    this.record("pivotRoot", [newRoot, putOld], newRoot);
    const root = this.resolve(newRoot);
    const kept: MountRecord[] = [];
    const old: MountRecord[] = [];
    for (const m of this.table) {
      if (under(m.target, root) && root !== "/") kept.push({ ...m, target: m.target === root ? "/" : m.target.slice(root.length) });
      else old.push(m);
    }
    this.table = kept;
    this.oldRoot = old;
    this.epoch++;
    this.cwd = "/";
  }

  /** The old root's mounts after pivot_root, until `umount2(".", MNT_DETACH)` drops them. */
  oldRootMounts(): MountRecord[] | undefined {
    return this.oldRoot?.map((m) => ({ ...m }));
  }

  chdir(path: string): void {
    this.record("chdir", [path], path);
    this.cwd = this.resolve(path);
  }

  fchdir(fd: number): void {
    this.record("fchdir", [fd]);
    const f = this.fds.get(fd);
    if (!f) this.fail("EBADF", "fchdir");
    this.cwd = f.epoch === this.epoch ? f.path : OLD_ROOT;
  }

  unshare(flags: number): void {
    this.record("unshare", [flags]);
  }

  setns(fd: number, nstype: number): void {
    this.record("setns", [fd, nstype]);
  }

  sethostname(name: string): void {
    this.record("sethostname", [name]);
    this.hostname = name;
  }

  setdomainname(name: string): void {
    this.record("setdomainname", [name]);
    this.domainname = name;
  }

  mknod(path: string, mode: number, major: number, minor: number): void {
    this.record("mknod", [path, mode, major, minor], path);
    if (lstatSync(path, { throwIfNoEntry: false })) this.fail("EEXIST", "mknod", path);
    if (this.createNodes) writeFileSync(path, "", { flag: "wx", mode: mode & 0o7777 });
  }

  open(path: string, flags: number, mode?: number): number {
    this.record("open", mode === undefined ? [path, flags] : [path, flags, mode], path);
    const fd = this.nextFd++;
    this.fds.set(fd, { path: this.resolve(path), epoch: this.epoch });
    return fd;
  }

  close(fd: number): void {
    this.record("close", [fd]);
    this.fds.delete(fd);
  }

  cloexecFrom(from: number): void {
    this.record("cloexecFrom", [from]);
  }

  clearCloexec(fd: number): void {
    this.record("clearCloexec", [fd]);
  }

  dup2(oldfd: number, newfd: number): void {
    this.record("dup2", [oldfd, newfd]);
  }

  setsid(): void {
    this.record("setsid", []);
  }

  setControllingTerminal(fd: number): void {
    this.record("setControllingTerminal", [fd]);
  }

  setgroups(gids: number[]): void {
    this.record("setgroups", [gids]);
  }

  setresgid(rgid: number, egid: number, sgid: number): void {
    this.record("setresgid", [rgid, egid, sgid]);
  }

  setresuid(ruid: number, euid: number, suid: number): void {
    this.record("setresuid", [ruid, euid, suid]);
  }

  umask(mask: number): void {
    this.record("umask", [mask]);
    this.umaskValue = mask;
  }

  prctl(option: number, arg2: bigint | number, arg3?: bigint | number, arg4?: bigint | number, arg5?: bigint | number): number {
    this.record("prctl", [option, arg2, arg3, arg4, arg5]);
    return 0;
  }

  capget(): CapSets {
    this.record("capget", []);
    return { ...this.caps };
  }

  capset(sets: CapSets): void {
    this.record("capset", [sets]);
    this.caps = { ...sets };
  }

  setrlimit(resource: number, soft: bigint, hard: bigint): void {
    this.record("setrlimit", [resource, soft, hard]);
    this.rlimits.set(resource, { soft, hard });
  }

  getrlimit(resource: number): { soft: bigint; hard: bigint } {
    this.record("getrlimit", [resource]);
    return this.rlimits.get(resource) ?? { soft: 1024n, hard: 524288n };
  }

  resetSignals(): void {
    this.record("resetSignals", []);
  }

  seccomp(program: Buffer, flags: number): void {
    this.record("seccomp", [program, flags]);
    this.seccompPrograms.push(program);
  }

  execve(path: string, argv: string[], envp: string[]): never {
    this.record("execve", [path, argv, envp], path);
    throw new ExecveCalled(path, argv, envp);
  }

  getpid(): number {
    this.record("getpid", []);
    return 1;
  }
}
