// Helpers for tests that drive `berth runtime` and `runc` through a container's whole life: state
// roots that are cleaned whatever happens, `create` with the container's stdio on files (a created
// container holds the stdio it inherits, so pipes would never close), the host cgroup directories
// of a process, and polling for a state change.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseMountinfo, parseProcCgroup } from "../../runtime/cgroups/detect";
import { prefixedRuntimeArgv, type RunOptions, type RunResult, type Runtime, runRuntime } from "./bundle";

export const RUNTIMES: readonly Runtime[] = ["runc", "berth"];

export type Roots = Record<Runtime, string>;

export async function makeRoots(): Promise<Roots> {
  return { berth: await mkdtemp(join(tmpdir(), "berth-rt-")), runc: await mkdtemp(join(tmpdir(), "runc-rt-")) };
}

/** Deletes (--force, by id, in each runtime's own root) whatever a test left, then the roots. */
export async function removeRoots(roots: Roots | undefined): Promise<void> {
  if (!roots) return;
  for (const rt of RUNTIMES) {
    const list = await runRuntime(rt, roots[rt], ["list", "-q"]);
    for (const id of list.stdout.split("\n").filter(Boolean)) await runRuntime(rt, roots[rt], ["delete", "--force", id]);
    await rm(roots[rt], { recursive: true, force: true });
  }
}

export interface CreateResult extends RunResult {
  /** Where the container's stdout goes (readable once it has exited). */
  outFile: string;
  /** The runtime's stderr, and the container's. */
  errFile: string;
}

/**
 * Runs a runtime command that leaves a container behind (`create`, `exec --detach`), with stdio on
 * files in `dir`: it resolves when the runtime exits, not when the container closes its stdio.
 */
export async function runDetached(runtime: Runtime, root: string, args: string[], dir: string, name: string, opts: Pick<RunOptions, "extraFds" | "prefix"> = {}): Promise<CreateResult> {
  const outFile = join(dir, `${name}.out`);
  const errFile = join(dir, `${name}.err`);
  const out = openSync(outFile, "w");
  const err = openSync(errFile, "w");
  try {
    const [cmd, argv] = prefixedRuntimeArgv(opts.prefix, runtime, root, args);
    const p = spawn(cmd, argv, { stdio: ["ignore", out, err, ...(opts.extraFds ?? [])] });
    const t = setTimeout(() => p.kill("SIGKILL"), 30_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => p.once("exit", (c, s) => resolve([c, s])));
    clearTimeout(t);
    return { code, signal, stdout: "", stderr: readFileSync(errFile, "utf8"), outFile, errFile };
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

export async function state(runtime: Runtime, root: string, id: string): Promise<Record<string, unknown>> {
  const r = await runRuntime(runtime, root, ["state", id]);
  if (r.code !== 0) throw new Error(`${runtime} state ${id}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Polls `state` until its status is `status` (a process exits on its own time). */
export async function waitForStatus(runtime: Runtime, root: string, id: string, status: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await state(runtime, root, id);
    if (st.status === status) return st;
    if (Date.now() > deadline) throw new Error(`${runtime} ${id}: still ${String(st.status)}, not ${status}, after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const st = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return st !== "Z" && st !== "X";
  } catch {
    return false;
  }
}

/** SIGKILLs a test's own process if it is still there. */
export function killPid(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
}

/** The host directories of every cgroup `pid` is in (one per mounted hierarchy), from /proc/<pid>/cgroup. */
export function cgroupDirsOf(pid: number): string[] {
  return cgroupDirsFor(parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, "utf8")));
}

/** The host directories a relative cgroupsPath names below this process's own cgroups. */
export function cgroupDirsBelowSelf(relative: string): string[] {
  const own = parseProcCgroup(readFileSync("/proc/self/cgroup", "utf8"));
  return cgroupDirsFor(new Map([...own].map(([k, v]) => [k, join(v, relative)])));
}

function cgroupDirsFor(paths: Map<string, string>): string[] {
  const dirs = new Set<string>();
  for (const m of parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"))) {
    let key: string | undefined;
    if (m.fstype === "cgroup2") key = "";
    else if (m.fstype === "cgroup") key = m.superOptions.find((o) => paths.has(o));
    if (key === undefined) continue;
    const p = paths.get(key);
    if (p === undefined || !(p === m.root || p.startsWith(m.root === "/" ? "/" : `${m.root}/`))) continue;
    dirs.add(join(m.mountpoint, p.slice(m.root === "/" ? 0 : m.root.length)));
  }
  return [...dirs].sort();
}

/** PIDs of live processes whose command line mentions `text` (berth's init names its config under the root). */
export function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(text) && alive(Number(name))) out.push(Number(name));
    } catch {}
  }
  return out;
}

export function existingDirs(dirs: string[]): string[] {
  return dirs.filter((d) => existsSync(d));
}
