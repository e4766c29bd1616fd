// The init stage: a fresh Node process started by the launcher inside the container's new
// namespaces (PID 1 of its PID namespace). It runs straight through, synchronously: cgroup,
// cgroup namespace, rootfs and pivot_root, terminal, sysctls, masked and read-only paths,
// hostname, rlimits, user and capabilities, no_new_privs, then waits on the exec FIFO for
// `start`, loads seccomp last and execs the user's program. Nothing here may print to stdio:
// those are the container's, so progress and errors go to the launcher over fd 3.
import { readSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { CLONE, type Syscalls } from "../linux/types";
import { O } from "../linux/syscalls";
import { openPty, setWindowSize } from "../linux/pty";
import { sendFdOver } from "../linux/unix-socket";
import { applyCapabilities, dropBoundingSet } from "../security/capabilities";
import { hooksOf, runHooksSync } from "./hooks";
import type { ExecConfig, InitConfig } from "./init-config";
import { applyRootPropagation, createCwd, createDevices, maskPaths, mountAll, pivotRoot, readonlyPaths, remountReadonlyMounts, remountRootReadonly } from "./rootfs";
import type { Process, Spec } from "./spec-types";
import { trace } from "./trace";

const PR_SET_KEEPCAPS = 8;
const PR_SET_NO_NEW_PRIVS = 38;
const SYNC_FD = 3;
const PTMX = "/dev/ptmx";

export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5, RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10, RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

/** A step's failure, worded for the person reading `berth runtime create`'s error. */
class InitError extends Error {}

function step<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InitError) throw err;
    throw new InitError(`${what}: ${(err as Error).message}`);
  }
}

let readyReported = false;

/**
 * One line from the launcher on the sync pipe (blocking on this side); `gone` says what a closed
 * pipe means at this point. Reads stop at the newline: nothing after it is the line's.
 */
function readLine(gone: string): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(SYNC_FD, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EAGAIN" || (err as NodeJS.ErrnoException).code === "EINTR") continue;
      throw err;
    }
    if (n === 0) throw new InitError(gone);
    const nl = buf.subarray(0, n).indexOf(10);
    chunks.push(Buffer.from(buf.subarray(0, nl < 0 ? n : nl)));
    if (nl >= 0) return Buffer.concat(chunks).toString("utf8");
  }
}

/** Blocks until the launcher has run its hooks: "resume", or why not. */
function waitForResume(): void {
  const word = readLine("the launcher went away while its hooks ran");
  if (word !== "resume") throw new InitError(word);
}

function report(msg: { ready?: boolean; warning?: string; error?: string; hooks?: boolean }): void {
  writeSync(SYNC_FD, `${JSON.stringify(msg)}\n`);
  if (msg.ready) readyReported = true;
}

/** execvp-style lookup of args[0] in the container's PATH (after pivot_root, so paths are the container's). */
export function lookPath(file: string, env: string[]): string {
  if (file.includes("/")) return file;
  const path = env.find((e) => e.startsWith("PATH="))?.slice(5) ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const dir of path.split(":")) {
    const candidate = join(dir || ".", file);
    try {
      const st = statSync(candidate);
      if (st.isFile() && st.mode & 0o111) return candidate;
    } catch {}
  }
  throw new InitError(`exec: "${file}": executable file not found in $PATH`);
}

export function setupUser(sys: Syscalls, proc: Process): void {
  const { uid, gid, additionalGids = [] } = proc.user;
  step("setgroups", () => sys.setgroups(additionalGids));
  // Permitted capabilities survive the switch away from uid 0 only with keep-caps set.
  sys.prctl(PR_SET_KEEPCAPS, 1);
  step(`setresgid(${gid})`, () => sys.setresgid(gid, gid, gid));
  step(`setresuid(${uid})`, () => sys.setresuid(uid, uid, uid));
  sys.prctl(PR_SET_KEEPCAPS, 0);
}

