// The container's filesystem view, set up by the init inside its new mount namespace exactly as
// runc's libcontainer/rootfs_linux.go does: root propagation and the rootfs bind, each spec
// mount in order, /dev (device nodes, ptmx, the fd symlinks), pivot_root, then the read-only and
// masked paths and the read-only remounts. Every step is synchronous: the init runs straight
// through to execve. Mount and namespace calls go through the Syscalls seam so unit tests can
// record them; plain file work (mkdir, symlink, lstat) uses node:fs.
import { closeSync, constants, lchownSync, lstatSync, mkdirSync, openSync, readFileSync, statfsSync, statSync, symlinkSync, unlinkSync } from "node:fs";
import { posix } from "node:path";
import {
  BerthError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  UnimplementedError,
} from "../errors";
import { MNT_DETACH, MS, type Syscalls } from "../linux/types";
import { mkdirAllInRoot, secureJoin } from "./securejoin";
import type { Device, Mount, Spec } from "./spec-types";

// ---------------------------------------------------------------------------------------------
// Options

/** How the host mounts cgroups. "hybrid" is mounted as "v1", as runc does: the container sees only the v1 hierarchies. */
export type CgroupLayout = "v1" | "v2" | "hybrid";

/** One host cgroup v1 hierarchy, as the container's `cgroup` mount exposes it. */
export interface CgroupV1Hierarchy {
  /** The hierarchy's mount point on the host, e.g. /sys/fs/cgroup/cpu,cpuacct; its base name names the directory in the container (and the controllers of a fresh mount). */
  mountpoint: string;
  /** The container's own cgroup directory in that hierarchy, on the host: bind-mounted when there is no cgroup namespace. */
  path: string;
}

/** What the steps after pivot_root need. */
export interface ContainerViewOptions {
  /**
   * Where the container's `/` appears to this process once pivot_root has run: "/" in the init
   * (the default). Only a test whose fake pivot_root moves nothing passes the rootfs here; the
   * mount calls still name container paths.
   */
  containerRoot?: string;
  /** The MS_* flags of the mount at a path (what statfs's f_flags say); defaults to reading /proc/self/mountinfo. */
  mountFlagsOf?: (path: string) => number;
}

export interface RootfsOptions extends ContainerViewOptions {
  /** Absolute host path of spec.root.path, resolved against the bundle. */
  rootfs: string;
  /** Relative bind sources are taken from here, as runc takes them from its working directory (the bundle). Default: process.cwd(). */
  bundle?: string;
  /** Default: v2 when /sys/fs/cgroup is a cgroup2 file system (runc's test), else v1. */
  cgroupLayout?: CgroupLayout;
  /** The v1 hierarchies to expose at a `cgroup` mount; required when the layout is v1 or hybrid. */
  cgroupV1?: CgroupV1Hierarchy[];
  /** The container's cgroup v2 directory on the host: bind-mounted if a fresh cgroup2 mount is refused (runc's fallback). */
  cgroup2Path?: string;
}

// ---------------------------------------------------------------------------------------------
// Mount options, as runc's specconv.parseMountOptions reads them

const MS_I_VERSION = 0x800000; // absent from the seam's MS table: only option parsing needs it

const MOUNT_FLAGS: ReadonlyMap<string, { clear: boolean; flag: number }> = new Map([
  ["async", { clear: true, flag: MS.SYNCHRONOUS }],
  ["atime", { clear: true, flag: MS.NOATIME }],
  ["bind", { clear: false, flag: MS.BIND }],
  ["dev", { clear: true, flag: MS.NODEV }],
  ["diratime", { clear: true, flag: MS.NODIRATIME }],
  ["dirsync", { clear: false, flag: MS.DIRSYNC }],
  ["exec", { clear: true, flag: MS.NOEXEC }],
  ["iversion", { clear: false, flag: MS_I_VERSION }],
  ["lazytime", { clear: false, flag: MS.LAZYTIME }],
  ["loud", { clear: true, flag: MS.SILENT }],
  ["mand", { clear: false, flag: MS.MANDLOCK }],
  ["noatime", { clear: false, flag: MS.NOATIME }],
  ["nodev", { clear: false, flag: MS.NODEV }],
  ["nodiratime", { clear: false, flag: MS.NODIRATIME }],
  ["noexec", { clear: false, flag: MS.NOEXEC }],
  ["noiversion", { clear: true, flag: MS_I_VERSION }],
  ["nolazytime", { clear: true, flag: MS.LAZYTIME }],
  ["nomand", { clear: true, flag: MS.MANDLOCK }],
  ["norelatime", { clear: true, flag: MS.RELATIME }],
  ["nostrictatime", { clear: true, flag: MS.STRICTATIME }],
  ["nosuid", { clear: false, flag: MS.NOSUID }],
  ["nosymfollow", { clear: false, flag: MS.NOSYMFOLLOW }],
  ["rbind", { clear: false, flag: MS.BIND | MS.REC }],
  ["relatime", { clear: false, flag: MS.RELATIME }],
  ["remount", { clear: false, flag: MS.REMOUNT }],
  ["ro", { clear: false, flag: MS.RDONLY }],
  ["rw", { clear: true, flag: MS.RDONLY }],
  ["silent", { clear: false, flag: MS.SILENT }],
  ["strictatime", { clear: false, flag: MS.STRICTATIME }],
  ["suid", { clear: true, flag: MS.NOSUID }],
  ["sync", { clear: false, flag: MS.SYNCHRONOUS }],
  ["symfollow", { clear: true, flag: MS.NOSYMFOLLOW }],
]);

