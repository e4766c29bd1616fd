// ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats: CPU and memory from
// the cgroups (a pod's from its parent cgroup, which holds all of its containers), the writable
// layer's usage from the snapshot. usage_nano_cores needs two samples: the previous one is kept
// per cgroup, as cAdvisor keeps it, and reported from the second call on.
import { existsSync } from "node:fs";
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { newCgroupManager } from "../cgroups/detect";
import type { CgroupManager, CgroupStats } from "../cgroups/types";
import { InvalidArgumentError, NotFoundError } from "../errors";
import { openCgroupOf } from "./container-cgroup";
import { type PodContext, handlerFor } from "./context";
import { labelsMatch } from "./sandbox-status";
import type { ContainerRecord, SandboxRecord } from "./types";

const previous = new Map<string, { at: bigint; usageNs: number }>();

function u64(n: number | bigint): cri.UInt64Value {
  return { value: BigInt(Math.max(0, Math.round(Number(n)))).toString() };
}

async function cgroupStats(cg: CgroupManager): Promise<CgroupStats | undefined> {
  if (!Object.values(cg.location.dirs).some((d) => existsSync(d))) return undefined;
  return cg.stats().catch(() => undefined);
}

function cpuAndMemory(key: string, s: CgroupStats | undefined, at: bigint): { cpu: cri.CpuUsage; memory: cri.MemoryUsage } {
  const ts = at.toString();
  let nanoCores: cri.UInt64Value | null = null;
  if (s) {
    const prev = previous.get(key);
    if (prev && at > prev.at && s.cpu.usageNs >= prev.usageNs) nanoCores = u64((Number(s.cpu.usageNs - prev.usageNs) * 1e9) / Number(at - prev.at));
    previous.set(key, { at, usageNs: s.cpu.usageNs });
  }
  const limit = s?.memory.limit ?? null;
  return {
    cpu: { timestamp: ts, usageCoreNanoSeconds: u64(s?.cpu.usageNs ?? 0), usageNanoCores: nanoCores, psi: null },
    memory: {
      timestamp: ts,
      workingSetBytes: u64(s?.memory.workingSet ?? 0),
      availableBytes: limit === null ? null : u64(Math.max(0, limit - (s?.memory.workingSet ?? 0))),
      usageBytes: u64(s?.memory.usage ?? 0),
      rssBytes: u64(s?.memory.rss ?? 0),
      pageFaults: u64(s?.memory.pageFaults ?? 0),
      majorPageFaults: u64(s?.memory.majorPageFaults ?? 0),
      psi: null,
    },
  };
}

async function statsOf(ctx: PodContext, rec: ContainerRecord): Promise<cri.ContainerStats> {
  const at = BigInt(Date.now()) * 1_000_000n;
  const running = rec.phase === "running" || rec.phase === "created";
  const s = running ? await cgroupStats(openCgroupOf(handlerFor(ctx, rec.runtimeHandler), rec.id, rec.cgroupsPath)) : undefined;
  const usage = await ctx.snapshotter.usage(rec.snapshotKey).catch(() => ({ bytes: 0, inodes: 0 }));
  return {
    attributes: { id: rec.id, metadata: rec.config.metadata, labels: rec.config.labels, annotations: rec.config.annotations },
    ...cpuAndMemory(rec.id, s, at),
    writableLayer: { timestamp: at.toString(), fsId: { mountpoint: ctx.config.root }, usedBytes: u64(usage.bytes), inodesUsed: u64(usage.inodes) },
    swap: null,
    io: null,
  };
}

export async function containerStats(ctx: PodContext, req: CriRequest<cri.ContainerStatsRequest>): Promise<cri.ContainerStatsResponse> {
  if (!req.containerId) throw new InvalidArgumentError("ContainerStats: container_id is required");
  const rec = ctx.containers.resolve(req.containerId);
  if (!rec || rec.phase === "creating") throw new NotFoundError(`container "${req.containerId}" not found`);
  return { stats: await statsOf(ctx, rec) };
}

export async function listContainerStats(ctx: PodContext, req: CriRequest<cri.ListContainerStatsRequest>): Promise<cri.ListContainerStatsResponse> {
  const f = req.filter;
  const recs = ctx.containers
    .list()
    .filter((r) => r.phase === "running" || r.phase === "created")
    .filter((r) => !f?.id || r.id.startsWith(f.id))
    .filter((r) => !f?.podSandboxId || r.sandboxId.startsWith(f.podSandboxId))
    .filter((r) => labelsMatch(r.config.labels, f?.labelSelector as Record<string, string>));
  return { stats: await Promise.all(recs.map((r) => statsOf(ctx, r))) };
}

async function podStatsOf(ctx: PodContext, pod: SandboxRecord): Promise<cri.PodSandboxStats> {
  const at = BigInt(Date.now()) * 1_000_000n;
  const s = pod.phase === "ready" ? await cgroupStats(newCgroupManager(pod.cgroupParent, { root: "" })) : undefined;
  const containers = ctx.containers.list().filter((c) => c.sandboxId === pod.id && (c.phase === "running" || c.phase === "created"));
  return {
    attributes: { id: pod.id, metadata: pod.config.metadata, labels: pod.config.labels, annotations: pod.config.annotations },
    linux: {
      ...cpuAndMemory(`pod:${pod.id}`, s, at),
      network: null,
      process: { timestamp: at.toString(), processCount: u64(s?.pids.current ?? 0) },
      containers: await Promise.all(containers.map((c) => statsOf(ctx, c))),
      io: null,
    },
    windows: null,
  };
}

export async function podSandboxStats(ctx: PodContext, req: CriRequest<cri.PodSandboxStatsRequest>): Promise<cri.PodSandboxStatsResponse> {
  if (!req.podSandboxId) throw new InvalidArgumentError("PodSandboxStats: pod_sandbox_id is required");
  const pod = ctx.sandboxes.resolve(req.podSandboxId);
  if (!pod || pod.phase === "creating") throw new NotFoundError(`pod sandbox "${req.podSandboxId}" not found`);
  return { stats: await podStatsOf(ctx, pod) };
}

export async function listPodSandboxStats(ctx: PodContext, req: CriRequest<cri.ListPodSandboxStatsRequest>): Promise<cri.ListPodSandboxStatsResponse> {
  const f = req.filter;
  const pods = ctx.sandboxes
    .list()
    .filter((p) => p.phase === "ready")
    .filter((p) => !f?.id || p.id.startsWith(f.id))
    .filter((p) => labelsMatch(p.config.labels, f?.labelSelector as Record<string, string>));
  return { stats: await Promise.all(pods.map((p) => podStatsOf(ctx, p))) };
}

/** Forgets the CPU sample of a removed container or pod. */
export function forgetStats(id: string): void {
  previous.delete(id);
  previous.delete(`pod:${id}`);
}

/** Processes in each running container (pids.current of its cgroup), for berth's own metrics: CRI's ContainerStats has no process count. */
export async function containerProcessCounts(ctx: PodContext): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const rec of ctx.containers.list()) {
    if (rec.phase !== "running") continue;
    const s = await cgroupStats(openCgroupOf(handlerFor(ctx, rec.runtimeHandler), rec.id, rec.cgroupsPath)).catch(() => undefined);
    if (s) out.set(rec.id, s.pids.current);
  }
  return out;
}