function writeSysctls(sysctl: Record<string, string> | undefined): void {
  for (const [key, value] of Object.entries(sysctl ?? {})) {
    step(`sysctl ${key}`, () => writeFileSync(`/proc/sys/${key.replace(/\./g, "/")}`, value));
  }
}

function setupTerminal(sys: Syscalls, consoleFd: number, size: Process["consoleSize"]): void {
  const { master, slavePath } = step("open the container's terminal", () => openPty());
  if (size) setWindowSize(master, size.height, size.width);
  // The message names the fd it carries, the master, as runc's does ("/dev/ptmx").
  step("send the terminal to the console socket", () => sendFdOver(consoleFd, master, PTMX));
  sys.close(master);
  sys.close(consoleFd);
  const slave = step(`open ${slavePath}`, () => sys.open(slavePath, O.RDWR));
  for (const fd of [0, 1, 2]) sys.dup2(slave, fd);
  sys.setControllingTerminal(0);
  if (slave > 2) sys.close(slave);
}

export function runInit(sys: Syscalls, cfg: InitConfig): never {
  const spec: Spec = cfg.spec;
  const proc = spec.process!;

  // Node marks fds 0-2 close-on-exec at start; the user's program needs them.
  for (const fd of [0, 1, 2]) sys.clearCloexec(fd);
  // Into the container's cgroup now, after Node has booted, so its start-up memory is not charged;
  // and before any mount namespace change, since the cgroup paths (and a namespace path to join)
  // are the host's. "0" is the writer (cgroup-of.ts's cgroupJoins says why this thread alone in v1).
  for (const file of cfg.joinCgroup) step(`join cgroup ${file}`, () => writeFileSync(file, "0"));
  if (cfg.joinCgroupNs) {
    const fd = step(`open cgroup namespace ${cfg.joinCgroupNs}`, () => sys.open(cfg.joinCgroupNs!, O.RDONLY | O.CLOEXEC));
    step("join cgroup namespace", () => sys.setns(fd, CLONE.NEWCGROUP));
    sys.close(fd);
  } else if (cfg.newCgroupNs) {
    step("unshare cgroup namespace", () => sys.unshare(CLONE.NEWCGROUP));
  }
  // The mount namespace is ours alone (the launcher stays outside): Node is threaded, so it
  // applies to this, the main thread, which is the one that execs.
  if (cfg.mountNs === "new") step("unshare mount namespace", () => sys.unshare(CLONE.NEWNS));
  else if (cfg.mountNs !== "host") {
    const fd = step(`open mount namespace ${cfg.mountNs.path}`, () => sys.open((cfg.mountNs as { path: string }).path, O.RDONLY | O.CLOEXEC));
    step("unshare(CLONE_FS)", () => sys.unshare(CLONE.FS));
    step(`join mount namespace ${(cfg.mountNs as { path: string }).path}`, () => sys.setns(fd, CLONE.NEWNS));
    sys.close(fd);
  }
  trace("init:cgroup");
  // A new session: the container's init leads it, and a terminal can become its controlling one.
  step("setsid", () => sys.setsid());

  // A joined mount namespace gets the rootfs set up in it too, as runc does: the spec's root and
  // mounts say what the container sees, whoever made the namespace.
  const hasMountNs = cfg.mountNs !== "host";
  const rootfsOpts = { rootfs: cfg.rootfs, bundle: cfg.bundle, ...cfg.cgroupMounts };
  // runc's order: mounts, devices, pivot_root, propagation, cwd; then what needs the new root
  // (terminal, sysctls, hostname); then read-only and masked paths, read-only mounts, read-only root.
  const hookState = (status: "creating" | "created") => ({ id: cfg.id, pid: cfg.hostPid, status, bundle: cfg.bundle, annotations: spec.annotations });
  if (hasMountNs) {
    step("mounts", () => mountAll(sys, spec, rootfsOpts));
    step("devices", () => createDevices(sys, spec, rootfsOpts));
  }
  // runc's place for hooks: the mounts are made, the root is not pivoted yet. prestart and
  // createRuntime run in the launcher (the runtime's namespaces) while this waits.
  if (hooksOf(spec, "prestart").length || hooksOf(spec, "createRuntime").length) {
    report({ hooks: true });
    waitForResume();
  }
  step("createContainer hooks", () => runHooksSync("createContainer", hooksOf(spec, "createContainer"), hookState("creating")));
  if (hasMountNs) {
    step("pivot_root", () => pivotRoot(sys, cfg.rootfs));
    step("root propagation", () => applyRootPropagation(sys, spec));
    step(`create cwd ${proc.cwd}`, () => createCwd(spec));
  }
  if (proc.terminal && cfg.consoleFd !== undefined) setupTerminal(sys, cfg.consoleFd, proc.consoleSize);
  writeSysctls(spec.linux?.sysctl);
  // In the container's UTS namespace, new or joined (create refuses these without one).
  if (spec.hostname) step("sethostname", () => sys.sethostname(spec.hostname!));
  if (spec.domainname) step("setdomainname", () => sys.setdomainname(spec.domainname!));
  if (hasMountNs) {
    step("read-only paths", () => readonlyPaths(sys, spec.linux?.readonlyPaths ?? []));
    step("masked paths", () => maskPaths(sys, spec.linux?.maskedPaths ?? []));
    step("read-only mounts", () => remountReadonlyMounts(sys, spec, { bundle: cfg.bundle }));
    if (spec.root?.readonly) step("read-only root", () => remountRootReadonly(sys));
  }
  trace("init:rootfs");

  execProcess(sys, proc, {
    seccomp: cfg.seccomp,
    preserveFds: cfg.preserveFds,
    nofile: cfg.nofile,
    waitForStart: () => {
      waitOnFifo(sys, cfg.fifoFd);
      // After start released us, in the container, as the container's user: runc's place.
      step("startContainer hooks", () => runHooksSync("startContainer", hooksOf(spec, "startContainer"), hookState("created")));
    },
  });
}

