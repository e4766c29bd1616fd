// CRI benchmark: the same client drives berth and containerd (Debian's, CRI plugin built in, runc
// behind it) through a pod's whole life, the two runtimes taking turns. Not part of the suite.
// Run as root from the repository, after `node bin/build.mjs`:
//   node --import tsx bench/cri.ts [--pods N] [--hold 20]
//
// Per pod: RunPodSandbox → CreateContainer → StartContainer → StopContainer → RemoveContainer →
// StopPodSandbox → RemovePodSandbox, each call timed on the client (medians, p90, ratio to
// containerd). Then each daemon's RSS idle and with --hold pods running one container each, the
// per-container monitor's memory (conmon for berth, containerd-shim-runc-v2 for containerd) as
// PSS from /proc/PID/smaps_rollup, ExecSync of `true` in one of those containers (RuntimeDefault
// seccomp: an exec probe's cost) and Version (an empty call, the floor of any call).
//
// Both start from nothing in temp directories: a local registry (Debian's docker-registry on
// 127.0.0.1) holding busybox built from this machine's busybox-static and a "pause" image for
// containerd (berth needs none); berth serve with its own bridge; containerd through
// ../shared/anchors/containerd/start.sh. Everything is removed on exit, also on error and Ctrl-C:
// pods through CRI, then the daemons, bridges, nat rules, cgroups and directories.
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
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

const STEPS = ["RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"] as const;
type Step = (typeof STEPS)[number];

/** The steps of one RPC that the daemon logs (runtime/pods/step-times.ts), beside the call as the client saw it. */
function daemonSteps(logs: string, message: string, names: Array<[key: string, what: string]>, client: number[]): string[][] {
  const lines = logs
    .split("\n")
    .filter((l) => l.includes(`"${message}"`))
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((l) => names.every(([k]) => l[k] !== undefined));
  // The warm-up life's and the held pods' calls are in the log too: every one counts.
  const rows = [["step", "median"]];
  for (const [key, what] of names) rows.push([what, median(lines.map((l) => l[key]!)).toFixed(1)]);
  rows.push(["all the steps above together (daemon)", median(lines.map((l) => names.reduce((a, [k]) => a + l[k]!, 0))).toFixed(1)]);
  // Not a difference of the two: the log holds the held pods' calls too, the client's figure the lives' only.
  rows.push(["the whole call on the client (pod lives only)", median(client).toFixed(1)]);
  rows.push(["calls logged", String(lines.length)]);
  return rows;
}

