// Low-level runtime benchmark: `berth runtime` against runc and crun on one /bin/true bundle. Not
// part of the suite. Run as root from the repository, after `node bin/build.mjs` (it times dist/):
//   node --import tsx bench/runtime.ts [--runs N] [--baseline path/to/dist/berth.js] [--inherit-env] [--seccomp]
//
// What it measures, each with a fresh container id and each runtime with its own --root:
//   1. `run` (create + start + wait + delete), berth, runc and crun taking turns, medians and p90.
//   2. `create` alone (until the command exits with the container created: what conmon waits
//      for), then `start` alone, then `delete`, for berth and runc; and berth's start done
//      in-process, as the daemon does it (DESIGN.md, decision 3).
//   3. Where berth's create goes: whole-process figures for `node -e 0`, berth's entry and koffi,
//      then the steps of create, of the init stage and of start from BERTH_TRACE timestamps
//      (runtime/oci/trace.ts; nothing is written when the variable is unset).
// --seccomp gives the bundle the RuntimeDefault (Docker's) seccomp profile, as the CRI gives
// every container, so every runtime compiles and loads a filter (berth compiles it for its first
// container and reads it from its filter cache below --root for the others, as in steady use).
// --baseline adds another build of berth (a copy of an older dist/, with node_modules beside it)
// to every table, taking turns with the current one: before/after figures from one run.
//
// Every command is started by a small helper process (plain Node, no tsx) that times it from
// spawn to exit on CLOCK_MONOTONIC, so no runtime pays for forking this large process. crun
// refuses this host's hybrid cgroup layout (hugetlb on the v2 hierarchy); its helper runs inside
// /work/shared/anchors/runc/v1-only-ns.sh (a private mount + cgroup namespace where only the v1
// hierarchies are mounted), as the anchors measured it. Skipped, with the reason, when crun or the
// script is missing.
//
// NODE_EXTRA_CA_CERTS makes every Node process parse a CA bundle before it runs any JavaScript
// (about 35 ms here, where the environment sets it). The runtime never speaks TLS and conmon is
// started by the daemon with the environment the daemon gives it, so the runtimes run without it
// unless --inherit-env; the boot table shows what it costs.
//
// Everything created (containers, their cgroups, the temp directory, the helpers) is removed on
// exit, on error and on Ctrl-C.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { detectCgroupLayout, locateCgroup } from "../runtime/cgroups/detect";
import { startContainer } from "../runtime/oci/lifecycle";
import { runtimeDefaultProfile } from "../runtime/security/seccomp/default-profile";
import { type Bundle, makeBundle, removeBundle } from "../test/support/bundle";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const BERTH_JS = join(REPO, "dist", "berth.js");
const V1_ONLY_NS = "/work/shared/anchors/runc/v1-only-ns.sh";
/** The cgroup the anchors' script puts itself in, below ours in every v1 hierarchy. */
const LOWLEVEL_CGROUP = "bench-lowlevel";

// ---------------------------------------------------------------- options

interface Options {
  runs: number;
  baseline?: string;
  inheritEnv: boolean;
  seccomp: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { runs: 25, inheritEnv: false, seccomp: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--runs") {
      o.runs = Number(argv[++i]);
      if (!Number.isInteger(o.runs) || o.runs < 3) throw new Error(`--runs needs an integer of at least 3, got ${argv[i]}`);
    } else if (a === "--baseline") {
      o.baseline = resolve(argv[++i] ?? "");
      if (!existsSync(o.baseline)) throw new Error(`--baseline ${o.baseline}: no such file (give a dist/berth.js)`);
    } else if (a === "--inherit-env") {
      o.inheritEnv = true;
    } else if (a === "--seccomp") {
      o.seccomp = true;
    } else {
      throw new Error(`unknown argument ${a}; usage: bench/runtime.ts [--runs N] [--baseline path/to/dist/berth.js] [--inherit-env] [--seccomp]`);
    }
  }
  return o;
}

// ---------------------------------------------------------------- the spawner helper