/** Blocks until `start` opens the FIFO for reading, then tells it we are going. */
function waitOnFifo(sys: Syscalls, fifoFd: number): void {
  const fifo = step("open exec FIFO", () => sys.open(`/proc/self/fd/${fifoFd}`, O.WRONLY | O.CLOEXEC));
  writeSync(fifo, "0");
  sys.close(fifo);
}

interface ExecStep {
  seccomp?: { program: string; flags: number };
  preserveFds: number;
  nofile?: number;
  /** Runs after "ready" is reported and before the last steps (the init's exec FIFO). */
  waitForStart?: () => void;
}

/** The part init and exec share: limits, credentials, cwd, then seccomp and execve. */
function execProcess(sys: Syscalls, proc: Process, opts: ExecStep): never {
  let oomWarning: string | undefined;
  if (proc.oomScoreAdj !== undefined) {
    try {
      writeFileSync("/proc/self/oom_score_adj", String(proc.oomScoreAdj));
    } catch (err) {
      // A negative value needs CAP_SYS_RESOURCE, which this host's bounding set lacks: warn, as containerd does.
      oomWarning = `oom_score_adj ${proc.oomScoreAdj} not applied: ${(err as Error).message}`;
    }
  }
  const limits = proc.rlimits ?? [];
  for (const r of limits) {
    const res = RLIMITS[r.type];
    if (res === undefined) throw new InitError(`unknown rlimit ${r.type}`);
    step(`setrlimit ${r.type}`, () => sys.setrlimit(res, BigInt(r.soft), BigInt(r.hard)));
  }
  if (!limits.some((r) => r.type === "RLIMIT_NOFILE") && opts.nofile !== undefined) {
    const cur = sys.getrlimit(RLIMITS.RLIMIT_NOFILE!);
    sys.setrlimit(RLIMITS.RLIMIT_NOFILE!, BigInt(opts.nofile), cur.hard);
  }

  const env = proc.env ?? [];
  const args = proc.args ?? ["/bin/sh", "-c", proc.commandLine ?? ""];
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while the process still
  // has it, before capabilities drop (runc does the same); what follows must pass the filter.
  const seccompNow = opts.seccomp && !proc.noNewPrivileges;
  if (seccompNow) step("seccomp filter (loaded before dropping capabilities: no no_new_privs)", () => sys.seccomp(Buffer.from(opts.seccomp!.program, "base64"), opts.seccomp!.flags));
  // Dropping the bounding set needs CAP_SETPCAP: before the switch away from root.
  step("capabilities (bounding set)", () => dropBoundingSet(sys, proc.capabilities?.bounding ?? []));
  setupUser(sys, proc);
  step("capabilities", () => applyCapabilities(sys, proc.capabilities ?? {}));
  // cwd after the user switch, so its permissions are checked as that user (as runc does).
  step(`chdir to cwd ${proc.cwd}`, () => sys.chdir(proc.cwd));
  sys.umask(proc.user.umask ?? 0o022);
  if (proc.noNewPrivileges) step("no_new_privs", () => sys.prctl(PR_SET_NO_NEW_PRIVS, 1));
  const program = lookPath(args[0]!, env);

  trace("init:ready");
  report(oomWarning ? { ready: true, warning: oomWarning } : { ready: true });
  opts.waitForStart?.();
  trace("init:started");

  for (let i = 0; i < opts.preserveFds; i++) sys.dup2(6 + i, 3 + i);
  sys.cloexecFrom(3 + opts.preserveFds);
  sys.resetSignals();
  try {
    trace("init:execve");
    if (opts.seccomp && !seccompNow) sys.seccomp(Buffer.from(opts.seccomp.program, "base64"), opts.seccomp.flags);
    return sys.execve(program, args, env);
  } catch (err) {
    // The launcher is gone by now: like runc, say it on the process's stderr.
    writeSync(2, `berth runtime: exec ${program}: ${(err as Error).message}\n`);
    process.exit(127);
  }
}

