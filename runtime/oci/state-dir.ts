// Where `berth runtime` keeps a container's state, laid out like runc's: <root>/<id>/state.json
// and the exec FIFO that holds a created container's init until `start`.
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "../errors";
import { writeFileAtomicSync } from "../store/atomic";
import type { CgroupLocation } from "../cgroups/types";
import type { Spec } from "./spec-types";

export const DEFAULT_RUNTIME_ROOT = "/run/berth/runtime";

/** What berth records per container; `runtime state` derives the OCI state JSON from it. */
export interface ContainerRecord {
  id: string;
  /** Host PID of the container's init (the process that execs the user program). */
  pid: number;
  /** Field 22 of /proc/<pid>/stat, so a recycled PID is never mistaken for the init. */
  pidStartTime: string;
  bundle: string;
  rootfs: string;
  /** RFC 3339 with nanoseconds, as runc prints it. */
  created: string;
  owner: string;
  /** The config the container was created with: exec reuses its seccomp, caps defaults and cgroup. */
  spec: Spec;
  /** Where the container's cgroup is, to reopen it from any process. */
  cgroup?: CgroupLocation;
}

const ID = /^[\w+\-.]+$/;

export function checkId(id: string | undefined): string {
  if (!id) throw new InvalidArgumentError("container id cannot be empty");
  if (!ID.test(id) || id === "." || id === "..") throw new InvalidArgumentError(`invalid container id "${id}": use letters, digits, _ + - .`);
  return id;
}

export function containerDir(root: string, id: string): string {
  return join(root, checkId(id));
}

export function fifoPath(root: string, id: string): string {
  return join(containerDir(root, id), "exec.fifo");
}

/** Claims the id: the directory is the lock (mkdir is atomic). */
export function claimContainerDir(root: string, id: string): string {
  const dir = containerDir(root, id);
  mkdirSync(root, { recursive: true, mode: 0o711 });
  try {
    mkdirSync(dir, { mode: 0o711 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new AlreadyExistsError(`container with id "${id}" already exists`);
    throw err;
  }
  return dir;
}

export function writeRecord(root: string, rec: ContainerRecord): void {
  writeFileAtomicSync(join(containerDir(root, rec.id), "state.json"), JSON.stringify(rec), 0o600);
}

export function readRecord(root: string, id: string): ContainerRecord {
  const file = join(containerDir(root, id), "state.json");
  try {
    return JSON.parse(readFileSync(file, "utf8")) as ContainerRecord;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(`container "${id}" does not exist`);
    throw err;
  }
}

export function removeContainerDir(root: string, id: string): void {
  rmSync(containerDir(root, id), { recursive: true, force: true });
}

/** Start time of a process (clock ticks since boot), or undefined when it is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces and parentheses: fields count from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Zombies have exited: they are stopped for every caller's purpose.
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

/** RFC 3339 with nanosecond digits, as Go's time.Time marshals. */
export function rfc3339Nano(d = new Date(), nanos = process.hrtime.bigint() % 1_000_000n): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 19)}.${iso.slice(20, 23)}${nanos.toString().padStart(6, "0")}Z`;
}