/**
 * The helper's source: reads one JSON request per line ({n, cmd, args, cwd, env, log}), runs it with
 * stdout and stderr appended to `log`, answers {n, pid, t0, t1, code, signal} (ns, CLOCK_MONOTONIC)
 * when it exits. The container's init may keep the log open after `create` exits: that is why the
 * time is taken at exit, not when the output closes. Exits when its stdin closes.
 */
const HELPER = `
const { spawn } = require("node:child_process");
const { openSync, closeSync } = require("node:fs");
const rl = require("node:readline").createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const r = JSON.parse(line);
  const fd = openSync(r.log, "a");
  const t0 = process.hrtime.bigint();
  let p;
  try {
    p = spawn(r.cmd, r.args, { cwd: r.cwd, env: r.env, stdio: ["ignore", fd, fd] });
  } catch (err) {
    closeSync(fd);
    process.stdout.write(JSON.stringify({ n: r.n, error: String(err) }) + "\\n");
    return;
  }
  closeSync(fd);
  p.once("error", (err) => process.stdout.write(JSON.stringify({ n: r.n, error: String(err) }) + "\\n"));
  p.once("exit", (code, signal) => {
    const t1 = process.hrtime.bigint();
    process.stdout.write(JSON.stringify({ n: r.n, pid: p.pid, t0: String(t0), t1: String(t1), code, signal }) + "\\n");
  });
});
rl.on("close", () => process.exit(0));
`;

interface Timed {
  pid: number;
  /** CLOCK_MONOTONIC ns at spawn and at exit. */
  t0: bigint;
  t1: bigint;
  ms: number;
  code: number | null;
  signal: string | null;
}

class Spawner {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (t: Timed) => void; reject: (e: Error) => void }>();
  private seq = 0;
  private exited: Promise<void>;
  alive = true;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
  ) {
    // Its own process group: Ctrl-C reaches this process, which then cleans up through the helper.
    this.child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"], detached: true });
    this.exited = new Promise((r) => this.child.once("exit", () => r()));
    this.child.once("exit", (code, signal) => {
      this.alive = false;
      for (const w of this.waiting.values()) w.reject(new Error(`${name} helper exited (${signal ?? code})`));
      this.waiting.clear();
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const m = JSON.parse(line) as { n: number; error?: string; pid: number; t0: string; t1: string; code: number | null; signal: string | null };
      const w = this.waiting.get(m.n);
      if (!w) return;
      this.waiting.delete(m.n);
      if (m.error) return w.reject(new Error(m.error));
      const t0 = BigInt(m.t0);
      const t1 = BigInt(m.t1);
      w.resolve({ pid: m.pid, t0, t1, ms: Number(t1 - t0) / 1e6, code: m.code, signal: m.signal });
    });
  }

  run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; log: string }): Promise<Timed> {
    if (!this.alive) return Promise.reject(new Error(`${this.name} helper is not running`));
    const n = ++this.seq;
    return new Promise((resolveRun, reject) => {
      this.waiting.set(n, { resolve: resolveRun, reject });
      this.child.stdin!.write(`${JSON.stringify({ n, cmd, args, ...opts })}\n`);
    });
  }

  async close(): Promise<void> {
    if (!this.alive) return;
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------- runtimes

interface Runtime {
  name: string;
  spawner: Spawner;
  /** argv for `<runtime> --root ROOT <args>`. */
  argv(args: string[]): [string, string[]];
  root: string;
  /** Ids created and not yet deleted, for the cleanup. */
  live: Set<string>;
}

function nodeRuntime(name: string, js: string, root: string, spawner: Spawner): Runtime {
  return { name, spawner, root, live: new Set(), argv: (args) => [process.execPath, [js, "runtime", "--root", root, ...args]] };
}

function binRuntime(name: string, bin: string, root: string, spawner: Spawner): Runtime {
  return { name, spawner, root, live: new Set(), argv: (args) => [bin, ["--root", root, ...args]] };
}

// ---------------------------------------------------------------- state (removed on exit)

let work: string | undefined;
let bundle: Bundle | undefined;
const spawners: Spawner[] = [];
const runtimes: Runtime[] = [];
let cgroupsPath: string | undefined;
let cleaning: Promise<void> | undefined;

function rmdirTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch (err) {
    process.stderr.write(`bench: cannot remove cgroup ${dir}: ${(err as Error).message}\n`);
  }
}

