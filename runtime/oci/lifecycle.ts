// The OCI operations on an existing container — state, start, kill, delete — done in-process.
// The daemon calls these directly (no Node boot per call); `berth runtime` wraps them for conmon.
import { open, unlink } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { FailedPreconditionError, InvalidArgumentError } from "../errors";
import type { CgroupManager } from "../cgroups/types";
import { OCI_VERSION } from "./default-spec";
import { hooksOf, runHooks } from "./hooks";
import type { State } from "./spec-types";
import { type ContainerRecord, fifoPath, processStartTime, readRecord, removeContainerDir } from "./state-dir";
import { existsSync } from "node:fs";
import { readdirSync } from "node:fs";

export interface LifecycleOptions {
  /** The runtime's state root (runc's --root). */
  root: string;
  /** Opens the container's cgroup; undefined when the container has none. */
  cgroupFor?: (rec: ContainerRecord) => Promise<CgroupManager | undefined>;
  /** Where poststart and poststop hook failures go: the spec makes them warnings. */
  warn?: (message: string) => void;
}

function alive(rec: ContainerRecord): boolean {
  return processStartTime(rec.pid) === rec.pidStartTime;
}

export async function containerStatus(opts: LifecycleOptions, rec: ContainerRecord): Promise<State["status"]> {
  if (!alive(rec)) return "stopped";
  if (existsSync(fifoPath(opts.root, rec.id))) return "created";
  const cg = await opts.cgroupFor?.(rec);
  if (cg && (await cg.isFrozen?.())) return "paused";
  return "running";
}

export async function containerState(opts: LifecycleOptions, id: string): Promise<State> {
  const rec = readRecord(opts.root, id);
  const status = await containerStatus(opts, rec);
  const state: State = {
    // The runtime-spec version this state complies with: berth's own, whatever the config says (runc's rule).
    ociVersion: OCI_VERSION,
    id: rec.id,
    pid: status === "stopped" ? 0 : rec.pid,
    status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: rec.owner,
  };
  if (rec.spec.annotations && Object.keys(rec.spec.annotations).length) state.annotations = rec.spec.annotations;
  return state;
}

export function listContainerIds(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(`${root}/${d.name}/state.json`))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

/**
 * Lets a created container's init exec the user program: opening the FIFO for reading releases
 * the init blocked opening it for writing; it writes one byte, then execs.
 */
export async function startContainer(opts: LifecycleOptions, id: string): Promise<void> {
  const rec = readRecord(opts.root, id);
  const status = await containerStatus(opts, rec);
  if (status !== "created") throw new FailedPreconditionError(`cannot start container "${id}": it is ${status}, not created`);
  const fifo = fifoPath(opts.root, id);
  const fh = await Promise.race([
    open(fifo, "r"),
    // An init that died between the check and the open would leave the open blocked forever.
    (async () => {
      for (;;) {
        await sleep(100);
        if (!alive(rec)) throw new FailedPreconditionError(`cannot start container "${id}": its init (pid ${rec.pid}) exited before start`);
      }
    })(),
  ]);
  try {
    const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, null);
    if (bytesRead !== 1) throw new FailedPreconditionError(`cannot start container "${id}": its init closed the exec FIFO without starting`);
  } finally {
    await fh.close();
  }
  await unlink(fifo).catch(() => {});
  const poststart = hooksOf(rec.spec, "poststart");
  if (poststart.length) {
    // runc hands poststart hooks the state it read before the release ("created"); hooks written
    // for runc expect that.
    await runHooks("poststart", poststart, { id, pid: rec.pid, status: "created", bundle: rec.bundle, annotations: rec.spec.annotations }).catch((err: Error) =>
      opts.warn?.(`container "${id}": ${err.message}`),
    );
  }
}

const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14,
  TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27,
  WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** "9", "KILL", "SIGKILL", "SIGRTMIN+3" → number, as runc parses signals. */
export function parseSignal(s: string | undefined): number {
  if (s === undefined || s === "") return 15;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 64) return n;
  }
  const name = s.toUpperCase().replace(/^SIG/, "");
  const rt = /^RTMIN(?:\+(\d+))?$/.exec(name) ?? /^RTMAX(?:-(\d+))?$/.exec(name);
  if (rt) {
    const n = name.startsWith("RTMIN") ? 34 + Number(rt[1] ?? 0) : 64 - Number(rt[1] ?? 0);
    if (n >= 34 && n <= 64) return n;
  }
  const n = SIGNALS[name];
  if (n === undefined) throw new InvalidArgumentError(`unknown signal "${s}"`);
  return n;
}

export async function killContainer(opts: LifecycleOptions, id: string, signal: number, all = false): Promise<void> {
  const rec = readRecord(opts.root, id);
  const status = await containerStatus(opts, rec);
  if (status === "stopped") throw new FailedPreconditionError(`container "${id}" is not running`);
  if (all) {
    const cg = await opts.cgroupFor?.(rec);
    if (cg) {
      await cg.killAll(signal);
      return;
    }
  }
  try {
    process.kill(rec.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** Removes a stopped (or, with force, any) container: its processes, cgroup and state. */
export async function deleteContainer(opts: LifecycleOptions, id: string, force = false): Promise<void> {
  const rec = readRecord(opts.root, id);
  const status = await containerStatus(opts, rec);
  if ((status === "running" || status === "paused") && !force) {
    throw new FailedPreconditionError(`cannot delete container "${id}" that is not stopped: ${status} (use --force)`);
  }
  const cg = await opts.cgroupFor?.(rec);
  if (status !== "stopped") {
    // A created container's init is ours to end, as runc does; a running one only with --force.
    if (cg) await cg.killAll(9);
    try {
      process.kill(rec.pid, 9);
    } catch {}
    for (let i = 0; i < 200 && alive(rec); i++) await sleep(10);
  }
  if (cg) await cg.destroy();
  removeContainerDir(opts.root, id);
  const poststop = hooksOf(rec.spec, "poststop");
  if (poststop.length) {
    await runHooks("poststop", poststop, { id, pid: 0, status: "stopped", bundle: rec.bundle, annotations: rec.spec.annotations }).catch((err: Error) =>
      opts.warn?.(`container "${id}": ${err.message}`),
    );
  }
}