/** The exec stage: into the container's cgroup and mount namespace, then the shared tail. */
export function runExec(sys: Syscalls, cfg: ExecConfig): never {
  for (const fd of [0, 1, 2]) sys.clearCloexec(fd);
  // Host paths: before the mount namespace changes.
  for (const file of cfg.joinCgroup) step(`join cgroup ${file}`, () => writeFileSync(file, "0"));
  step("unshare(CLONE_FS)", () => sys.unshare(CLONE.FS));
  step("join mount namespace", () => sys.setns(cfg.mountNsFd, CLONE.NEWNS));
  sys.close(cfg.mountNsFd);
  if (cfg.process.terminal && cfg.consoleFd !== undefined) {
    step("setsid", () => sys.setsid());
    setupTerminal(sys, cfg.consoleFd, cfg.process.consoleSize);
  }
  execProcess(sys, cfg.process, { seccomp: cfg.seccomp, preserveFds: cfg.preserveFds, nofile: cfg.nofile });
}

/**
 * The configuration, one JSON line on the sync pipe. The launcher sends it once its own part is
 * done, which it does while this process boots; until then this blocks (the pipe is blocking on
 * this side), and a launcher that dies first closes it.
 */
function readConfig(): InitConfig | ExecConfig {
  return JSON.parse(readLine("the launcher closed the sync pipe before sending the configuration")) as InitConfig | ExecConfig;
}

/** Entry of the init (or exec) stage: runs it on the configuration from the launcher, reporting a failure to it. */
export function initMain(sys: Syscalls): never {
  try {
    const cfg = readConfig();
    trace("init:config");
    return "mountNsFd" in cfg ? runExec(sys, cfg) : runInit(sys, cfg);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    try {
      // Once ready was sent the launcher has stopped listening: like runc, say it on stderr.
      if (readyReported) writeSync(2, `berth runtime: ${message}\n`);
      else report({ error: message });
    } catch {}
    process.exit(1);
  }
}
