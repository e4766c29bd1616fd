// Helpers for tests that run pods through a real daemon: CRI configs as kubelet would send
// them, waiting for a container state, reading a CRI log file, and the safety net that leaves the
// machine clean when a test fails half-way (pods removed through CRI, then any mount, process or
// cgroup still below the test's directories removed by path and PID).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type * as cri from "../../runtime/api/cri-v1";
import type { CriRequest } from "../../runtime/api/cri-v1";
import type { CriClient } from "../../cri/client";
import { parseCriLogLine } from "../../runtime/monitor/cri-log-reader";
import { type DaemonOptions, startDaemon, type TestDaemon } from "./daemon";

let seq = 0;

export function podConfig(name: string, extra: CriRequest<cri.PodSandboxConfig> = {}): CriRequest<cri.PodSandboxConfig> {
  return {
    metadata: { name, namespace: "berth-test", uid: `uid-${process.pid}-${++seq}`, attempt: 0 },
    hostname: name,
    labels: { "berth.test": "1", app: name },
    ...extra,
  };
}

export function containerConfig(name: string, image: string, command: string[], extra: CriRequest<cri.ContainerConfig> = {}): CriRequest<cri.ContainerConfig> {
  return { metadata: { name, attempt: 0 }, image: { image }, command, logPath: `${name}.log`, ...extra };
}

export async function runPod(client: CriClient, config: CriRequest<cri.PodSandboxConfig>): Promise<string> {
  const r = await client.runtimeCall<cri.RunPodSandboxResponse>("RunPodSandbox", { config });
  return r.podSandboxId;
}

/** Create + start; resolves with the container id. */
export async function runContainer(client: CriClient, podId: string, pod: CriRequest<cri.PodSandboxConfig>, config: CriRequest<cri.ContainerConfig>): Promise<string> {
  const { containerId } = await client.runtimeCall<cri.CreateContainerResponse>("CreateContainer", { podSandboxId: podId, config, sandboxConfig: pod });
  await client.runtimeCall("StartContainer", { containerId });
  return containerId;
}

export async function status(client: CriClient, id: string): Promise<cri.ContainerStatus> {
  return (await client.runtimeCall<cri.ContainerStatusResponse>("ContainerStatus", { containerId: id })).status!;
}

export async function waitForState(client: CriClient, id: string, state: cri.ContainerState, ms = 15_000): Promise<cri.ContainerStatus> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await status(client, id);
    if (s.state === state) return s;
    if (Date.now() > deadline) throw new Error(`container ${id.slice(0, 12)} is ${s.state}, not ${state}, after ${ms} ms`);
    await sleep(50);
  }
}

export interface LogLine {
  stream: "stdout" | "stderr";
  tag: "F" | "P";
  content: string;
}

export function readCriLog(path: string): LogLine[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const r = parseCriLogLine(line);
      if (!r) throw new Error(`not a CRI log line: ${JSON.stringify(line)}`);
      return { stream: r.stream, tag: r.partial ? "P" : "F", content: r.content };
    });
}

/**
 * Stops a daemon that runs a reconciler (it would put back what is removed), then removes every
 * pod through a plain daemon started on the same directories with `opts`.
 */
export async function stopAndRemovePods(daemon: TestDaemon, opts: DaemonOptions): Promise<void> {
  await daemon.stop();
  const cleaner = await startDaemon(opts);
  try {
    await removeAllPods(cleaner.client).catch(() => {});
  } finally {
    await cleaner.stop();
  }
}

/** Removes every pod through CRI (which stops and removes their containers). */
export async function removeAllPods(client: CriClient): Promise<void> {
  const { items } = await client.runtimeCall<cri.ListPodSandboxResponse>("ListPodSandbox", {});
  for (const p of items) await client.runtimeCall("RemovePodSandbox", { podSandboxId: p.id });
}

/** Mount points at or below `dir`, deepest first. */
export function mountsBelow(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** PIDs of processes whose command line mentions `dir` (conmon and containers of a test's daemon). */
export function processesBelow(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "utf8").includes(dir)) out.push(Number(e));
    } catch {}
  }
  return out;
}

/** The last resort after a failed test: kill by PID, unmount by path, remove cgroup dirs bottom-up. */
export async function forceClean(dir: string, cgroupDirs: string[] = []): Promise<string[]> {
  const done: string[] = [];
  for (const pid of processesBelow(dir)) {
    try {
      process.kill(pid, "SIGKILL");
      done.push(`killed ${pid}`);
    } catch {}
  }
  if (done.length) await sleep(200);
  for (const m of mountsBelow(dir)) {
    try {
      execFileSync("umount", ["-l", m]);
      done.push(`unmounted ${m}`);
    } catch {}
  }
  for (const d of cgroupDirs) done.push(...removeCgroupTree(d));
  return done;
}

function removeCgroupTree(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) out.push(...removeCgroupTree(join(dir, e)));
  try {
    rmdirSync(dir);
    out.push(`removed cgroup ${dir}`);
  } catch {}
  return out;
}
