// `create`, the launcher half: read the bundle, claim the state directory, make the exec FIFO,
// enter or create the namespaces on this (main) thread, then spawn the init stage as a fresh Node
// process — libuv forks from the main thread, so the child starts inside those namespaces, as PID 1
// of a new PID namespace. No JavaScript runs in a forked child (see DESIGN.md, "Low-level facts").
// While the init's Node boots, the launcher makes the cgroup, checks config.json against the
// schema, applies the limits and gets the seccomp filter (seccomp-cache.ts), then sends the init
// its configuration on fd 3; the init reports ready or an error there, then blocks on the FIFO
// until `start`.
import type { ChildProcess } from "node:child_process";
import { chmodSync, closeSync, existsSync, readFileSync, statSync, writeFile } from "node:fs";
import { resolve } from "node:path";
import { FailedPreconditionError, InvalidArgumentError } from "../errors";
import { mknod, S_IFIFO } from "../linux/file-calls";
import { CLONE, type Syscalls } from "../linux/types";
import { writeFileAtomicSync } from "../store/atomic";
import { makeCgroup, type PreparedCgroup } from "./cgroup-of";
import { hooksOf, runHooks } from "./hooks";
import type { InitConfig } from "./init-config";
import type { NamespaceType, Spec } from "./spec-types";
import { type ContainerRecord, claimContainerDir, fifoPath, processStartTime, removeContainerDir, rfc3339Nano, writeRecord } from "./state-dir";
import { preSpawnView, readSpec, validateSpec } from "./validate";
import { O } from "../linux/syscalls";
import { connectUnixSocket } from "../linux/unix-socket";
import { trace } from "./trace";
import { compileContainerSeccomp } from "./seccomp-of";
import { sysctlRefusal } from "../security/sysctl";
import { processProblem } from "./process-check";
import { killStage, type StageCommand, startStage, type WarningSink } from "./stage";

export const NS_FLAGS: Record<NamespaceType, number> = {
  mount: CLONE.NEWNS,
  uts: CLONE.NEWUTS,
  ipc: CLONE.NEWIPC,
  network: CLONE.NEWNET,
  pid: CLONE.NEWPID,
  cgroup: CLONE.NEWCGROUP,
  user: CLONE.NEWUSER,
  time: CLONE.NEWTIME,
};

export interface CreateOptions {
  root: string;
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  /**
   * Where relative cgroupsPaths go, below the caller's own cgroup. "" (runc's rule) for
   * `berth runtime`; the daemon passes its configured root.
   */
  cgroupRoot?: string;
  /** How to start the init stage: this same program, `runtime init <config>`. */
  initCommand: StageCommand;
  /** Told what the init could not do but is not fatal (runc logs these as warnings). */
  warn?: WarningSink;
}

export interface Created {
  record: ContainerRecord;
  /** The init process, still our child (for `run`, which waits for it). */
  child: ChildProcess;
}