function options(argv: string[]): { pods: number; hold: number } {
  const o = { pods: 20, hold: 20 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--pods") o.pods = Number(argv[++i]);
    else if (argv[i] === "--hold") o.hold = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}; usage: bench/cri.ts [--pods N] [--hold N]`);
  }
  if (!(o.pods >= 3) || !(o.hold >= 1)) throw new Error("--pods needs at least 3 and --hold at least 1");
  return o;
}

interface Runtime {
  name: string;
  client: CriClient;
  pid: () => number;
  monitors: () => number[];
  times: Record<Step, number[]>;
}

/**
 * A daemon's resident memory: all of it (VmRSS), and its anonymous part (RssAnon), which leaves out
 * the pages of its executable and libraries — ~45 MiB of node's own binary for berth, which every
 * Node process on the machine shares.
 */
function memKiB(pid: number): { rss: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: field("VmRSS"), anon: field("RssAnon") };
}

function pssKiB(pid: number): number {
  try {
    const m = /Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return Number(m?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function pidsByExe(exeSuffix: string, mention: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
      if (cmd[0]?.endsWith(exeSuffix) && cmd.join(" ").includes(mention)) out.push(Number(e));
    } catch {}
  }
  return out;
}

async function timed<T>(rt: Runtime, step: Step, fn: () => Promise<T>): Promise<T> {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  rt.times[step].push(Number(process.hrtime.bigint() - t0) / 1e6);
  return r;
}

async function podLife(rt: Runtime, image: string, n: number, logDir: string): Promise<void> {
  const config: cri.CriRequest<cri.PodSandboxConfig> = {
    metadata: { name: `bench-${n}`, namespace: "bench", uid: `bench-${rt.name}-${n}-${process.pid}`, attempt: 0 },
    hostname: `bench-${n}`,
    logDirectory: join(logDir, rt.name, String(n)),
    linux: {},
  };
  const { podSandboxId } = await timed(rt, "RunPodSandbox", () => rt.client.runtimeCall<cri.RunPodSandboxResponse>("RunPodSandbox", { config }));
  const ctr = { metadata: { name: "c", attempt: 0 }, image: { image }, command: ["sleep", "600"], logPath: "c.log", linux: {} };
  const { containerId } = await timed(rt, "CreateContainer", () => rt.client.runtimeCall<cri.CreateContainerResponse>("CreateContainer", { podSandboxId, config: ctr, sandboxConfig: config }));
  await timed(rt, "StartContainer", () => rt.client.runtimeCall("StartContainer", { containerId }));
  await timed(rt, "StopContainer", () => rt.client.runtimeCall("StopContainer", { containerId, timeout: "0" }));
  await timed(rt, "RemoveContainer", () => rt.client.runtimeCall("RemoveContainer", { containerId }));
  await timed(rt, "StopPodSandbox", () => rt.client.runtimeCall("StopPodSandbox", { podSandboxId }));
  await timed(rt, "RemovePodSandbox", () => rt.client.runtimeCall("RemovePodSandbox", { podSandboxId }));
}

async function holdPods(rt: Runtime, image: string, count: number, logDir: string): Promise<{ mem: { rss: number; anon: number }; monitorPss: number[]; execSync: number[] }> {
  const ids: string[] = [];
  for (let n = 0; n < count; n++) {
    const config = { metadata: { name: `hold-${n}`, namespace: "bench", uid: `hold-${rt.name}-${n}-${process.pid}`, attempt: 0 }, logDirectory: join(logDir, rt.name, `hold-${n}`), linux: {} };
    const { podSandboxId } = await rt.client.runtimeCall<cri.RunPodSandboxResponse>("RunPodSandbox", { config });
    ids.push(podSandboxId);
    // RuntimeDefault seccomp, as the reconciler (and kubelet with SeccompDefault) asks for it.
    const ctr = { metadata: { name: "c", attempt: 0 }, image: { image }, command: ["sleep", "600"], logPath: "c.log", linux: { securityContext: { seccomp: { profileType: "RuntimeDefault" } } } };
    const { containerId } = await rt.client.runtimeCall<cri.CreateContainerResponse>("CreateContainer", { podSandboxId, config: ctr, sandboxConfig: config });
    await rt.client.runtimeCall("StartContainer", { containerId });
  }
  await sleep(1000);
  const mem = memKiB(rt.pid());
  const monitorPss = rt.monitors().map(pssKiB).filter((x) => x > 0);
  // ExecSync of `true` in a held container, what an exec probe costs.
  const execSync: number[] = [];
  const { containers } = await rt.client.runtimeCall<cri.ListContainersResponse>("ListContainers", { filter: { podSandboxId: ids[0] } });
  for (let n = 0; n < 20 && containers[0]; n++) {
    const t0 = process.hrtime.bigint();
    await rt.client.runtimeCall("ExecSync", { containerId: containers[0].id, cmd: ["true"], timeout: "10" });
    execSync.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  for (const id of ids) {
    await rt.client.runtimeCall("StopPodSandbox", { podSandboxId: id });
    await rt.client.runtimeCall("RemovePodSandbox", { podSandboxId: id });
  }
  return { mem, monitorPss, execSync };
}

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  const net = hostNetworkSnapshot();
  const work = await mkdtemp(join(tmpdir(), "berth-bench-cri-"));
  const cbase = join(work, "containerd");
  let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
  let berth: TestDaemon | undefined;
  let containerd: ContainerdReference | undefined;
  const berthBridge = `bb${process.pid % 100000}`;
  const cleanup = () =>
    tearDownBench({
      clients: [berth?.client, containerd?.client].filter((c): c is CriClient => !!c),
      daemons: berth ? [berth] : [],
      containerd,
      work,
      cgroupRoot: `berth-bench-${process.pid}`,
      net,
      bridge: berthBridge,
      registry,
    });
  process.once("SIGINT", () => {
    cleanup().finally(() => process.exit(130));
  });
  try {
    registry = await startRegistry();
    const { image, pause } = await pushBenchImages(work, registry.host);

    berth = await startDaemon({
      dir: join(work, "berth"),
      insecureRegistries: [registry.host],
      config: { cgroupRoot: `berth-bench-${process.pid}`, cni: { confDir: join(work, "berth-cni"), bridge: berthBridge, subnet: `10.89.${process.pid % 250}.0/24` }, logLevel: "debug" },
    });
    containerd = startContainerd(cbase, pause, registry.host);
    const containerdPid = containerd.pid;

    const runtimes: Runtime[] = [
      { name: "berth", client: berth.client, pid: () => berth!.pid, monitors: () => pidsByExe("conmon", work), times: Object.fromEntries(STEPS.map((s) => [s, []])) as unknown as Record<Step, number[]> },
      { name: "containerd", client: containerd.client, pid: () => containerdPid, monitors: () => pidsByExe("containerd-shim-runc-v2", cbase), times: Object.fromEntries(STEPS.map((s) => [s, []])) as unknown as Record<Step, number[]> },
    ];
    const pulls: Record<string, number> = {};
    for (const rt of runtimes) {
      const t0 = process.hrtime.bigint();
      await rt.client.imageCall("PullImage", { image: { image } });
      pulls[rt.name] = Number(process.hrtime.bigint() - t0) / 1e6;
    }
    // One warm-up life each, not counted (first CNI call, first snapshot of the image).
    for (const rt of runtimes) {
      await podLife(rt, image, -1, join(work, "logs"));
      for (const s of STEPS) rt.times[s] = [];
    }
    // The floor of any call: Version does no work in either runtime (the transport, the server's
    // interceptors and logging), 50 calls each, taking turns.
    const versions: Record<string, number[]> = { berth: [], containerd: [] };
    for (let n = 0; n < 50; n++) {
      for (const rt of runtimes) {
        const t0 = process.hrtime.bigint();
        await rt.client.runtimeCall("Version", {});
        versions[rt.name]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    const idle: Record<string, { rss: number; anon: number }> = {};
    for (const rt of runtimes) idle[rt.name] = memKiB(rt.pid());
    for (let n = 0; n < opts.pods; n++) for (const rt of n % 2 ? [...runtimes].reverse() : runtimes) await podLife(rt, image, n, join(work, "logs"));
    const held: Record<string, { mem: { rss: number; anon: number }; monitorPss: number[]; execSync: number[] }> = {};
    for (const rt of runtimes) held[rt.name] = await holdPods(rt, image, opts.hold, join(work, "logs"));

    const [b, c] = runtimes as [Runtime, Runtime];
    console.log(`berth vs containerd 1.6 (Debian, runc 1.1.5), ${opts.pods} pod lives each, taking turns; client-side ms per CRI call (median / p90)\n`);
    const rows = [["step", "berth", "containerd", "berth × containerd"]];
    for (const s of STEPS) rows.push([s, `${median(b.times[s]).toFixed(1)} / ${p90(b.times[s]).toFixed(1)}`, `${median(c.times[s]).toFixed(1)} / ${p90(c.times[s]).toFixed(1)}`, (median(b.times[s]) / median(c.times[s])).toFixed(2)]);
    const cs = (rt: Runtime) => rt.times.CreateContainer.map((x, i) => x + rt.times.StartContainer[i]!);
    rows.push(["Create + Start", median(cs(b)).toFixed(1), median(cs(c)).toFixed(1), (median(cs(b)) / median(cs(c))).toFixed(2)]);
    const life = (rt: Runtime) => rt.times.RunPodSandbox.map((_, i) => STEPS.reduce((a, s) => a + rt.times[s][i]!, 0));
    rows.push(["whole life", median(life(b)).toFixed(1), median(life(c)).toFixed(1), (median(life(b)) / median(life(c))).toFixed(2)]);
    rows.push(["ExecSync `true` (RuntimeDefault seccomp)", `${median(held.berth!.execSync).toFixed(1)} / ${p90(held.berth!.execSync).toFixed(1)}`, `${median(held.containerd!.execSync).toFixed(1)} / ${p90(held.containerd!.execSync).toFixed(1)}`, (median(held.berth!.execSync) / median(held.containerd!.execSync)).toFixed(2)]);
    rows.push(["Version (an empty call: the floor)", `${median(versions.berth!).toFixed(1)} / ${p90(versions.berth!).toFixed(1)}`, `${median(versions.containerd!).toFixed(1)} / ${p90(versions.containerd!).toFixed(1)}`, (median(versions.berth!) / median(versions.containerd!)).toFixed(2)]);
    rows.push(["PullImage (cold, 1 layer)", pulls.berth!.toFixed(1), pulls.containerd!.toFixed(1), (pulls.berth! / pulls.containerd!).toFixed(2)]);
    console.log(table(rows));
    console.log("\nmemory (KiB)");
    const mem = [["what", "berth", "containerd"]];
    mem.push(["daemon RSS idle", String(idle.berth!.rss), String(idle.containerd!.rss)]);
    mem.push([`daemon RSS with ${opts.hold} pods`, String(held.berth!.mem.rss), String(held.containerd!.mem.rss)]);
    mem.push(["daemon anonymous RSS idle (no executable pages)", String(idle.berth!.anon), String(idle.containerd!.anon)]);
    mem.push([`daemon anonymous RSS with ${opts.hold} pods`, String(held.berth!.mem.anon), String(held.containerd!.mem.anon)]);
    mem.push(["monitor PSS per container (median)", String(median(held.berth!.monitorPss)), String(median(held.containerd!.monitorPss))]);
    mem.push(["monitors counted", String(held.berth!.monitorPss.length), String(held.containerd!.monitorPss.length)]);
    console.log(table(mem));
    const logs = berth.logs();
    console.log("\nwhere berth's CreateContainer goes: the daemon's steps from its \"container created\" log lines, median ms");
    console.log(
      table(
        daemonSteps(
          logs,
          "container created",
          [
            ["rootfsMs", "snapshot + overlay mount"],
            ["specMs", "OCI spec built and written"],
            ["runtimeCreateMs", "conmon + `berth runtime create` (until conmon reports the pid)"],
          ],
          b.times.CreateContainer,
        ),
      ),
    );
    console.log("\nwhere berth's RemoveContainer goes: the daemon's steps from its \"container removed\" log lines, median ms");
    console.log("(in the call: stop and the record; after it, in the background: the rest, as containerd's garbage collector does)");
    console.log(
      table(
        daemonSteps(
          logs,
          "container removed",
          [
            ["stopMs", "in the call: stop (nothing to do for an exited container)"],
            ["recordMs", "in the call: the record becomes a tombstone"],
            ["runtimeDeleteMs", "after: the runtime's delete (in-process)"],
            ["monitorFilesMs", "after: conmon's files and exit file"],
            ["rootfsMs", "after: unmount + writable layer removed"],
            ["filesMs", "after: the container's directory removed"],
          ],
          b.times.RemoveContainer,
        ),
      ),
    );
    console.log("\ngoals: each step ≤ containerd's median; create+start ≤ 1.0×; monitor ≤ 0.6 MiB PSS per container");
    const worst = STEPS.filter((s) => median(b.times[s]) > median(c.times[s]));
    console.log(`  steps slower than containerd: ${worst.length ? worst.join(", ") : "none"}`);
    console.log(`  create+start: ${(median(cs(b)) / median(cs(c))).toFixed(2)}× → ${median(cs(b)) <= median(cs(c)) ? "met" : "NOT met"}`);
    console.log(`  monitor PSS: ${(median(held.berth!.monitorPss) / 1024).toFixed(2)} MiB → ${median(held.berth!.monitorPss) <= 0.6 * 1024 ? "met" : "NOT met"}`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