const PROPAGATION: ReadonlyMap<string, number> = new Map([
  ["rprivate", MS.PRIVATE | MS.REC],
  ["private", MS.PRIVATE],
  ["rslave", MS.SLAVE | MS.REC],
  ["slave", MS.SLAVE],
  ["rshared", MS.SHARED | MS.REC],
  ["shared", MS.SHARED],
  ["runbindable", MS.UNBINDABLE | MS.REC],
  ["unbindable", MS.UNBINDABLE],
]);

// runc applies these with mount_setattr(2, AT_RECURSIVE), which the Syscalls seam does not offer.
const RECURSIVE_ATTRS = new Set([
  "rro",
  "rrw",
  "rnosuid",
  "rsuid",
  "rnodev",
  "rdev",
  "rnoexec",
  "rexec",
  "rnodiratime",
  "rdiratime",
  "rrelatime",
  "rnorelatime",
  "rnoatime",
  "ratime",
  "rstrictatime",
  "rnostrictatime",
  "rnosymfollow",
  "rsymfollow",
]);

/** The options `berth runtime features` can list: every one that is a flag rather than file-system data. */
export const MOUNT_OPTIONS: readonly string[] = [...MOUNT_FLAGS.keys(), ...PROPAGATION.keys()].sort();

export interface MountOptions {
  flags: number;
  /** Flags the options asked to be off ("rw", "dev", …): a bind remount must not inherit them. */
  clearedFlags: number;
  /** One mount(2) call each, in the order given. */
  propagation: number[];
  /** Everything else, comma-joined for the file system. */
  data: string;
}

/** `options` as flags and data. Options berth cannot honour are refused, naming the mount and the option. */
export function parseMountOptions(options: readonly string[] | undefined, destination: string): MountOptions {
  const out: MountOptions = { flags: 0, clearedFlags: 0, propagation: [], data: "" };
  const data: string[] = [];
  for (const o of options ?? []) {
    const f = MOUNT_FLAGS.get(o);
    const p = PROPAGATION.get(o);
    if (f) {
      // A later option wins over an earlier opposite one ("ro,rw" is rw), as in runc.
      if (f.clear) {
        out.flags &= ~f.flag;
        out.clearedFlags |= f.flag;
      } else {
        out.flags |= f.flag;
        out.clearedFlags &= ~f.flag;
      }
    } else if (p !== undefined) {
      out.propagation.push(p);
    } else if (RECURSIVE_ATTRS.has(o)) {
      throw new UnimplementedError(`mount ${destination}: option "${o}" is not supported: recursive mount attributes need mount_setattr(2), which berth's runtime does not make`);
    } else if (o === "idmap" || o === "ridmap") {
      throw new UnimplementedError(`mount ${destination}: option "${o}" is not supported: berth's runtime does not make id-mapped mounts`);
    } else if (o === "tmpcopyup") {
      throw new UnimplementedError(`mount ${destination}: option "tmpcopyup" is not supported: berth's runtime does not copy the directory's contents into a new tmpfs`);
    } else {
      // "defaults" lands here too (its flag is 0), as it does in runc.
      data.push(o);
    }
  }
  out.data = data.join(",");
  return out;
}

/** A spec mount as the steps below use it (runc's configs.Mount). */
interface MountEntry extends MountOptions {
  destination: string;
  source: string;
  /** The file-system type, or "bind" for a bind mount whatever the spec's type says. */
  device: string;
}

function hasNul(s: string | undefined): boolean {
  return s?.includes("\0") ?? false;
}

function toEntry(m: Mount, bundle: string): MountEntry {
  const where = m.destination;
  if (hasNul(m.destination) || hasNul(m.source) || hasNul(m.type) || (m.options ?? []).some(hasNul)) {
    throw new InvalidArgumentError(`mount ${JSON.stringify(where)}: a field contains a NUL byte`);
  }
  if (m.uidMappings || m.gidMappings) {
    throw new UnimplementedError(`mount ${where}: uidMappings/gidMappings are not supported: berth's runtime does not make id-mapped mounts`);
  }
  const opts = parseMountOptions(m.options, where);
  // A "bind" type without a bind option is still meant as a bind (crun reads it so); runc would
  // pass "bind" to mount(2) as a file-system type and fail with ENODEV.
  if (m.type === "bind" && !(opts.flags & MS.BIND)) opts.flags |= MS.BIND;
  const isBind = (opts.flags & MS.BIND) !== 0;
  if (isBind && opts.data !== "") {
    // The kernel ignores data on a bind mount; runc's validator refuses it rather than pretend.
    throw new InvalidArgumentError(`mount ${where}: a bind mount cannot take file-system options (${opts.data.split(",").map((o) => `"${o}"`).join(", ")})`);
  }
  let source = m.source ?? "";
  if (isBind && !source.startsWith("/")) source = posix.join(bundle, source);
  return { ...opts, destination: m.destination, source, device: isBind ? "bind" : (m.type ?? "") };
}