/** What runc refuses up front, so nothing is made for a config that cannot run here. */
function refuseUnsupported(spec: Spec, where: string): void {
  if (spec.linux?.namespaces?.some((n) => n.type === "user")) {
    throw new InvalidArgumentError(`${where}: user namespaces are not supported by berth: unshare(CLONE_NEWUSER) and setns(user) fail with EINVAL in a multi-threaded process such as Node.js`);
  }
  if (spec.process?.apparmorProfile && !existsSync("/sys/kernel/security/apparmor")) {
    throw new InvalidArgumentError(`${where}: process.apparmorProfile "${spec.process.apparmorProfile}" is set, but AppArmor is not enabled on this host`);
  }
  if (spec.process?.selinuxLabel && !existsSync("/sys/fs/selinux/enforce")) {
    throw new InvalidArgumentError(`${where}: process.selinuxLabel is set, but SELinux is not enabled on this host`);
  }
  // runc's rule: with no UTS namespace listed (new or joined), these would be the host's.
  const hasUts = spec.linux?.namespaces?.some((n) => n.type === "uts");
  if (spec.hostname && !hasUts) throw new InvalidArgumentError(`${where}: hostname "${spec.hostname}" is set, but the container has no UTS namespace`);
  if (spec.domainname && !hasUts) throw new InvalidArgumentError(`${where}: domainname "${spec.domainname}" is set, but the container has no UTS namespace`);
  if (spec.linux?.seccomp?.listenerPath) throw new InvalidArgumentError(`${where}: linux.seccomp.listenerPath (seccomp user notification) is not supported by berth`);
  const proc = spec.process && processProblem(spec.process);
  if (proc) throw new InvalidArgumentError(`${where}: ${proc}`);
  // HOST_NAME_MAX: sethostname would refuse it once the container is half made.
  for (const f of ["hostname", "domainname"] as const) {
    if ((spec[f]?.length ?? 0) > 64) throw new InvalidArgumentError(`${where}: ${f} is ${spec[f]!.length} characters; at most 64`);
  }
  const sysctls = Object.keys(spec.linux?.sysctl ?? {});
  if (sysctls.length) {
    const has = (t: NamespaceType) => spec.linux?.namespaces?.find((n) => n.type === t);
    const net = has("network");
    const ns = { ipc: Boolean(has("ipc")), ownNet: Boolean(net) && !(net?.path && sameNamespace(net.path, "/proc/self/ns/net")), uts: Boolean(has("uts")) };
    for (const key of sysctls) {
      const why = sysctlRefusal(key, ns);
      if (why) throw new InvalidArgumentError(`${where}: linux.sysctl: ${why}`);
    }
  }
}

