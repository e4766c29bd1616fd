// Pull benchmark: berth's daemon against skopeo, on the same ~100 MiB image served by a local
// docker-registry. Not part of the suite. Run as root from the repository:
//   node --import tsx bench/pull.ts [--runs N]
// Each run pulls into a fresh, empty root (a cold pull); skopeo and berth take turns going first
// so neither always gets the warmer page cache. Berth's daemon memory is sampled from /proc.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { busyboxRootfs, randomFileEntry, writeImageToLayout } from "../runtime/image/build";
import { pushLayout } from "../test/support/test-images";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const BERTH = join(REPO, "bin", "berth");
const LAYER_MIB = [40, 25, 15, 10, 6, 4];
const MIB = 1024 * 1024;
const TAIL = 600;

// ---- everything started or created here, undone on exit, error or Ctrl-C ----

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

/** SIGTERM first (a daemon unmounts and saves state on the way out), SIGKILL what is still there after 10 s, then remove the temp dirs. */
async function cleanup(): Promise<void> {
  const live = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  const exited = live.map((c) => new Promise((r) => c.once("exit", r)));
  for (const c of live) c.kill("SIGTERM");
  await Promise.race([Promise.all(exited), sleep(10_000)]);
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  children.clear();
  for (const d of dirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch (err) {
      process.stderr.write(`bench: could not remove ${d}: ${(err as Error).message}\n`);
    }
  }
  dirs.clear();
}

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${sig}: cleaning up\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function tempDir(prefix: string): Promise<string> {
  if (interrupted) throw new Error("interrupted");
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
}

async function removeDir(d: string): Promise<void> {
  await rm(d, { recursive: true, force: true });
  dirs.delete(d);
}

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function start(cmd: string, args: string[]): Proc {
  // Cleanup is under way: start nothing it would miss.
  if (interrupted) throw new Error("interrupted");
  let out = "";
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  const keep = (d: Buffer) => {
    // Only the tail matters (error reports); berth pull can print a lot of progress.
    out = (out + d.toString()).slice(-64 * 1024);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once("error", (err) => {
      out += `\n${err.message}`;
      children.delete(child);
      resolve(-1);
    });
    child.once("exit", (code, signal) => {
      children.delete(child);
      resolve(code ?? (signal ? 128 : null));
    });
  });
  return { child, output: () => out, exited };
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  const killer = setTimeout(() => p.child.kill("SIGKILL"), 10_000);
  await p.exited;
  clearTimeout(killer);
}

const tail = (s: string) => s.trim().slice(-TAIL);

// ---- registry ----

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function startRegistry(): Promise<string> {
  const dir = await tempDir("berth-bench-registry-");
  const host = `127.0.0.1:${await freePort()}`;
  const config = { version: 0.1, log: { level: "error" }, storage: { filesystem: { rootdirectory: join(dir, "data") } }, http: { addr: host } };
  await writeFile(join(dir, "config.yml"), JSON.stringify(config)); // JSON is YAML
  const p = start("docker-registry", ["serve", join(dir, "config.yml")]);
  for (let i = 0; i < 500; i++) {
    if (p.child.exitCode !== null) break;
    const res = await fetch(`http://${host}/v2/`).catch(() => undefined);
    if (res?.status === 200) return host;
    await sleep(20);
  }
  throw new Error(`docker-registry did not come up on ${host}: ${tail(p.output())}`);
}

// ---- measurements ----

type Result = { ok: true; seconds: number; peakRssKiB?: number; hwmKiB?: number; cpuSeconds?: number } | { ok: false; error: string };

