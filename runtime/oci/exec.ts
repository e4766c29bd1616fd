// `exec`: a new process in a running container. The launcher joins the container's IPC, UTS,
// network, cgroup and PID namespaces on its main thread, then spawns the exec stage, which joins
// the container's cgroup, then its mount namespace (unshare(CLONE_FS) first: Node is threaded),
// applies the process's user, capabilities, no_new_privs and the container's seccomp filter, and
// execs. Without --detach the launcher waits and exits with the process's code.
import type { ChildProcess } from "node:child_process";
import { closeSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { FailedPreconditionError, InvalidArgumentError } from "../errors";
import { processProblem } from "./process-check";
import { O } from "../linux/syscalls";
import type { Syscalls } from "../linux/types";
import { connectUnixSocket } from "../linux/unix-socket";
import { writeFileAtomicSync } from "../store/atomic";
import { NS_FLAGS, ownNamespace, restoreNamespaces, sameNamespace } from "./create";
import type { ExecConfig } from "./init-config";
import { containerStatus } from "./lifecycle";
import { cgroupJoins } from "./cgroup-of";
import { compileContainerSeccomp } from "./seccomp-of";
import { type StageCommand, startStage, type WarningSink } from "./stage";
import type { NamespaceType, Process } from "./spec-types";
import { readRecord } from "./state-dir";

export interface ExecOptions {
  root: string;
  id: string;
  process: Process;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  initCommand: StageCommand;
  warn?: WarningSink;
}

const PROC_NS: Array<[NamespaceType, string]> = [
  ["ipc", "ipc"],
  ["uts", "uts"],
  ["network", "net"],
  ["cgroup", "cgroup"],
  ["pid", "pid"],
];

export async function execInContainer(sys: Syscalls, opts: ExecOptions): Promise<{ pid: number; child: ChildProcess }> {
  const rec = readRecord(opts.root, opts.id);
  const status = await containerStatus({ root: opts.root }, rec);
  if (status !== "running" && status !== "created") throw new FailedPreconditionError(`cannot exec in container "${opts.id}": it is ${status}`);
  if (!opts.process.args?.length) throw new InvalidArgumentError("exec: process.args must name a program");
  const problem = processProblem(opts.process);
  if (problem) throw new InvalidArgumentError(`exec: ${problem}`);
  if (opts.process.terminal && !opts.consoleSocket) throw new InvalidArgumentError("exec: a terminal needs --console-socket");
  const spec = rec.spec;
  const seccomp = await compileContainerSeccomp(spec, opts.root);
  const fds: number[] = [];
  try {
    fds.push(sys.open(`/proc/${rec.pid}/ns/mnt`, O.RDONLY | O.CLOEXEC));
    let consoleFd: number | undefined;
    if (opts.process.terminal) {
      consoleFd = connectUnixSocket(opts.consoleSocket!);
      fds.push(consoleFd);
    }
    const joins = rec.cgroup ? cgroupJoins(rec.cgroup) : { stage: [], launcher: [] };
    const cfg: ExecConfig = {
      id: opts.id,
      process: opts.process,
      mountNsFd: 4,
      consoleFd: consoleFd === undefined ? undefined : 5,
      joinCgroup: joins.stage,
      seccomp: seccomp ? { program: seccomp.program.toString("base64"), flags: seccomp.flags } : undefined,
      preserveFds: opts.preserveFds ?? 0,
      nofile: undefined,
    };
    // Join what the container has of its own; a namespace it shares with us needs nothing. Back
    // to ours once the stage is spawned (create.ts's RestoreNamespaces says why).
    const own: Array<[number, number]> = [];
    const restore = restoreNamespaces(sys, own);
    let child: ChildProcess;
    try {
      for (const [type, name] of PROC_NS) {
        const theirs = `/proc/${rec.pid}/ns/${name}`;
        if (!spec.linux?.namespaces?.some((n) => n.type === type) || sameNamespace(theirs, `/proc/self/ns/${name}`)) continue;
        own.push(ownNamespace(sys, type));
        const fd = sys.open(theirs, O.RDONLY | O.CLOEXEC);
        try {
          sys.setns(fd, NS_FLAGS[type]);
        } finally {
          sys.close(fd);
        }
      }
      child = await startStage(opts.initCommand, { handle: fds[0]!, console: consoleFd, preserve: opts.preserveFds ?? 0 }, `exec in container "${opts.id}"`, (pid) => {
        restore();
        for (const file of joins.launcher) writeFileSync(file, String(pid));
        return cfg;
      }, opts.warn);
    } finally {
      restore();
    }
    if (opts.pidFile) writeFileAtomicSync(resolve(opts.pidFile), String(child.pid));
    return { pid: child.pid!, child };
  } finally {
    for (const fd of fds) {
      try {
        closeSync(fd);
      } catch {}
    }
  }
}

/** A process.json as `runc exec --process` reads it. */
export function readProcessFile(path: string): Process {
  let p: Process;
  try {
    p = JSON.parse(readFileSync(path, "utf8")) as Process;
  } catch (err) {
    throw new InvalidArgumentError(`cannot read process file ${path}: ${(err as Error).message}`);
  }
  if (!p || typeof p !== "object" || !p.user || typeof p.cwd !== "string") throw new InvalidArgumentError(`process file ${path}: "user" and "cwd" are required`);
  return p;
}