/** Whether two namespace files name the same namespace (false when either cannot be read). */
export function sameNamespace(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

/** /proc/<pid>/ns/ names of the namespaces the launcher enters for the init. */
export const PROC_NS_NAMES: Partial<Record<NamespaceType, string>> = { uts: "uts", ipc: "ipc", network: "net", pid: "pid", cgroup: "cgroup", time: "time" };

/**
 * Puts the calling (main) thread back into the namespaces it had: once the stage is spawned, so
 * that this process can start threads again (libuv's thread pool, at its first asynchronous file
 * operation) — the kernel refuses CLONE_THREAD while a thread's PID namespace for children is not
 * its own (EINVAL, and libuv aborts).
 */
export type RestoreNamespaces = () => void;

/** Keeps an fd of this thread's own namespace of `type`, to go back to it (RestoreNamespaces). */
export function ownNamespace(sys: Syscalls, type: NamespaceType): [fd: number, flag: number] {
  // For pid and time, the namespace the thread is in: what it gives its children is what changes.
  return [sys.open(`/proc/thread-self/ns/${PROC_NS_NAMES[type]}`, O.RDONLY | O.CLOEXEC), NS_FLAGS[type]];
}

export function restoreNamespaces(sys: Syscalls, own: Array<[number, number]>): RestoreNamespaces {
  return () => {
    for (const [fd, flag] of own.splice(0)) {
      try {
        sys.setns(fd, flag);
      } finally {
        sys.close(fd);
      }
    }
  };
}

/** Applies the namespaces of `spec` to the calling (main) thread: join by path, or unshare new ones. */
function enterNamespaces(sys: Syscalls, spec: Spec): RestoreNamespaces {
  let unshareFlags = 0;
  const own: Array<[number, number]> = [];
  const restore = restoreNamespaces(sys, own);
  for (const ns of spec.linux?.namespaces ?? []) {
    // The init makes (or joins) these itself: the cgroup namespace once it is inside its cgroup, so
    // that cgroup is its root; the mount namespace so that its pivot_root cannot move our root too.
    if (ns.type === "cgroup" || ns.type === "mount") continue;
    const flag = NS_FLAGS[ns.type];
    // Not time: setns to a time namespace needs a single-threaded caller, and what a thread's
    // children get there does not stop it from starting threads.
    try {
      if (ns.type !== "time") own.push(ownNamespace(sys, ns.type));
    } catch (err) {
      restore();
      throw err;
    }
    if (!ns.path) {
      unshareFlags |= flag;
      continue;
    }
    let fd: number;
    try {
      fd = sys.open(ns.path, O.RDONLY | O.CLOEXEC);
    } catch (err) {
      restore();
      throw new InvalidArgumentError(`cannot join ${ns.type} namespace ${ns.path}: ${(err as Error).message}`);
    }
    try {
      sys.setns(fd, flag);
    } catch (err) {
      restore();
      throw new InvalidArgumentError(`cannot join ${ns.type} namespace ${ns.path}: ${(err as Error).message}`);
    } finally {
      sys.close(fd);
    }
  }
  try {
    if (unshareFlags) sys.unshare(unshareFlags);
  } catch (err) {
    restore();
    throw err;
  }
  return restore;
}

function mountNamespace(spec: Spec): InitConfig["mountNs"] {
  const ns = spec.linux?.namespaces?.find((n) => n.type === "mount");
  if (!ns) return "host";
  return ns.path ? { path: ns.path } : "new";
}

/** The soft RLIMIT_NOFILE our caller had: Node raised ours at start, the container gets the caller's. */
function callerNofile(): number | undefined {
  try {
    const limits = readFileSync(`/proc/${process.ppid}/limits`, "utf8");
    const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(limits);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export async function createContainer(sys: Syscalls, opts: CreateOptions): Promise<Created> {
  const bundle = resolve(opts.bundle);
  const { parsed, file: where } = readSpec(bundle);
  // The schema check (its validator is the largest code create loads) waits for the init's boot
  // when the fields read before the spawn are sound; otherwise it runs now and names the problem.
  const early = preSpawnView(parsed);
  const spec = early ?? (await validateSpec(parsed, where));
  trace("create:validated");
  refuseUnsupported(spec, where);
  const rootfs = resolve(bundle, spec.root!.path);
  if (!existsSync(rootfs) || !statSync(rootfs).isDirectory()) throw new InvalidArgumentError(`${where}: root.path ${rootfs} is not a directory`);

  claimContainerDir(opts.root, opts.id);
  let child: ChildProcess | undefined;
  const fds: number[] = [];
  let cgroupCleanup: (() => Promise<void>) | undefined;
  let restore: RestoreNamespaces | undefined;
  const made: { cgroup?: PreparedCgroup; joined?: Promise<unknown>; pid?: number } = {};
  try {
    const fifo = fifoPath(opts.root, opts.id);
    mknod(fifo, S_IFIFO | 0o622);
    // mknod applies the umask; the init may open it after switching to a non-root user.
    chmodSync(fifo, 0o622);
    fds.push(sys.open(fifo, O.PATH | O.CLOEXEC));
    trace("create:state-dir");
    let consoleFd: number | undefined;
    if (spec.process?.terminal) {
      if (!opts.consoleSocket) throw new InvalidArgumentError("process.terminal is true: --console-socket is required");
      consoleFd = connectUnixSocket(opts.consoleSocket);
      fds.push(consoleFd);
    } else if (opts.consoleSocket) {
      throw new InvalidArgumentError("--console-socket was given but process.terminal is false");
    }

    restore = enterNamespaces(sys, spec);
    const newCgroupNs = Boolean(spec.linux?.namespaces?.some((n) => n.type === "cgroup"));
    // What remains is done while the init boots: the seccomp filter, the cgroup, its configuration.
    const prepare = async (pid: number): Promise<InitConfig> => {
      restore?.();
      restore = undefined;
      made.pid = pid;
      const cgroup = await makeCgroup(spec, opts.id, opts.cgroupRoot ?? "");
      made.cgroup = cgroup;
      cgroupCleanup = cgroup.destroy;
      // The cgroups the launcher moves the init into (cgroup-of.ts's cgroupJoins): the kernel's
      // wait that this costs passes on libuv's thread pool while this thread checks the config
      // against the schema, applies its limits and compiles the filter.
      const joined = Promise.all(cgroup.joins.launcher.map((file) => new Promise<void>((ok, fail) => writeFile(file, String(pid), (err) => (err ? fail(err) : ok())))));
      joined.catch(() => {});
      made.joined = joined;
      if (early) await validateSpec(parsed, where);
      trace("create:schema");
      await cgroup.limit(spec);
      trace("create:cgroup");
      const seccomp = await compileContainerSeccomp(spec, opts.root);
      trace("create:seccomp");
      // A cgroup namespace is rooted where the init is when it unshares one: then the move must be
      // done first. Otherwise the kernel's wait (10-18 ms, an RCU grace period) overlaps the init's
      // own setup, and create waits for it only before it returns.
      if (newCgroupNs) await joined;
      trace("create:joined");
      return {
        id: opts.id,
        spec,
        rootfs,
        bundle,
        fifoFd: 4,
        consoleFd: consoleFd === undefined ? undefined : 5,
        joinCgroup: cgroup.joins.stage,
        newCgroupNs: Boolean(spec.linux?.namespaces?.some((n) => n.type === "cgroup" && !n.path)),
        joinCgroupNs: spec.linux?.namespaces?.find((n) => n.type === "cgroup" && n.path)?.path,
        mountNs: mountNamespace(spec),
        nofile: callerNofile(),
        seccomp: seccomp ? { program: seccomp.program.toString("base64"), flags: seccomp.flags } : undefined,
        cgroupMounts: { cgroupLayout: cgroup.layout, cgroupV1: cgroup.v1, cgroup2Path: cgroup.cgroup2Path },
        preserveFds: opts.preserveFds ?? 0,
        hostPid: pid,
      };
    };
    // prestart (deprecated, still run) and createRuntime, in this process's namespaces: hooks.ts.
    const runtimeHooks = async () => {
      const state = { id: opts.id, pid: made.pid ?? 0, status: "creating" as const, bundle, annotations: spec.annotations };
      await runHooks("prestart", hooksOf(spec, "prestart"), state);
      await runHooks("createRuntime", hooksOf(spec, "createRuntime"), state);
    };
    child = await startStage(opts.initCommand, { handle: fds[0]!, console: consoleFd, preserve: opts.preserveFds ?? 0 }, `container "${opts.id}"`, prepare, opts.warn, runtimeHooks);
    await made.joined;
    const pid = child.pid!;

    const record: ContainerRecord = {
      id: opts.id,
      pid,
      pidStartTime: processStartTime(pid) ?? "",
      bundle,
      rootfs,
      created: rfc3339Nano(),
      owner: "root",
      spec,
      cgroup: made.cgroup?.location,
    };
    writeRecord(opts.root, record);
    if (opts.pidFile) writeFileAtomicSync(resolve(opts.pidFile), String(pid));
    trace("create:done");
    return { record, child };
  } catch (caught) {
    let err = caught;
    try {
      restore?.();
    } catch {}
    if (child) await killStage(child);
    // A memory limit below what the init needs to set the container up kills it on the way
    // (SIGKILL, "exited before it was ready"): say so, as runc does.
    if (made.cgroup && (await made.cgroup.oomKills()) > 0) {
      err = new FailedPreconditionError(`container "${opts.id}": its init was OOM-killed while setting the container up (memory limit too low?): ${(caught as Error).message}`);
    }
    // A move into the cgroup still under way would keep it busy.
    await made.joined?.catch(() => {});
    await cgroupCleanup?.().catch(() => {});
    removeContainerDir(opts.root, opts.id);
    throw err;
  } finally {
    for (const fd of fds) {
      try {
        closeSync(fd);
      } catch {}
    }
  }
}
