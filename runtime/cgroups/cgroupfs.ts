// Reading and writing cgroupfs files. Everything here is synchronous on purpose: cgroupfs files
// live in the kernel (no disk I/O), and the container init must apply limits without giving the
// event loop a turn. Errors name the file, the value and the kernel's reason.
import { closeSync, constants, type Dirent, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeSync } from "node:fs";
import { join } from "node:path";
import {
  type BerthError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from "../errors";

export function errnoOf(err: unknown): string | undefined {
  const direct = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof direct === "string" && direct.startsWith("E")) return direct;
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  return cause === undefined ? undefined : errnoOf(cause);
}

/** The typed error for a failed write, chosen by what the kernel's errno means for a cgroup file. */
export function writeError(path: string, value: string, err: unknown): BerthError {
  const code = errnoOf(err) ?? "unknown error";
  const what = `cannot write ${JSON.stringify(value)} to ${path}`;
  switch (code) {
    case "ENOENT":
      return new FailedPreconditionError(`${what}: the file does not exist (controller not enabled or not supported by this kernel)`, { cause: err });
    case "EINVAL":
    case "ERANGE":
      return new InvalidArgumentError(`${what}: the kernel refused the value (${code})`, { cause: err });
    case "EBUSY":
      return new FailedPreconditionError(`${what}: the cgroup is busy (${code})`, { cause: err });
    case "EPERM":
    case "EACCES":
    case "EROFS":
      return new PermissionDeniedError(`${what}: not permitted (${code})`, { cause: err });
    default:
      return new InternalError(`${what}: ${code}`, { cause: err });
  }
}

/** Writes without O_CREAT or O_TRUNC, as runc does: a missing file is an error, not a new file. */
export function tryWrite(dir: string, file: string, value: string): NodeJS.ErrnoException | undefined {
  let fd: number;
  try {
    // libuv opens every file close-on-exec already.
    fd = openSync(join(dir, file), constants.O_WRONLY);
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  try {
    writeSync(fd, value);
    return undefined;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  } finally {
    closeSync(fd);
  }
}

export function writeFile(dir: string, file: string, value: string): void {
  const err = tryWrite(dir, file, value);
  if (err) throw writeError(join(dir, file), value, err);
}

/** Multi-line values (io.max, rdma.max, unified entries) take one write per line: the kernel parses one rule per write. */
export function writeLines(dir: string, file: string, value: string): void {
  for (const line of value.split("\n")) if (line.trim() !== "") writeFile(dir, file, line);
}

export function readFile(dir: string, file: string): string {
  const path = join(dir, file);
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") throw new NotFoundError(`cannot read ${path}: it does not exist`, { cause: err });
    throw new InternalError(`cannot read ${path}: ${errnoOf(err) ?? String(err)}`, { cause: err });
  }
}

export function readFileIfExists(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), "utf8");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return undefined;
    throw new InternalError(`cannot read ${join(dir, file)}: ${errnoOf(err) ?? String(err)}`, { cause: err });
  }
}

export function fileExists(dir: string, file: string): boolean {
  return existsSync(join(dir, file));
}

/** mkdir -p that reports which directories it made, so a failed create removes only its own. */
export function makeDirs(dir: string): string[] {
  const made: string[] = [];
  const parts = dir.split("/").filter(Boolean);
  let cur = "";
  for (const part of parts) {
    cur += `/${part}`;
    if (existsSync(cur)) continue;
    try {
      mkdirSync(cur, { mode: 0o755 });
      made.push(cur);
    } catch (err) {
      if (errnoOf(err) !== "EEXIST") throw new InternalError(`cannot create cgroup directory ${cur}: ${errnoOf(err) ?? String(err)}`, { cause: err });
    }
  }
  return made;
}

/** Sub-cgroup directories, deepest first. */
export function subCgroups(dir: string): string[] {
  const out: string[] = [];
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return out;
    throw err;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const child = join(dir, e.name);
    out.push(...subCgroups(child), child);
  }
  return out;
}

function procsOf(dir: string): number[] {
  // A threaded v2 cgroup answers EOPNOTSUPP on cgroup.procs; its threads are listed in cgroup.threads.
  let text: string | undefined;
  try {
    text = readFileIfExists(dir, "cgroup.procs");
  } catch (err) {
    if (errnoOf(err) !== "EOPNOTSUPP" && errnoOf(err) !== "ENOTSUP") throw err;
    text = readFileIfExists(dir, "cgroup.threads");
  }
  if (text === undefined) return [];
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number);
}

/** Every PID in the cgroup and its sub-cgroups, without duplicates. */
export function allProcs(dir: string): number[] {
  const pids = new Set<number>();
  for (const d of [dir, ...subCgroups(dir)]) for (const p of procsOf(d)) pids.add(p);
  return [...pids];
}

/** rmdir that treats "already gone" as done; returns the errno of a refusal (EBUSY: processes left). */
export function tryRmdir(dir: string): string | undefined {
  try {
    rmdirSync(dir);
    return undefined;
  } catch (err) {
    const code = errnoOf(err);
    return code === "ENOENT" ? undefined : (code ?? "EIO");
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread: only for the short retries that runc makes too (EINVAL on a just-forked task). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Writes a pid to cgroup.procs; EINVAL can mean the task is still being forked, so retry briefly (runc). */
export function writePid(dir: string, pid: number): void {
  for (let i = 0; ; i++) {
    const err = tryWrite(dir, "cgroup.procs", String(pid));
    if (!err) return;
    if (errnoOf(err) === "EINVAL" && i < 5) {
      sleepSync(30);
      continue;
    }
    if (errnoOf(err) === "ESRCH") throw new FailedPreconditionError(`cannot move pid ${pid} into ${dir}: no such process`, { cause: err });
    throw writeError(`${dir}/cgroup.procs`, String(pid), err);
  }
}