/** The directories a relative cgroupsPath gets below our own cgroup, in every hierarchy. */
function cgroupDirs(path: string): string[] {
  try {
    return Object.values(locateCgroup(path, detectCgroupLayout(), { root: "" }).dirs);
  } catch {
    return [];
  }
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const rt of runtimes) {
      for (const id of rt.live) {
        const [cmd, args] = rt.argv(["delete", "--force", id]);
        try {
          if (rt.spawner.alive) await rt.spawner.run(cmd, args, { cwd: bundle?.dir ?? "/", env: process.env, log: "/dev/null" });
          else if (rt.name !== "crun") spawnSync(cmd, args, { stdio: "ignore" });
          else spawnSync("sh", [V1_ONLY_NS, cmd, ...args], { stdio: "ignore" });
        } catch {}
      }
      rt.live.clear();
    }
    for (const s of spawners) await s.close().catch(() => {});
    if (cgroupsPath) for (const d of cgroupDirs(cgroupsPath)) rmdirTree(d);
    // The anchors' script leaves its own cgroup (and crun's, below it) in every v1 hierarchy.
    if (spawners.some((s) => s.name === "crun")) for (const d of cgroupDirs(LOWLEVEL_CGROUP)) rmdirTree(d);
    await removeBundle(bundle).catch(() => {});
    bundle = undefined;
    if (work) rmSync(work, { recursive: true, force: true });
    work = undefined;
  })();
  return cleaning;
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    process.stderr.write(`\n${sig}: cleaning up\n`);
    cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------- statistics and tables

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  // Nearest rank.
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function ms(x: number): string {
  return Number.isNaN(x) ? "–" : x.toFixed(1);
}