/** The spec's mounts, checked all at once so a refused option fails before anything is mounted. */
function mountEntries(spec: Spec, bundle: string): MountEntry[] {
  return (spec.mounts ?? []).map((m) => toEntry(m, bundle));
}

/** The absolute, lexically clean form runc compares destinations in ("/dev/" is "/dev"). */
function cleanPath(p: string): string {
  const n = posix.normalize(`/${p}`);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

// ---------------------------------------------------------------------------------------------
// Errors and small helpers

function errnoCode(err: unknown): string | undefined {
  return (err as { code?: unknown } | undefined)?.code as string | undefined;
}

/** A syscall failure as a typed error that says what was being done. */
function failure(what: string, err: unknown): Error {
  if (err instanceof BerthError) return err;
  const message = `${what}: ${(err as Error).message}`;
  switch (errnoCode(err)) {
    case "ENOENT":
      return new NotFoundError(message, { cause: err });
    case "EPERM":
    case "EACCES":
      return new PermissionDeniedError(message, { cause: err });
    case "EINVAL":
    case "ENODEV":
    case "ENOTDIR":
      return new InvalidArgumentError(message, { cause: err });
    default:
      return new InternalError(message, { cause: err });
  }
}

/** mount(2) as runc's Go wrapper calls it: empty data is passed as NULL (some file systems refuse ""). */
function mount(sys: Syscalls, source: string, target: string, fstype: string, flags: number, data: string): void {
  sys.mount(source, target, fstype, flags, data === "" ? null : data);
}

function describeMount(e: MountEntry): string {
  return `mount ${e.device || "(no type)"} ${JSON.stringify(e.source)} on ${e.destination}`;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const O_PATH = 0o10000000;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const PROC_SUPER_MAGIC = 0x9fa0;
const CGROUP2_SUPER_MAGIC = 0x63677270;

// ---------------------------------------------------------------------------------------------
// Current mount flags (statfs's f_flags, which node:fs does not expose)

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

const MOUNTINFO_FLAGS: Record<string, number> = {
  ro: MS.RDONLY,
  nosuid: MS.NOSUID,
  nodev: MS.NODEV,
  noexec: MS.NOEXEC,
  noatime: MS.NOATIME,
  nodiratime: MS.NODIRATIME,
  relatime: MS.RELATIME,
  nosymfollow: MS.NOSYMFOLLOW,
};
const SUPER_FLAGS: Record<string, number> = { ro: MS.RDONLY, sync: MS.SYNCHRONOUS, mand: MS.MANDLOCK };
const ATIME_ENUM = MS.NOATIME | MS.RELATIME | MS.STRICTATIME;
const ATIME_FLAGS = ATIME_ENUM | MS.NODIRATIME;
/** Flags the kernel locks on mounts inherited from a more privileged namespace (MNT_LOCK_*). */
const LOCK_FLAGS = MS.RDONLY | MS.NODEV | MS.NOEXEC | MS.NOSUID | ATIME_FLAGS;

/**
 * The MS_* flags of the mount holding `path`, as runc's statfsToMountFlags derives them: the
 * topmost mount whose mount point is `path` or its nearest ancestor. With no atime flag set the
 * mount is strictatime, which the kernel never reports.
 */
export function mountFlagsFromMountinfo(path: string, mountinfo = readFileSync("/proc/self/mountinfo", "utf8")): number {
  let best: { mountpoint: string; flags: number } | undefined;
  for (const line of mountinfo.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (dash < 0) continue;
    const mountpoint = unescapeMountinfo(fields[4]!);
    const holds = mountpoint === path || mountpoint === "/" || path.startsWith(`${mountpoint}/`);
    // A later line is mounted over an earlier one at the same point, so ties go to the later.
    if (!holds || (best && mountpoint.length < best.mountpoint.length)) continue;
    let flags = 0;
    for (const o of fields[5]!.split(",")) flags |= MOUNTINFO_FLAGS[o] ?? 0;
    for (const o of (fields[dash + 3] ?? "").split(",")) flags |= SUPER_FLAGS[o] ?? 0;
    if (!(flags & ATIME_ENUM)) flags |= MS.STRICTATIME;
    best = { mountpoint, flags };
  }
  return best?.flags ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Root propagation and the rootfs bind (runc's prepareRoot)

/** The flags linux.rootfsPropagation asks for, or 0 when unset. runc's r-variants are accepted too: containerd writes "rslave" and "rshared". */
function rootPropagation(spec: Spec): number {
  const name = spec.linux?.rootfsPropagation as string | undefined;
  if (!name) return 0;
  const flags = PROPAGATION.get(name);
  if (flags === undefined) throw new InvalidArgumentError(`linux.rootfsPropagation "${name}" is not supported (use one of ${[...PROPAGATION.keys()].join(", ")})`);
  return flags;
}

/**
 * Make `/` rslave (or what linux.rootfsPropagation says) so nothing mounted here reaches the
 * host, make the rootfs's parent mount unshared (pivot_root refuses a shared parent), and bind the
 * rootfs onto itself so it is a mount point pivot_root can use.
 */
export function prepareRoot(sys: Syscalls, spec: Spec, rootfs: string): void {
  if (!posix.isAbsolute(rootfs)) throw new InvalidArgumentError(`rootfs "${rootfs}" must be an absolute path`);
  const propagation = rootPropagation(spec);
  const rootFlags = propagation || MS.SLAVE | MS.REC;
  try {
    mount(sys, "", "/", "", rootFlags, "");
  } catch (err) {
    throw failure(`setting the propagation of / (${spec.linux?.rootfsPropagation ?? "rslave"}) before setting up the rootfs`, err);
  }
  // EINVAL means "not a mount point": walk up until one is found, as runc does.
  const parentFlags = propagation & MS.SLAVE ? MS.SLAVE : MS.PRIVATE;
  let path = rootfs;
  for (;;) {
    try {
      mount(sys, "", path, "", parentFlags, "");
      break;
    } catch (err) {
      if (errnoCode(err) !== "EINVAL" || path === "/") throw failure(`making the mount holding rootfs ${rootfs} unshared (at ${path})`, err);
      path = posix.dirname(path);
    }
  }
  try {
    mount(sys, rootfs, rootfs, "bind", MS.BIND | MS.REC, "");
  } catch (err) {
    throw failure(`binding rootfs ${rootfs} onto itself`, err);
  }
}

// ---------------------------------------------------------------------------------------------
// Spec mounts (runc's mountToRootfs)

interface MountContext {
  sys: Syscalls;
  rootfs: string;
  cgroupns: boolean;
  opts: RootfsOptions;
  mountFlagsOf: (path: string) => number;
}

/** The entries runc allows below /proc: the files lxcfs emulates. */
const VALID_PROC_MOUNTS = [
  "/proc/cpuinfo",
  "/proc/diskstats",
  "/proc/meminfo",
  "/proc/stat",
  "/proc/swaps",
  "/proc/uptime",
  "/proc/loadavg",
  "/proc/slabinfo",
  "/proc/sys/kernel/ns_last_pid",
  "/proc/sys/crypto/fips_enabled",
];

function inRoot(rootfs: string, p: string): string {
  return rootfs === "/" ? p : rootfs + p;
}

/** Refuse a mount over /proc or below it: it could hide what the masked and read-only paths protect. */
function checkProcMount(rootfs: string, target: string, e: MountEntry): void {
  const proc = inRoot(rootfs, "/proc");
  if (target !== proc && !target.startsWith(`${proc}/`)) return;
  if (target === proc) {
    if (e.device === "proc") return;
    if (e.device === "bind") {
      let type: number;
      try {
        type = statfsSync(e.source).type;
      } catch (err) {
        throw failure(`checking bind mount source ${e.source} for /proc`, err);
      }
      if (type === PROC_SUPER_MAGIC) return;
    }
    throw new InvalidArgumentError(`mount ${e.destination}: ${target} cannot be mounted because it is not of type proc`);
  }
  if (VALID_PROC_MOUNTS.some((v) => target === inRoot(rootfs, v))) return;
  throw new InvalidArgumentError(`mount ${e.destination}: ${target} cannot be mounted because it is inside /proc`);
}

/** The mount point for `e`, resolved inside the rootfs and created if missing (runc's createOpenMountpoint). */
function createMountpoint(ctx: MountContext, e: MountEntry): string {
  const { rootfs } = ctx;
  const target = secureJoin(rootfs, e.destination);
  const st = lstatSync(target, { throwIfNoEntry: false });
  if (st) {
    // A tmpfs over an existing directory starts with that directory's mode, unless the options say otherwise.
    if (e.device === "tmpfs") e.data = `mode=${(st.mode & 0o7777).toString(8).padStart(4, "0")}${e.data ? `,${e.data}` : ""}`;
  } else {
    // A file bind mount needs an empty file to land on; everything else a directory.
    const isFile = e.device === "bind" && !statSync(e.source).isDirectory();
    if (isFile) {
      mkdirAllInRoot(rootfs, posix.dirname(target.slice(rootfs === "/" ? 0 : rootfs.length)), 0o755);
      try {
        closeSync(openSync(target, constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_WRONLY, 0o644));
      } catch (err) {
        throw failure(`${describeMount(e)}: creating mount point ${target}`, err);
      }
    } else {
      mkdirAllInRoot(rootfs, e.destination, 0o755);
    }
  }
  if (target === rootfs) throw new InvalidArgumentError(`${describeMount(e)}: the mount point is the top of the rootfs ${rootfs}`);
  checkProcMount(rootfs, target, e);
  return target;
}

/** The mount itself, then one call per propagation flag (runc's mountPropagate). */
function mountPropagate(ctx: MountContext, e: MountEntry, target: string): void {
  let flags = e.flags;
  // /dev and tmpfs mounts are written to after mounting (device nodes, modes); finalize makes them read-only.
  if (e.device === "tmpfs" || cleanPath(e.destination) === "/dev") flags &= ~MS.RDONLY;
  mount(ctx.sys, e.source, target, e.device, flags, e.data);
  for (const p of e.propagation) mount(ctx.sys, "", target, "", p, "");
}

/**
 * A bind mount ignores every flag but MS_REC, so the requested ones (ro, nosuid, …) take a second
 * call, MS_BIND|MS_REMOUNT. If that fails the mount may carry flags the kernel locked (a mount
 * from a more privileged namespace): retry with those added, unless the spec asked to clear one.
 */
function remountBind(ctx: MountContext, e: MountEntry, target: string): void {
  if (!(e.flags & ~(MS.BIND | MS.REC | MS.REMOUNT)) && !e.clearedFlags) return;
  const flags = e.flags | MS.BIND | MS.REMOUNT;
  let current: number;
  try {
    mount(ctx.sys, "", target, "", flags, "");
    return;
  } catch (err) {
    // Right after the bind, the mount at `target` carries the source mount's flags.
    current = ctx.mountFlagsOf(target);
    const locked = current & e.clearedFlags & LOCK_FLAGS;
    if (locked) throw failure(`${describeMount(e)}: cannot clear flags the kernel locked on the source (MS_* 0x${locked.toString(16)})`, err);
    if (e.flags & ATIME_FLAGS && (e.flags & ATIME_FLAGS) !== (current & ATIME_FLAGS)) {
      throw failure(`${describeMount(e)}: cannot change the atime flags the kernel locked on the source`, err);
    }
  }
  try {
    mount(ctx.sys, "", target, "", flags | (current & LOCK_FLAGS), "");
  } catch (err) {
    throw failure(`${describeMount(e)}: setting its flags with the source's locked flags re-applied`, err);
  }
}

function detectCgroupLayout(): CgroupLayout {
  try {
    return statfsSync("/sys/fs/cgroup").type === CGROUP2_SUPER_MAGIC ? "v2" : "v1";
  } catch {
    return "v1";
  }
}

function mountCgroupV2(ctx: MountContext, e: MountEntry, target: string): void {
  try {
    mount(ctx.sys, e.source, target, "cgroup2", e.flags, e.data);
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code !== "EPERM" && code !== "EBUSY") throw failure(describeMount(e), err);
  }
  // A fresh cgroup2 mount is refused in a user namespace without its own cgroup namespace: bind
  // the host's hierarchy instead, or the container's own cgroup to emulate a cgroup namespace.
  const source = ctx.cgroupns && ctx.opts.cgroup2Path ? ctx.opts.cgroup2Path : "/sys/fs/cgroup";
  mountOne(ctx, { ...e, device: "bind", source, flags: MS.BIND | e.flags, clearedFlags: 0, data: "" });
}

/** A tmpfs holding one directory per hierarchy, each the container's own cgroup (or a fresh mount in a cgroup namespace). */
function mountCgroupV1(ctx: MountContext, e: MountEntry): void {
  const hierarchies = ctx.opts.cgroupV1;
  if (!hierarchies) throw new FailedPreconditionError(`${describeMount(e)}: the host uses cgroup v1, and the caller gave no v1 hierarchies to mount`);
  const defaults = MS.NOEXEC | MS.NOSUID | MS.NODEV;
  mountOne(ctx, { destination: e.destination, source: "tmpfs", device: "tmpfs", flags: defaults, clearedFlags: 0, propagation: e.propagation, data: "mode=755" });
  for (const h of hierarchies) {
    const name = posix.basename(h.mountpoint);
    const destination = posix.join(e.destination, name);
    if (ctx.cgroupns) {
      const dir = mkdirAllInRoot(ctx.rootfs, destination, 0o755);
      const [source, data] = name === "systemd" ? ["systemd", "name=systemd"] : ["cgroup", name];
      try {
        mount(ctx.sys, source, dir, "cgroup", defaults | (e.flags & MS.RDONLY), data);
      } catch (err) {
        throw failure(`mount cgroup ${name} on ${destination}`, err);
      }
    } else {
      mountOne(ctx, { destination, source: h.path, device: "bind", flags: MS.BIND | MS.REC | e.flags, clearedFlags: 0, propagation: e.propagation, data: "" });
    }
  }
  // Co-mounted controllers ("cpu,cpuacct") get one symlink per controller, as on the host.
  const dir = secureJoin(ctx.rootfs, e.destination);
  for (const h of hierarchies) {
    const name = posix.basename(h.mountpoint);
    if (!name.includes(",")) continue;
    for (const controller of name.split(",")) {
      try {
        symlinkSync(name, posix.join(dir, controller));
      } catch (err) {
        if (errnoCode(err) !== "EEXIST") throw failure(`linking cgroup controller ${controller} to ${name} in ${e.destination}`, err);
      }
    }
  }
}

function mountOne(ctx: MountContext, e: MountEntry): void {
  const { rootfs } = ctx;
  try {
    if (e.device === "bind") {
      // runc fails here too (its host side cannot open the source): nothing could be bound.
      if (!statSync(e.source, { throwIfNoEntry: false })) {
        throw new NotFoundError(`mount ${e.destination}: bind mount source ${e.source} does not exist`);
      }
    }
    if (e.device === "proc" || e.device === "sysfs") {
      // Never through a symlink: the destination is taken as written, and must be a real directory.
      const lexical = inRoot(rootfs, cleanPath(e.destination));
      const st = lstatSync(lexical, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) throw new InvalidArgumentError(`${describeMount(e)}: ${e.device} must be mounted on an ordinary directory, and ${lexical} is not one`);
      const target = mkdirAllInRoot(rootfs, e.destination, 0o755);
      checkProcMount(rootfs, target, e);
      mountPropagate(ctx, e, target);
      return;
    }
    const target = createMountpoint(ctx, e);
    switch (e.device) {
      case "bind":
        mountPropagate(ctx, e, target);
        remountBind(ctx, e, target);
        return;
      case "cgroup": {
        const layout = ctx.opts.cgroupLayout ?? detectCgroupLayout();
        if (layout === "v2") mountCgroupV2(ctx, e, target);
        else mountCgroupV1(ctx, e);
        return;
      }
      default:
        mountPropagate(ctx, e, target);
    }
  } catch (err) {
    throw failure(describeMount(e), err);
  }
}

/**
 * prepareRoot, then every spec mount in order below the rootfs. The mounts' options are all
 * checked first, so a refused one fails before anything is mounted.
 */
export function mountAll(sys: Syscalls, spec: Spec, opts: RootfsOptions): void {
  const entries = mountEntries(spec, opts.bundle ?? process.cwd());
  prepareRoot(sys, spec, opts.rootfs);
  const ctx: MountContext = {
    sys,
    rootfs: opts.rootfs,
    cgroupns: spec.linux?.namespaces?.some((n) => n.type === "cgroup") ?? false,
    opts,
    mountFlagsOf: opts.mountFlagsOf ?? ((p) => mountFlagsFromMountinfo(p)),
  };
  for (const e of entries) mountOne(ctx, e);
}

// ---------------------------------------------------------------------------------------------
// /dev (runc's createDevices, setupPtmx, setupDevSymlinks)

/** The nodes every container gets (runc's AllowedDevices with a path), unless linux.devices names the same path. */
export const DEFAULT_DEVICES: readonly Device[] = [
  { path: "/dev/null", type: "c", major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { path: "/dev/random", type: "c", major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { path: "/dev/full", type: "c", major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { path: "/dev/tty", type: "c", major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
  { path: "/dev/zero", type: "c", major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { path: "/dev/urandom", type: "c", major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
];

function deviceList(spec: Spec): Device[] {
  const specDevices = spec.linux?.devices ?? [];
  const defaults = DEFAULT_DEVICES.filter((d) => !specDevices.some((s) => s.path === d.path));
  return [...defaults, ...specDevices];
}

function deviceTypeBits(d: Device): number {
  switch (d.type) {
    case "c":
    case "u":
      return S_IFCHR;
    case "b":
      return S_IFBLK;
    case "p":
      return S_IFIFO;
    default:
      throw new InvalidArgumentError(`device ${d.path}: type "${String(d.type)}" is not one of c, u, b, p`);
  }
}

/** runc sets up /dev unless the spec bind-mounts one (then the host's nodes are already there). */
function needsSetupDev(spec: Spec, bundle: string): boolean {
  return !mountEntries(spec, bundle).some((e) => e.device === "bind" && cleanPath(e.destination) === "/dev");
}

function createDeviceNode(sys: Syscalls, rootfs: string, d: Device): void {
  const path = cleanPath(d.path);
  const dir = mkdirAllInRoot(rootfs, posix.dirname(path), 0o755);
  const target = posix.join(dir, posix.basename(path));
  const mode = deviceTypeBits(d) | ((d.fileMode ?? 0o666) & ~S_IFMT & 0o7777);
  try {
    sys.mknod(target, mode, d.major ?? 0, d.minor ?? 0);
  } catch (err) {
    // Already there (the image ships it): keep it, as runc does.
    if (errnoCode(err) === "EEXIST") return;
    if (errnoCode(err) !== "EPERM") throw failure(`creating device ${d.path} (${d.type} ${d.major ?? 0}:${d.minor ?? 0}) at ${target}`, err);
    // Not allowed to mknod (a user namespace): bind the host's node over an empty file instead.
    try {
      closeSync(openSync(target, constants.O_CREAT | constants.O_NOFOLLOW | constants.O_WRONLY, 0));
      mount(sys, d.path, target, "bind", MS.BIND, "");
    } catch (bindErr) {
      throw failure(`binding host device ${d.path} to ${target} (mknod was refused)`, bindErr);
    }
    return;
  }
  // mknod made it as this process's uid/gid; lchown never follows a symlink swapped in since.
  const uid = d.uid ?? 0;
  const gid = d.gid ?? 0;
  const st = lstatSync(target);
  if (st.uid !== uid || st.gid !== gid) lchownSync(target, uid, gid);
}

function symlinkInRoot(rootfs: string, target: string, linkPath: string): void {
  const dir = mkdirAllInRoot(rootfs, posix.dirname(linkPath), 0o755);
  try {
    symlinkSync(target, posix.join(dir, posix.basename(linkPath)));
  } catch (err) {
    if (errnoCode(err) !== "EEXIST") throw failure(`linking ${linkPath} to ${target}`, err);
  }
}

/**
 * The device nodes (defaults, then linux.devices), /dev/ptmx as a link into the container's own
 * devpts, and the /dev/fd, stdin, stdout, stderr (and core) links. Nodes are made under umask 0
 * so their modes are exactly the spec's; the umask goes back to runc's 0o022 afterwards (the
 * process's own umask is the init's business, just before exec). Nothing happens when the spec
 * bind-mounts /dev.
 */
export function createDevices(sys: Syscalls, spec: Spec, opts: RootfsOptions): void {
  const { rootfs } = opts;
  if (!needsSetupDev(spec, opts.bundle ?? process.cwd())) return;
  sys.umask(0);
  try {
    for (const d of deviceList(spec)) {
      // The node exists only for the device cgroup.
      if (!d.path) continue;
      // /dev/ptmx must be the devpts instance's, below.
      if (cleanPath(d.path) === "/dev/ptmx") continue;
      createDeviceNode(sys, rootfs, d);
    }
  } finally {
    sys.umask(0o022);
  }
  const ptmx = posix.join(mkdirAllInRoot(rootfs, "/dev", 0o755), "ptmx");
  try {
    unlinkSync(ptmx);
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw failure(`removing ${ptmx} to link it to pts/ptmx`, err);
  }
  symlinkInRoot(rootfs, "pts/ptmx", "/dev/ptmx");
  const links: Array<[string, string]> = [
    ["/proc/self/fd", "/dev/fd"],
    ["/proc/self/fd/0", "/dev/stdin"],
    ["/proc/self/fd/1", "/dev/stdout"],
    ["/proc/self/fd/2", "/dev/stderr"],
  ];
  // The kernel may be built without /proc/kcore (CONFIG_PROC_KCORE); link it only if the host has it.
  if (statSync("/proc/kcore", { throwIfNoEntry: false })) links.push(["/proc/kcore", "/dev/core"]);
  for (const [target, link] of links) symlinkInRoot(rootfs, target, link);
}

// ---------------------------------------------------------------------------------------------
// pivot_root and after

/**
 * runc's pivot_root(".", "."): the rootfs becomes `/` with the old root stacked on it, then the
 * old root is made rslave (so its unmount cannot propagate to the host) and detached. No
 * directory is needed in the rootfs for the old root.
 */
export function pivotRoot(sys: Syscalls, rootfs: string): void {
  let oldRoot: number;
  try {
    oldRoot = sys.open("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
  } catch (err) {
    throw failure("opening the old root before pivot_root", err);
  }
  try {
    sys.chdir(rootfs);
    sys.pivotRoot(".", ".");
    // Our cwd is the old root now, but the kernel does not promise it: go there by fd.
    sys.fchdir(oldRoot);
    mount(sys, "", ".", "", MS.SLAVE | MS.REC, "");
    sys.umount2(".", MNT_DETACH);
    sys.chdir("/");
  } catch (err) {
    throw failure(`pivot_root into ${rootfs}`, err);
  } finally {
    sys.close(oldRoot);
  }
}

/** After pivot_root, a shared or unbindable linux.rootfsPropagation is applied to the new `/` (private and slave were done by prepareRoot). */
export function applyRootPropagation(sys: Syscalls, spec: Spec): void {
  const flags = rootPropagation(spec);
  if (!flags || flags & (MS.PRIVATE | MS.SLAVE)) return;
  try {
    mount(sys, "", "/", "", flags, "");
  } catch (err) {
    throw failure(`applying linux.rootfsPropagation "${spec.linux?.rootfsPropagation}" to /`, err);
  }
}

/** A container path as this process reaches it (`host`, for node:fs) and as mount(2) after pivot_root names it (`path`). */
function inContainer(opts: ContainerViewOptions, p: string): { host: string; path: string } {
  const root = opts.containerRoot ?? "/";
  const host = secureJoin(root, p);
  const base = posix.normalize(root).replace(/(.)\/$/, "$1");
  return { host, path: base === "/" ? host : host.slice(base.length) || "/" };
}

/** process.cwd exists before exec, as runc makes it (the image may not have it). */
export function createCwd(spec: Spec, opts: ContainerViewOptions = {}): void {
  const cwd = spec.process?.cwd;
  if (!cwd) return;
  const { host } = inContainer(opts, cwd);
  try {
    mkdirSync(host, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw failure(`creating process.cwd ${cwd}`, err);
  }
}

/**
 * Each path bound over itself, then remounted read-only keeping the nosuid/nodev/noexec it
 * already had (dropping one would be refused for a locked mount). A path that does not exist is
 * skipped.
 */
export function readonlyPaths(sys: Syscalls, paths: readonly string[], opts: ContainerViewOptions = {}): void {
  const flagsOf = opts.mountFlagsOf ?? ((p: string) => mountFlagsFromMountinfo(p));
  for (const p of paths) {
    const { host, path } = inContainer(opts, p);
    if (!lstatSync(host, { throwIfNoEntry: false })) continue;
    try {
      mount(sys, path, path, "", MS.BIND | MS.REC, "");
    } catch (err) {
      if (errnoCode(err) === "ENOENT") continue;
      throw failure(`making ${p} read-only: binding it onto itself`, err);
    }
    const keep = flagsOf(path) & (MS.NOSUID | MS.NODEV | MS.NOEXEC);
    try {
      mount(sys, path, path, "", keep | MS.BIND | MS.REMOUNT | MS.RDONLY, "");
    } catch (err) {
      throw failure(`making ${p} read-only: remounting it`, err);
    }
  }
}

/** /dev/null's device number as node:fs reports st_rdev (glibc's makedev(1, 3)). */
const DEV_NULL_RDEV = (1 << 8) | 3;

/**
 * A masked file gets /dev/null bound over it; a masked directory an empty read-only tmpfs. The
 * container's /dev/null must be the real null device, or an image could make the mask a bind of
 * the very file it should hide. A path that does not exist is skipped.
 */
export function maskPaths(sys: Syscalls, paths: readonly string[], opts: ContainerViewOptions = {}): void {
  if (paths.length === 0) return;
  const devNull = inContainer(opts, "/dev/null");
  const st = statSync(devNull.host, { throwIfNoEntry: false });
  if (!st?.isCharacterDevice() || st.rdev !== DEV_NULL_RDEV) {
    throw new FailedPreconditionError(`cannot mask paths: the container's /dev/null (${devNull.host}) is not the null device (char 1:3)`);
  }
  const done = new Set<string>();
  for (const p of paths) {
    const { host, path } = inContainer(opts, p);
    const target = statSync(host, { throwIfNoEntry: false });
    if (!target || done.has(path)) continue;
    done.add(path);
    try {
      if (target.isDirectory()) {
        // A read-only tmpfs with no options, as runc 1.1 (the oracle the tests compare with) mounts it.
        mount(sys, "tmpfs", path, "tmpfs", MS.RDONLY, "");
      } else {
        mount(sys, "/dev/null", path, "", MS.BIND, "");
      }
    } catch (err) {
      if (errnoCode(err) === "ENOENT") continue;
      throw failure(`masking ${p}`, err);
    }
  }
}

/**
 * tmpfs and /dev mounts asked to be read-only were mounted writable (to fill them); now they
 * are remounted read-only. EBUSY is retried a few times, as runc does.
 */
export function remountReadonlyMounts(sys: Syscalls, spec: Spec, opts: ContainerViewOptions & { bundle?: string } = {}): void {
  for (const e of mountEntries(spec, opts.bundle ?? process.cwd())) {
    if (!(e.flags & MS.RDONLY)) continue;
    if (e.device !== "tmpfs" && cleanPath(e.destination) !== "/dev") continue;
    const { path } = inContainer(opts, e.destination);
    const flags = e.flags | MS.REMOUNT | MS.BIND | MS.RDONLY;
    for (let attempt = 1; ; attempt++) {
      try {
        mount(sys, "", path, "", flags, "");
        break;
      } catch (err) {
        if (errnoCode(err) !== "EBUSY" || attempt === 5) throw failure(`remounting ${e.destination} read-only`, err);
        sleepSync(100);
      }
    }
  }
}

/** root.readonly: `/` remounted read-only; if refused, again with the flags it already has (they may be locked). */
export function remountRootReadonly(sys: Syscalls, opts: ContainerViewOptions = {}): void {
  const flags = MS.BIND | MS.REMOUNT | MS.RDONLY;
  try {
    mount(sys, "", "/", "", flags, "");
    return;
  } catch {
    // retried below with the current flags
  }
  const current = (opts.mountFlagsOf ?? ((p: string) => mountFlagsFromMountinfo(p)))("/");
  try {
    mount(sys, "", "/", "", flags | current, "");
  } catch (err) {
    throw failure("remounting / read-only (root.readonly)", err);
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * The whole filesystem setup, in runc's order. Callers that need to act between steps call the
 * steps themselves, in this same order: createContainer hooks go before pivotRoot, sysctls and
 * the hostname after createCwd (runc: prepareRootfs, then hostname and sysctls, then
 * readonlyPaths, maskPaths and finalizeRootfs's read-only remounts).
 */
export function prepareRootfs(sys: Syscalls, spec: Spec, opts: RootfsOptions): void {
  mountAll(sys, spec, opts);
  createDevices(sys, spec, opts);
  pivotRoot(sys, opts.rootfs);
  applyRootPropagation(sys, spec);
  createCwd(spec, opts);
  readonlyPaths(sys, spec.linux?.readonlyPaths ?? [], opts);
  maskPaths(sys, spec.linux?.maskedPaths ?? [], opts);
  remountReadonlyMounts(sys, spec, opts);
  if (spec.root?.readonly) remountRootReadonly(sys, opts);
}