async function timeSkopeo(host: string): Promise<Result> {
  const dest = await tempDir("berth-bench-skopeo-");
  try {
    const t0 = performance.now();
    const p = start("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${host}/bench:1`, `oci:${dest}:1`]);
    const code = await p.exited;
    const seconds = (performance.now() - t0) / 1000;
    return code === 0 ? { ok: true, seconds } : { ok: false, error: `exit ${code}: ${tail(p.output())}` };
  } finally {
    await removeDir(dest);
  }
}

function procStatusKiB(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function procCpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the ")" that ends comm; utime and stime are fields 14 and 15, in clock ticks (100/s here).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

function profileDir(): string | undefined {
  const i = process.argv.indexOf("--profile");
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function timeBerth(host: string): Promise<Result> {
  if (!existsSync(join(REPO, "dist", "berth.js"))) return { ok: false, error: "dist/berth.js is missing: run bin/setup first" };
  const dir = await tempDir("berth-bench-root-");
  const socket = join(dir, "berth.sock");
  // bin/berth execs node, so this PID is the daemon's.
  // --profile DIR: the daemon runs with V8's CPU profiler, to see where a pull's time goes.
  const profile = profileDir();
  const serve = profile ? [process.execPath, ["--cpu-prof", "--cpu-prof-dir", profile, join(REPO, "dist", "berth.js")]] as const : [BERTH, []] as const;
  const daemon = start(serve[0], [...serve[1], "serve", "--root", join(dir, "root"), "--state", join(dir, "state"), "--socket", socket, "--insecure-registry", host, "--metrics-addr", "127.0.0.1:0"]);
  try {
    for (let i = 0; !existsSync(socket); i++) {
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null || i > 1500) {
        return { ok: false, error: `serve ${daemon.child.exitCode === null ? "did not create its socket" : `exited ${daemon.child.exitCode ?? daemon.child.signalCode}`}: ${tail(daemon.output())}` };
      }
      await sleep(20);
    }
    const pid = daemon.child.pid!;
    const cpuBefore = procCpuSeconds(pid);
    let peak = procStatusKiB(pid, "VmRSS") ?? 0;
    const t0 = performance.now();
    const pull = start(BERTH, ["--socket", socket, "pull", `${host}/bench:1`]);
    let done = false;
    const sampling = (async () => {
      while (!done) {
        peak = Math.max(peak, procStatusKiB(pid, "VmRSS") ?? 0);
        await sleep(25);
      }
    })();
    // A hung pull must not hang the benchmark.
    const guard = setTimeout(() => pull.child.kill("SIGKILL"), 600_000);
    const code = await pull.exited;
    clearTimeout(guard);
    const seconds = (performance.now() - t0) / 1000;
    done = true;
    await sampling;
    if (code !== 0) return { ok: false, error: `pull exit ${code}: ${tail(pull.output())}${daemon.child.exitCode !== null ? `\ndaemon: ${tail(daemon.output())}` : ""}` };
    const cpuAfter = procCpuSeconds(pid);
    const cpuSeconds = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
    return { ok: true, seconds, peakRssKiB: peak, hwmKiB: procStatusKiB(pid, "VmHWM"), cpuSeconds };
  } finally {
    await stop(daemon);
    await removeDir(dir);
  }
}

// ---- report ----

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2;
}

const secs = (r: Result) => (r.ok ? r.seconds.toFixed(3) : "failed");
const mib = (kib: number | undefined) => (kib === undefined ? "-" : (kib / 1024).toFixed(1));

function report(runs: Array<{ skopeo: Result; berth: Result; first: string }>): void {
  const rows = [["run", "first", "skopeo s", "berth s", "berth peak RSS MiB", "berth VmHWM MiB", "berth CPU s"]];
  for (const [i, r] of runs.entries()) {
    const b = r.berth.ok ? r.berth : undefined;
    rows.push([String(i + 1), r.first, secs(r.skopeo), secs(r.berth), mib(b?.peakRssKiB), mib(b?.hwmKiB), b?.cpuSeconds?.toFixed(2) ?? "-"]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  for (const row of rows) console.log(row.map((cell, c) => cell.padStart(widths[c]!)).join("  "));
  const okTimes = (k: "skopeo" | "berth") => runs.flatMap((r) => (r[k].ok ? [r[k].seconds] : []));
  const ms = median(okTimes("skopeo"));
  const mb = median(okTimes("berth"));
  console.log("");
  console.log(`median skopeo: ${ms === undefined ? "n/a" : `${ms.toFixed(3)} s`} (${okTimes("skopeo").length}/${runs.length} ok)`);
  console.log(`median berth:  ${mb === undefined ? "n/a" : `${mb.toFixed(3)} s`} (${okTimes("berth").length}/${runs.length} ok)`);
  console.log(`ratio berth/skopeo: ${ms && mb ? (mb / ms).toFixed(2) : "n/a"}`);
  const peaks = runs.flatMap((r) => (r.berth.ok && r.berth.hwmKiB !== undefined ? [Math.max(r.berth.hwmKiB, r.berth.peakRssKiB ?? 0)] : []));
  console.log(`berth daemon peak RSS: ${peaks.length ? `${mib(Math.max(...peaks))} MiB (max over runs)` : "n/a"}`);
  for (const [name, k] of [
    ["skopeo", "skopeo"],
    ["berth", "berth"],
  ] as const) {
    const errors = new Set(runs.flatMap((r) => (r[k].ok ? [] : [r[k].error])));
    for (const e of errors) console.log(`${name}: failed: ${e}`);
  }
}

// ---- main ----

function parseRuns(argv: string[]): number {
  const i = argv.indexOf("--runs");
  if (i === -1) return 7;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--runs needs a positive integer, got ${argv[i + 1]}`);
  return n;
}

async function main(): Promise<void> {
  const runCount = parseRuns(process.argv.slice(2));
  const work = await tempDir("berth-bench-");
  const layout = join(work, "layout");
  let t0 = performance.now();
  const layers = [
    { entries: busyboxRootfs() },
    ...LAYER_MIB.map((n, i) => ({ entries: [randomFileEntry(`/bench/layer-${i}-${n}MiB.bin`, n * MIB, `bench-${i}`)] })),
  ];
  const built = await writeImageToLayout(layout, { layers, config: { Cmd: ["sh"] } }, { tag: "1" });
  const bytes = built.layers.reduce((a, l) => a + l.size, 0);
  console.log(`image: ${built.layers.length} layers, ${mib(bytes / 1024)} MiB compressed, built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const host = await startRegistry();
  t0 = performance.now();
  await pushLayout(layout, "1", host, "bench");
  console.log(`pushed to ${host}/bench:1 (${built.manifest.digest}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await removeDir(layout);

  const runs: Array<{ skopeo: Result; berth: Result; first: string }> = [];
  for (let i = 0; i < runCount; i++) {
    const skopeoFirst = i % 2 === 0;
    let skopeo: Result;
    let berth: Result;
    if (skopeoFirst) {
      skopeo = await timeSkopeo(host);
      berth = await timeBerth(host);
    } else {
      berth = await timeBerth(host);
      skopeo = await timeSkopeo(host);
    }
    runs.push({ skopeo, berth, first: skopeoFirst ? "skopeo" : "berth" });
    process.stderr.write(`run ${i + 1}/${runCount}: skopeo ${secs(skopeo)}, berth ${secs(berth)}\n`);
  }
  console.log("");
  report(runs);
}

try {
  await main();
} catch (err) {
  console.error(`bench: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  // Daemons are stopped by then; this takes down the registry and removes every temp dir.
  await cleanup();
}