function printTable(rows: string[][], leftColumns = 1): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  for (const [i, r] of rows.entries()) {
    console.log(r.map((cell, c) => (c < leftColumns ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
    if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
}

/** Rotates `xs` by `k`: round k starts with a different runtime. */
function turn<T>(xs: T[], k: number): T[] {
  return xs.map((_, i) => xs[(i + k) % xs.length]!);
}

// ---------------------------------------------------------------- measurements

let seq = 0;
function freshId(rt: Runtime, what: string): string {
  return `${rt.name}-${what}-${process.pid}-${++seq}`;
}

let runtimeEnv: NodeJS.ProcessEnv = process.env;

async function timed(rt: Runtime, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Timed> {
  const [cmd, argv] = rt.argv(args);
  const log = join(work!, `${rt.name}.log`);
  const t = await rt.spawner.run(cmd, argv, { cwd: bundle!.dir, env: { ...runtimeEnv, ...extraEnv }, log });
  if (t.code !== 0) {
    const tail = readFileSync(log, "utf8").split("\n").slice(-5).join("\n");
    throw new Error(`${rt.name} ${args.join(" ")}: exit ${t.code ?? t.signal}\n${tail}`);
  }
  return t;
}

async function runOnce(rt: Runtime): Promise<number> {
  const id = freshId(rt, "run");
  rt.live.add(id);
  const t = await timed(rt, ["run", "--bundle", bundle!.dir, id]);
  rt.live.delete(id);
  return t.ms;
}

interface Lifecycle {
  create: Timed;
  start: Timed;
  del: Timed;
}

/** Waits until the container's program has exited (status "stopped"), untimed. */
async function untilStopped(rt: Runtime, id: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const [cmd, args] = rt.argv(["state", id]);
    const r = spawnSync(cmd, args, { env: runtimeEnv, encoding: "utf8" });
    if (r.status === 0 && JSON.parse(r.stdout).status === "stopped") return;
    await new Promise((res) => setTimeout(res, 5));
  }
  throw new Error(`${rt.name}: container ${id} did not stop`);
}

async function lifecycleOnce(rt: Runtime, env: NodeJS.ProcessEnv = {}): Promise<Lifecycle> {
  const id = freshId(rt, "cs");
  rt.live.add(id);
  const create = await timed(rt, ["create", "--bundle", bundle!.dir, id], env);
  const start = await timed(rt, ["start", id], env);
  await untilStopped(rt, id);
  const del = await timed(rt, ["delete", id]);
  rt.live.delete(id);
  return { create, start, del };
}

/** berth's start as the daemon does it: in this process, no Node boot. */
async function inProcessStartOnce(rt: Runtime): Promise<{ create: Timed; startMs: number }> {
  const id = freshId(rt, "ip");
  rt.live.add(id);
  const create = await timed(rt, ["create", "--bundle", bundle!.dir, id]);
  const t0 = performance.now();
  await startContainer({ root: rt.root }, id);
  const startMs = performance.now() - t0;
  await untilStopped(rt, id);
  await timed(rt, ["delete", id]);
  rt.live.delete(id);
  return { create, startMs };
}

// ---- BERTH_TRACE breakdown

type Marks = Map<string, bigint>;

interface Trace {
  launcher: Marks;
  init: Marks;
  start: Marks;
  create: Timed;
  startT: Timed;
}

function readMarks(file: string): Map<number, Marks> {
  const byPid = new Map<number, Marks>();
  if (!existsSync(file)) return byPid;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const [pid, ns, label] = line.split(" ");
    if (!label) continue;
    const m = byPid.get(Number(pid)) ?? new Map<string, bigint>();
    // The first of a label wins (the init's `runtime:cli`, say, is its own process's).
    if (!m.has(label)) m.set(label, BigInt(ns!));
    byPid.set(Number(pid), m);
  }
  return byPid;
}

async function traceOnce(rt: Runtime): Promise<Trace> {
  const id = freshId(rt, "tr");
  const createFile = join(work!, `${id}.create.trace`);
  const startFile = join(work!, `${id}.start.trace`);
  rt.live.add(id);
  const create = await timed(rt, ["create", "--bundle", bundle!.dir, id], { BERTH_TRACE: createFile });
  const startT = await timed(rt, ["start", id], { BERTH_TRACE: startFile });
  await untilStopped(rt, id);
  await timed(rt, ["delete", id]);
  rt.live.delete(id);
  const created = readMarks(createFile);
  const started = readMarks(startFile);
  // The init is PID 1 of its PID namespace; its late marks (after start) are in the create file too.
  return { launcher: created.get(create.pid) ?? new Map(), init: created.get(1) ?? new Map(), start: started.get(startT.pid) ?? new Map(), create, startT };
}

/**
 * One row of the breakdown: the time from mark `from` to mark `to`. Builds differ in which marks
 * they have and in their order (the current one spawns the init before it makes the cgroup), so
 * most rows are "since the previous mark of the same process": they add up per build, and a
 * build without the mark shows "–".
 */
interface Segment {
  what: string;
  from: (t: Trace) => bigint | undefined;
  to: (t: Trace) => bigint | undefined;
}

type Proc = "launcher" | "init" | "start";
/** The marks that delimit rows (Node's v8/environment milestones are left inside "Node boot"). */
const BOUNDARIES = new Set([
  "node:start", "node:bootstrapped", "runtime:cli", "create:loaded", "create:validated", "create:schema", "create:seccomp", "create:state-dir", "create:cgroup", "create:joined",
  "create:config", "stage:spawn", "stage:config", "stage:ready", "create:done", "init:loaded", "init:config", "init:cgroup", "init:rootfs", "init:ready",
  "start:loaded", "start:done",
]);

const mark = (p: Proc, label: string) => (t: Trace) => t[p].get(label);
/** The latest boundary mark of process `p` before its mark `label`. */
const previous = (p: Proc, label: string) => (t: Trace) => {
  const at = t[p].get(label);
  if (at === undefined) return undefined;
  let best: bigint | undefined;
  for (const [l, v] of t[p]) if (BOUNDARIES.has(l) && v < at && (best === undefined || v > best)) best = v;
  return best;
};
const step = (p: Proc, label: string, what: string): Segment => ({ what, from: previous(p, label), to: mark(p, label) });
const L = (label: string) => mark("launcher", label);
const I = (label: string) => mark("init", label);
const S = (label: string) => mark("start", label);

const SEGMENTS: Array<Segment | string> = [
  "launcher (`berth runtime create`), each step since the launcher's previous mark",
  { what: "  spawn → Node's main()", from: (t) => t.create.t0, to: L("node:start") },
  { what: "  Node boot (main() → bootstrap complete)", from: L("node:start"), to: L("node:bootstrapped") },
  step("launcher", "runtime:cli", "  (b) load berth.js up to the runtime CLI"),
  step("launcher", "create:loaded", "  (c) load create's code + koffi"),
  step("launcher", "create:validated", "  (d) read config.json (baseline: + schema validation)"),
  step("launcher", "create:state-dir", "  (d) state dir + exec FIFO"),
  step("launcher", "create:config", "  (d) init.json (baseline; now sent on fd 3)"),
  step("launcher", "stage:spawn", "  (d) namespaces, then spawn the init"),
  step("launcher", "create:schema", "  (d) cgroup made, the init's move into it begun; schema validation"),
  step("launcher", "create:cgroup", "  (d) cgroup limits (baseline: create + limits)"),
  step("launcher", "create:seccomp", "  (d) seccomp filter: compiled, or read from the cache (none without --seccomp)"),
  step("launcher", "create:joined", "  (d) rest of the wait for the init's move into the v2 cgroup"),
  step("launcher", "stage:config", "  (d) configuration sent to the init"),
  step("launcher", "stage:ready", "  waits for the init's ready"),
  step("launcher", "create:done", "  state.json, pid file"),
  { what: "  return → process exit", from: L("create:done"), to: (t) => t.create.t1 },
  { what: "create, whole (spawn → exit)", from: (t) => t.create.t0, to: (t) => t.create.t1 },
  "init stage",
  { what: "  (e) spawn → Node's main() (fork, exec)", from: L("stage:spawn"), to: I("node:start") },
  { what: "  (e) Node boot (main() → bootstrap complete)", from: I("node:start"), to: I("node:bootstrapped") },
  { what: "  (e) module load (entry, init code, koffi)", from: I("node:bootstrapped"), to: I("init:loaded") },
  { what: "  (f) wait for + read the configuration", from: I("init:loaded"), to: I("init:config") },
  { what: "  (f) join cgroup, cgroup ns (+ mount ns)", from: I("init:config"), to: I("init:cgroup") },
  { what: "  (f) rootfs, pivot_root, paths", from: I("init:cgroup"), to: I("init:rootfs") },
  { what: "  (f) rlimits, caps, user, cwd", from: I("init:rootfs"), to: I("init:ready") },
  { what: "  ready → the launcher has it", from: I("init:ready"), to: L("stage:ready") },
  { what: "  launcher's spawn → init ready", from: L("stage:spawn"), to: I("init:ready") },
  "start (`berth runtime start`)",
  { what: "  spawn → Node's main()", from: (t) => t.startT.t0, to: S("node:start") },
  { what: "  Node boot", from: S("node:start"), to: S("node:bootstrapped") },
  { what: "  module load (berth.js … start)", from: S("node:bootstrapped"), to: S("start:loaded") },
  { what: "  (g) start's work → init released", from: S("start:loaded"), to: I("init:started") },
  { what: "  (g) init released → execve", from: I("init:started"), to: I("init:execve") },
  { what: "  start's return → process exit", from: S("start:done"), to: (t) => t.startT.t1 },
  { what: "start, whole (spawn → exit)", from: (t) => t.startT.t0, to: (t) => t.startT.t1 },
];

function segmentMedian(traces: Trace[], s: Segment): number {
  const xs: number[] = [];
  for (const t of traces) {
    const a = s.from(t);
    const b = s.to(t);
    if (a !== undefined && b !== undefined) xs.push(Number(b - a) / 1e6);
  }
  return xs.length ? median(xs) : Number.NaN;
}

// ---- whole-process figures

async function bootFigures(spawner: Spawner, runs: number, berthJss: Array<[string, string]>): Promise<string[][]> {
  const koffiScript = `const t0 = performance.now(); const k = (await import("koffi")).default; const t1 = performance.now(); const lib = k.load("libc.so.6"); lib.func("int getpid()")(); const t2 = performance.now(); process.stdout.write(JSON.stringify([t1 - t0, t2 - t1]));`;
  const rows: string[][] = [];
  const cases: Array<{ what: string; cmd: string; args: string[]; env: NodeJS.ProcessEnv }> = [
    { what: "(a) node -e 0", cmd: process.execPath, args: ["-e", "0"], env: runtimeEnv },
  ];
  if (process.env.NODE_EXTRA_CA_CERTS && !runtimeEnv.NODE_EXTRA_CA_CERTS) {
    cases.push({ what: "(a) node -e 0, with this shell's NODE_EXTRA_CA_CERTS", cmd: process.execPath, args: ["-e", "0"], env: process.env });
  }
  for (const [name, js] of berthJss) {
    cases.push({ what: `(b) ${name}: node dist/berth.js runtime --help`, cmd: process.execPath, args: [js, "runtime", "--help"], env: runtimeEnv });
  }
  cases.push({ what: "(b) bin/berth runtime --help (through sh, with this shell's environment)", cmd: join(REPO, "bin", "berth"), args: ["runtime", "--help"], env: process.env });
  cases.push({ what: "(c) node: import koffi + load libc (whole process)", cmd: process.execPath, args: ["--input-type=module", "-e", koffiScript], env: runtimeEnv });
  const times = cases.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    for (const [j, c] of turn([...cases.entries()], i)) {
      const t = await spawner.run(c.cmd, c.args, { cwd: REPO, env: c.env, log: "/dev/null" });
      if (t.code !== 0) throw new Error(`${c.what}: exit ${t.code ?? t.signal}`);
      times[j]!.push(t.ms);
    }
  }
  for (const [j, c] of cases.entries()) rows.push([c.what, ms(median(times[j]!)), ms(quantile(times[j]!, 0.9))]);
  // koffi in-process: import and first call, as the runtime does them.
  const inproc: number[][] = [[], []];
  const out = join(work!, "koffi.json");
  for (let i = 0; i < runs; i++) {
    rmSync(out, { force: true });
    await spawner.run("sh", ["-c", `'${process.execPath}' --input-type=module -e '${koffiScript}' > '${out}'`], { cwd: REPO, env: runtimeEnv, log: "/dev/null" });
    const [imp, load] = JSON.parse(readFileSync(out, "utf8")) as [number, number];
    inproc[0]!.push(imp);
    inproc[1]!.push(load);
  }
  rows.push(["(c) in-process: import(\"koffi\") (the package)", ms(median(inproc[0]!)), ms(quantile(inproc[0]!, 0.9))]);
  rows.push(["(c) in-process: koffi.load(libc) + first call", ms(median(inproc[1]!)), ms(quantile(inproc[1]!, 0.9))]);
  // What the build's bundles load instead of the package (bin/build.mjs, koffiDirect).
  const req = createRequire(join(REPO, "package.json"));
  req("koffi");
  const native = Object.keys(req.cache).find((f) => f.endsWith(".node") && f.includes("koffi"));
  if (native) {
    const direct: number[] = [];
    const script = `const t = performance.now(); require(${JSON.stringify(native)}); process.stdout.write(String(performance.now() - t));`;
    for (let i = 0; i < runs; i++) {
      rmSync(out, { force: true });
      await spawner.run("sh", ["-c", `'${process.execPath}' -e '${script}' > '${out}'`], { cwd: REPO, env: runtimeEnv, log: "/dev/null" });
      direct.push(Number(readFileSync(out, "utf8")));
    }
    rows.push(["(c) in-process: require of koffi's native module alone (what dist/ loads)", ms(median(direct)), ms(quantile(direct, 0.9))]);
  }
  return rows;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("run as root: containers need namespaces, mounts and cgroups");
  if (!existsSync(BERTH_JS)) throw new Error(`${BERTH_JS} is missing: run node bin/build.mjs first`);
  const newest = ["cli", "runtime"].map((d) => newestMtime(join(REPO, d))).reduce((a, b) => Math.max(a, b));
  if (newest > statSync(BERTH_JS).mtimeMs) console.log("note: sources are newer than dist/berth.js; run node bin/build.mjs to time the current code\n");
  if (!opts.inheritEnv) {
    runtimeEnv = { ...process.env };
    delete runtimeEnv.NODE_EXTRA_CA_CERTS;
    delete runtimeEnv.NODE_OPTIONS;
  }

  work = await mkdtemp(join(tmpdir(), "berth-bench-runtime-"));
  cgroupsPath = `berth-bench-${process.pid}`;
  bundle = await makeBundle((spec) => {
    spec.linux!.cgroupsPath = cgroupsPath;
    // crun 1.8 refuses "1.3.0" ("unknown version specified"); nothing here needs more than 1.0.
    spec.ociVersion = "1.0.2";
    if (opts.seccomp) spec.linux!.seccomp = runtimeDefaultProfile({ capabilities: spec.process!.capabilities?.bounding ?? [], arch: "x86_64" }) as never;
  });

  const host = new Spawner("host", process.execPath, ["-e", HELPER]);
  spawners.push(host);
  const roots = join(work, "roots");
  const berth = nodeRuntime("berth", BERTH_JS, join(roots, "berth"), host);
  const runc = binRuntime("runc", "runc", join(roots, "runc"), host);
  runtimes.push(berth, runc);
  let baseline: Runtime | undefined;
  if (opts.baseline) {
    baseline = nodeRuntime("baseline", opts.baseline, join(roots, "baseline"), host);
    runtimes.push(baseline);
  }
  let crun: Runtime | undefined;
  let crunSkipped: string | undefined;
  const crunBin = ["/usr/bin/crun", "/usr/sbin/crun", "/usr/local/bin/crun"].find((p) => existsSync(p));
  if (!crunBin) crunSkipped = "crun is not installed (Debian package crun)";
  else if (!existsSync(V1_ONLY_NS)) crunSkipped = `${V1_ONLY_NS} is missing (crun refuses the hybrid cgroup layout without it)`;
  else {
    const s = new Spawner("crun", "sh", [V1_ONLY_NS, process.execPath, "-e", HELPER]);
    spawners.push(s);
    crun = binRuntime("crun", crunBin, join(roots, "crun"), s);
    runtimes.push(crun);
  }
  for (const rt of runtimes) await mkdir(rt.root, { recursive: true });
  const ver = (cmd: string) => spawnSync(cmd, ["--version"], { encoding: "utf8" }).stdout?.split("\n")[0] ?? "?";
  console.log(`bundle: ${bundle.dir} (busybox-static rootfs, /bin/true, terminal false, ociVersion 1.0.2, cgroupsPath ${cgroupsPath}${opts.seccomp ? ", RuntimeDefault seccomp profile" : ", no seccomp"})`);
  console.log(`node ${process.version}; ${ver("runc")}; ${crunBin ? ver(crunBin) : "crun: not installed"}`);
  console.log(`environment of the runtimes: ${opts.inheritEnv ? "inherited" : "inherited minus NODE_EXTRA_CA_CERTS and NODE_OPTIONS (--inherit-env keeps them)"}`);
  console.log(`${opts.runs} rounds per table, the runtimes taking turns within each round; times are spawn → exit of the command\n`);

  // One untimed round each: page cache, cgroup directories, the helpers' own warm-up.
  for (const rt of runtimes) await runOnce(rt);

  // ---- 1. run
  const runners = runtimes;
  const runTimes = new Map<string, number[]>(runners.map((r) => [r.name, []]));
  for (let i = 0; i < opts.runs; i++) for (const rt of turn(runners, i)) runTimes.get(rt.name)!.push(await runOnce(rt));
  const runcMedian = median(runTimes.get("runc")!);
  console.log("`run` of the /bin/true bundle (create + start + wait + delete), ms");
  printTable([
    ["runtime", "median", "p90", "min", "× runc (median)"],
    ...runners.map((rt) => {
      const xs = runTimes.get(rt.name)!;
      return [rt.name, ms(median(xs)), ms(quantile(xs, 0.9)), ms(Math.min(...xs)), (median(xs) / runcMedian).toFixed(2)];
    }),
  ]);
  if (crunSkipped) console.log(`crun: skipped (${crunSkipped})`);
  else console.log("crun runs in the anchors' v1-only namespace (its helper inside it); berth and runc on the host's hybrid layout");
  console.log();

  // ---- 2. create / start / delete, as conmon and CRI-O call them
  const lifecycled = [berth, runc, ...(baseline ? [baseline] : [])];
  const lc = new Map<string, Lifecycle[]>(lifecycled.map((r) => [r.name, []]));
  const inProcess: number[] = [];
  const inProcessBaseline: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    for (const rt of turn(lifecycled, i)) lc.get(rt.name)!.push(await lifecycleOnce(rt));
    inProcess.push((await inProcessStartOnce(berth)).startMs);
    if (baseline) inProcessBaseline.push((await inProcessStartOnce(baseline)).startMs);
  }
  console.log("create → start as conmon sees it: each command alone, spawn → exit, ms (median / p90)");
  const runcLc = lc.get("runc")!;
  const col = (xs: Lifecycle[], k: keyof Lifecycle) => xs.map((x) => x[k].ms);
  printTable([
    ["runtime", "create", "start", "delete", "create × runc"],
    ...lifecycled.map((rt) => {
      const xs = lc.get(rt.name)!;
      const f = (k: keyof Lifecycle) => `${ms(median(col(xs, k)))} / ${ms(quantile(col(xs, k), 0.9))}`;
      return [rt.name, f("create"), f("start"), f("del"), (median(col(xs, "create")) / median(col(runcLc, "create"))).toFixed(2)];
    }),
    ["berth start in-process (the daemon's way)", "", `${ms(median(inProcess))} / ${ms(quantile(inProcess, 0.9))}`, "", ""],
    ...(baseline ? [["baseline start in-process", "", `${ms(median(inProcessBaseline))} / ${ms(quantile(inProcessBaseline, 0.9))}`, "", ""]] : []),
  ]);
  console.log();

  // ---- 3. where berth's create goes
  console.log("whole processes, ms (median / p90)");
  const bootRows = await bootFigures(host, opts.runs, [["berth", BERTH_JS], ...(baseline ? ([["baseline", baseline.argv([])[1][0]!]] as Array<[string, string]>) : [])]);
  printTable([["what", "median", "p90"], ...bootRows]);
  console.log();

  const traced = [berth, ...(baseline ? [baseline] : [])];
  const traces = new Map<string, Trace[]>(traced.map((r) => [r.name, []]));
  for (let i = 0; i < opts.runs; i++) for (const rt of turn(traced, i)) traces.get(rt.name)!.push(await traceOnce(rt));
  console.log("berth's create and start step by step, BERTH_TRACE marks (CLOCK_MONOTONIC), median ms of each step");
  const head = ["step", ...traced.map((r) => r.name)];
  const rows: string[][] = [head];
  for (const s of SEGMENTS) {
    if (typeof s === "string") rows.push([s, ...traced.map(() => "")]);
    else rows.push([s.what, ...traced.map((r) => ms(segmentMedian(traces.get(r.name)!, s)))]);
  }
  printTable(rows);
  console.log("(medians of steps do not add up to the median of the whole; – : the build has no such mark)");
  console.log();

  // ---- verdict
  const berthRun = median(runTimes.get("berth")!);
  const berthCreate = median(col(lc.get("berth")!, "create"));
  console.log("goals of the issue");
  console.log(`  run ≤ 1.5 × runc:      berth ${ms(berthRun)} ms vs runc ${ms(runcMedian)} ms = ${(berthRun / runcMedian).toFixed(2)} × → ${berthRun <= 1.5 * runcMedian ? "met" : "NOT met"}`);
  console.log(`  create < 60 ms median: berth ${ms(berthCreate)} ms → ${berthCreate < 60 ? "met" : "NOT met"}`);
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith(".ts")) continue;
    newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

try {
  await main();
} catch (err) {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
