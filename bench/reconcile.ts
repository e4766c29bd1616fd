// Reconciler benchmark: the same reconciler (berth serve --manifests) over two runtimes in one
// invocation: berth's own, in-process, and containerd (Debian's, CRI plugin, runc) through
// --runtime-endpoint, the reference. Not part of the suite. Run as root from the repository, after
// `node bin/build.mjs`:
//   node --import tsx bench/reconcile.ts [--edits 20] [--pods 100]
//
// Per backend:
//  - edit → running: a file edit (a new env value, written as editors do: temp file + rename) until
//    the replacing container runs, median and p90 of --edits;
//  - swap → running: the same through a git-sync swap of the folder's symlink;
//  - converge: --pods single-container pods written at once, until all run; then the file removed,
//    until none is left; the berth daemon's CPU time and peak RSS over both (and containerd's CPU
//    for the reference).
// "Running" is read by polling the runtime's ListContainers every 10 ms.
//
// Everything is made in temp directories and removed on exit, also on error and Ctrl-C: pods
// through CRI, the daemons, containerd (../shared/anchors/containerd), bridges, nat rules, cgroups.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CriClient } from "../cri/client";
import type * as cri from "../runtime/api/cri-v1";
import { startDaemon, type TestDaemon } from "../test/support/daemon";
import { type ContainerdReference, pushBenchImages, startContainerd, tearDownBench } from "./containerd-reference";
import { median, p90, table } from "./figures";
import { hostNetworkSnapshot } from "../test/support/host-network";
import { startRegistry } from "../test/support/registry";


function options(argv: string[]): { edits: number; pods: number } {
  const o = { edits: 20, pods: 100 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--edits") o.edits = Number(argv[++i]);
    else if (argv[i] === "--pods") o.pods = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}; usage: bench/reconcile.ts [--edits N] [--pods N]`);
  }
  if (!(o.edits >= 3) || !(o.pods >= 1)) throw new Error("--edits needs at least 3 and --pods at least 1");
  return o;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / 100;
}
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

interface Backend {
  name: string;
  daemon: TestDaemon;
  /** Where the pods actually run. */
  runtime: CriClient;
  runtimePid?: number;
  folder: string;
  worktrees: string;
  rev: number;
}

const pod = (name: string, image: string, env = "0") => `apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: c
      image: ${image}
      command: ["sleep", "3600"]
      env: [{ name: EDIT, value: "${env}" }]
`;

async function swapTo(b: Backend, files: Record<string, string>): Promise<void> {
  const hash = (++b.rev).toString(16).padStart(40, "0");
  const tree = join(b.worktrees, hash);
  await mkdir(tree, { recursive: true });
  for (const [n, t] of Object.entries(files)) await writeFile(join(tree, n), t);
  const tmp = `${b.folder}.${hash}`;
  await symlink(join(".worktrees", hash), tmp);
  await rename(tmp, b.folder);
}

/** An edit as an editor saves it: a temp file renamed over the old one, in the current tree. */
async function editInPlace(b: Backend, name: string, text: string): Promise<void> {
  const tmp = join(b.folder, `.${name}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, join(b.folder, name));
}

async function runningCount(c: CriClient): Promise<number> {
  const { containers } = await c.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { state: { state: "CONTAINER_RUNNING" } } });
  return containers.length;
}

async function until(what: string, fn: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function runningIds(c: CriClient, podName: string): Promise<string[]> {
  const { containers } = await c.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { state: { state: "CONTAINER_RUNNING" }, labelSelector: { "io.kubernetes.pod.name": podName } } });
  return containers.map((x) => x.id);
}

async function editToRunning(b: Backend, image: string, n: number, how: "edit" | "swap"): Promise<number> {
  const before = new Set(await runningIds(b.runtime, "edit"));
  const t0 = performance.now();
  if (how === "edit") await editInPlace(b, "edit.yaml", pod("edit", image, `${how}-${n}`));
  else await swapTo(b, { "edit.yaml": pod("edit", image, `${how}-${n}`) });
  await until(`${b.name}: the edited pod running`, async () => (await runningIds(b.runtime, "edit")).some((id) => !before.has(id)));
  return performance.now() - t0;
}

