// ContainerStatus, ListContainers, and the container snapshot that events carry.
import { readFile } from "node:fs/promises";
import { constants } from "node:os";
import { join } from "node:path";
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { InvalidArgumentError, NotFoundError } from "../errors";
import type { PodContext } from "./context";
import { labelsMatch } from "./sandbox-status";
import { nowNanos } from "./time";
import type { ContainerRecord } from "./types";

export function containerState(rec: ContainerRecord): cri.ContainerState {
  switch (rec.phase) {
    case "created":
      return "CONTAINER_CREATED";
    case "running":
      return "CONTAINER_RUNNING";
    case "exited":
      return "CONTAINER_EXITED";
    default:
      return "CONTAINER_UNKNOWN";
  }
}

function signalName(n: number): cri.Signal {
  const entry = Object.entries(constants.signals).find(([, v]) => v === n);
  return (entry?.[0] ?? "RUNTIME_DEFAULT") as cri.Signal;
}

export function toContainerStatus(rec: ContainerRecord): cri.ContainerStatus {
  return {
    id: rec.id,
    metadata: rec.config.metadata,
    state: containerState(rec),
    createdAt: rec.createdAt,
    startedAt: rec.startedAt ?? "0",
    finishedAt: rec.finishedAt ?? "0",
    exitCode: rec.exitCode ?? 0,
    image: { image: rec.image.name, annotations: {}, userSpecifiedImage: rec.config.image?.image ?? "", runtimeHandler: "", imageRef: rec.image.ref },
    imageRef: rec.image.ref,
    reason: rec.reason ?? "",
    message: rec.message ?? "",
    labels: rec.config.labels,
    annotations: rec.config.annotations,
    mounts: rec.mounts,
    logPath: rec.logPath,
    resources: rec.resources ? { linux: rec.resources, windows: null } : null,
    imageId: rec.image.id,
    user: null,
    stopSignal: signalName(rec.stopSignal),
  };
}

export function containerEvent(ctx: PodContext, rec: ContainerRecord, type: cri.ContainerEventType): cri.ContainerEventResponse {
  const pod = ctx.sandboxes.get(rec.sandboxId);
  return {
    containerId: rec.id,
    containerEventType: type,
    createdAt: nowNanos(),
    podSandboxStatus: pod
      ? {
          id: pod.id,
          metadata: pod.config.metadata,
          state: pod.phase === "ready" ? "SANDBOX_READY" : "SANDBOX_NOTREADY",
          createdAt: pod.createdAt,
          network: { ip: pod.network?.ips[0] ?? "", additionalIps: (pod.network?.ips.slice(1) ?? []).map((ip) => ({ ip })) },
          linux: null,
          labels: pod.config.labels,
          annotations: pod.config.annotations,
          runtimeHandler: pod.runtimeHandler,
        }
      : null,
    containersStatuses: ctx.containers
      .list()
      .filter((c) => c.sandboxId === rec.sandboxId && c.phase !== "creating")
      .map(toContainerStatus),
  };
}

export async function containerStatus(ctx: PodContext, req: CriRequest<cri.ContainerStatusRequest>): Promise<cri.ContainerStatusResponse> {
  if (!req.containerId) throw new InvalidArgumentError("ContainerStatus: container_id is required");
  const rec = ctx.containers.resolve(req.containerId);
  if (!rec || rec.phase === "creating") throw new NotFoundError(`container "${req.containerId}" not found`);
  const info: Record<string, string> = {};
  if (req.verbose) {
    info.info = JSON.stringify({
      sandboxID: rec.sandboxId,
      pid: rec.phase === "running" ? rec.pid : 0,
      conmonPid: rec.conmonPid,
      runtimeHandler: rec.runtimeHandler,
      bundle: rec.bundle,
      rootfs: rec.rootfs,
      snapshotKey: rec.snapshotKey,
      cgroupsPath: rec.cgroupsPath,
      config: rec.config,
      // What the runtime was given, as containerd's verbose info shows it (crictl inspect).
      runtimeSpec: await readFile(join(rec.bundle, "config.json"), "utf8").then(
        (text) => JSON.parse(text) as unknown,
        () => undefined,
      ),
    });
  }
  return { status: toContainerStatus(rec), info };
}

export async function listContainers(ctx: PodContext, req: CriRequest<cri.ListContainersRequest>): Promise<cri.ListContainersResponse> {
  const f = req.filter;
  const containers = ctx.containers
    .list()
    .filter((r) => r.phase !== "creating")
    .filter((r) => !f?.id || r.id.startsWith(f.id))
    .filter((r) => !f?.podSandboxId || r.sandboxId.startsWith(f.podSandboxId))
    .filter((r) => !f?.state || containerState(r) === f.state.state)
    .filter((r) => labelsMatch(r.config.labels, f?.labelSelector as Record<string, string>))
    .sort((a, b) => (BigInt(a.createdAt) < BigInt(b.createdAt) ? -1 : 1))
    .map(
      (r): cri.Container => ({
        id: r.id,
        podSandboxId: r.sandboxId,
        metadata: r.config.metadata,
        image: { image: r.image.name, annotations: {}, userSpecifiedImage: "", runtimeHandler: "", imageRef: r.image.ref },
        imageRef: r.image.ref,
        state: containerState(r),
        createdAt: r.createdAt,
        labels: r.config.labels,
        annotations: r.config.annotations,
        imageId: r.image.id,
      }),
    );
  return { containers };
}