async function converge(b: Backend, image: string, pods: number): Promise<{ upS: number; downS: number; cpuS: number; peakRssMiB: number; runtimeCpuS?: number }> {
  const pid = b.daemon.pid;
  const cpu0 = cpuSeconds(pid);
  const rcpu0 = b.runtimePid ? cpuSeconds(b.runtimePid) : 0;
  let peak = rssMiB(pid);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid));
  }, 100);
  try {
    const docs = Array.from({ length: pods }, (_, i) => pod(`many-${i}`, image)).join("---\n");
    const t0 = performance.now();
    await editInPlace(b, "many.yaml", docs);
    await until(`${b.name}: ${pods} pods running`, async () => (await runningCount(b.runtime)) >= pods + 1, 600_000);
    const upS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await rm(join(b.folder, "many.yaml"));
    await until(`${b.name}: the pods gone`, async () => {
      const { items } = await b.runtime.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
      return items.filter((s) => s.metadata?.name.startsWith("many-")).length === 0;
    }, 600_000);
    const downS = (performance.now() - t1) / 1000;
    return { upS, downS, cpuS: cpuSeconds(pid) - cpu0, peakRssMiB: peak, runtimeCpuS: b.runtimePid ? cpuSeconds(b.runtimePid) - rcpu0 : undefined };
  } finally {
    clearInterval(sampler);
  }
}

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  const net = hostNetworkSnapshot();
  const work = await mkdtemp(join(tmpdir(), "berth-bench-reconcile-"));
  const cbase = join(work, "containerd");
  const bridge = `bq${process.pid % 100000}`;
  let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
  const backends: Backend[] = [];
  let containerd: ContainerdReference | undefined;
  const cleanup = async () => {
    for (const b of backends) {
      // The reconciler would put pods back: stop it before removing them.
      await b.daemon.stop().catch(() => {});
    }
    const clients: CriClient[] = [];
    if (containerd) clients.push(containerd.client);
    const berthDir = join(work, "berth");
    let cleaner: TestDaemon | undefined;
    if (existsSync(berthDir)) {
      cleaner = await startDaemon({ dir: berthDir, config: { cgroupRoot: `berth-bench-${process.pid}`, cni: { confDir: join(work, "berth-cni"), bridge, subnet: `10.85.${process.pid % 250}.0/24` } } }).catch(() => undefined);
      if (cleaner) clients.push(cleaner.client);
    }
    await tearDownBench({ clients, daemons: cleaner ? [cleaner] : [], containerd, work, cgroupRoot: `berth-bench-${process.pid}`, net, bridge, registry });
  };
  process.once("SIGINT", () => {
    cleanup().finally(() => process.exit(130));
  });
  try {
    registry = await startRegistry();
    const { image, pause } = await pushBenchImages(work, registry.host);
    containerd = startContainerd(cbase, pause, registry.host);
    const csock = containerd.socket;

    for (const [name, endpoint] of [
      ["berth (in-process)", undefined],
      ["containerd (CRI)", `unix://${csock}`],
    ] as const) {
      const dir = join(work, name.startsWith("berth") ? "berth" : "reconciler-containerd");
      const worktrees = join(dir, "repo", ".worktrees");
      const b = { name, folder: join(dir, "repo", "manifests"), worktrees, rev: 0 } as Backend;
      await mkdir(worktrees, { recursive: true });
      await swapTo(b, { "edit.yaml": pod("edit", image, "start") });
      b.daemon = await startDaemon({
        dir,
        insecureRegistries: [registry.host],
        args: ["--manifests", b.folder, ...(endpoint ? ["--runtime-endpoint", endpoint] : [])],
        config: { cgroupRoot: `berth-bench-${process.pid}`, cni: { confDir: join(work, "berth-cni"), bridge, subnet: `10.85.${process.pid % 250}.0/24` }, logLevel: "warn", reconciler: { concurrency: 4, resyncSeconds: 30 } },
      });
      b.runtime = endpoint ? containerd.client : b.daemon.client;
      b.runtimePid = endpoint ? containerd.pid : undefined;
      backends.push(b);
      await until(`${name}: the first pod`, async () => (await runningIds(b.runtime, "edit")).length === 1);
    }

    const edits: Record<string, { edit: number[]; swap: number[] }> = {};
    for (const b of backends) edits[b.name] = { edit: [], swap: [] };
    // Taking turns, so that neither backend runs on a warmer machine.
    for (let n = 0; n < opts.edits; n++) {
      for (const b of n % 2 ? [...backends].reverse() : backends) {
        edits[b.name]!.edit.push(await editToRunning(b, image, n, "edit"));
        edits[b.name]!.swap.push(await editToRunning(b, image, n, "swap"));
      }
    }
    const conv: Record<string, Awaited<ReturnType<typeof converge>>> = {};
    for (const b of backends) conv[b.name] = await converge(b, image, opts.pods);

    const [a, c] = backends as [Backend, Backend];
    console.log(`the reconciler over berth's runtime and over containerd 1.6 (runc 1.1.5); ${opts.edits} edits each, taking turns; ${opts.pods} pods\n`);
    const rows = [["", a.name, c.name, "ratio"]];
    const ms = (xs: number[]) => `${median(xs).toFixed(0)} / ${p90(xs).toFixed(0)}`;
    rows.push(["edit → running, ms (median / p90)", ms(edits[a.name]!.edit), ms(edits[c.name]!.edit), (median(edits[a.name]!.edit) / median(edits[c.name]!.edit)).toFixed(2)]);
    rows.push(["swap → running, ms (median / p90)", ms(edits[a.name]!.swap), ms(edits[c.name]!.swap), (median(edits[a.name]!.swap) / median(edits[c.name]!.swap)).toFixed(2)]);
    rows.push([`${opts.pods} pods converged, s`, conv[a.name]!.upS.toFixed(1), conv[c.name]!.upS.toFixed(1), (conv[a.name]!.upS / conv[c.name]!.upS).toFixed(2)]);
    rows.push([`${opts.pods} pods deleted, s`, conv[a.name]!.downS.toFixed(1), conv[c.name]!.downS.toFixed(1), (conv[a.name]!.downS / conv[c.name]!.downS).toFixed(2)]);
    rows.push(["berth daemon CPU over both, s", conv[a.name]!.cpuS.toFixed(1), conv[c.name]!.cpuS.toFixed(1), ""]);
    rows.push(["containerd CPU over both, s", "-", (conv[c.name]!.runtimeCpuS ?? 0).toFixed(1), ""]);
    rows.push(["berth daemon peak RSS, MiB", conv[a.name]!.peakRssMiB.toFixed(0), conv[c.name]!.peakRssMiB.toFixed(0), ""]);
    console.log(table(rows));
    const p50 = median(edits[a.name]!.edit);
    console.log(`\ngoals (berth in-process): edit → running p50 ≤ 300 ms: ${p50.toFixed(0)} ms → ${p50 <= 300 ? "met" : "NOT met"}; ${opts.pods} pods ≤ 30 s: ${conv[a.name]!.upS.toFixed(1)} s → ${conv[a.name]!.upS <= 30 ? "met" : "NOT met"}`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
