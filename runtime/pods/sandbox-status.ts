// PodSandboxStatus and ListPodSandbox.
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { InvalidArgumentError, NotFoundError } from "../errors";
import type { PodContext } from "./context";
import { namespaceMode } from "./sandbox-run";
import type { SandboxRecord } from "./types";

export function sandboxState(rec: SandboxRecord): cri.PodSandboxState {
  return rec.phase === "ready" ? "SANDBOX_READY" : "SANDBOX_NOTREADY";
}

export function labelsMatch(labels: Record<string, string>, selector: Record<string, string | null | undefined> | null | undefined): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === (v ?? ""));
}

function namespaceOptions(rec: SandboxRecord): cri.NamespaceOption {
  const m = namespaceMode(rec.config);
  return { network: m.network as cri.NamespaceMode, pid: m.pid as cri.NamespaceMode, ipc: m.ipc as cri.NamespaceMode, targetId: "", usernsOptions: null };
}

export async function podSandboxStatus(ctx: PodContext, req: CriRequest<cri.PodSandboxStatusRequest>): Promise<cri.PodSandboxStatusResponse> {
  if (!req.podSandboxId) throw new InvalidArgumentError("PodSandboxStatus: pod_sandbox_id is required");
  const rec = ctx.sandboxes.resolve(req.podSandboxId);
  if (!rec || rec.phase === "creating") throw new NotFoundError(`pod sandbox "${req.podSandboxId}" not found`);
  const [ip = "", ...more] = rec.network && !rec.networkTornDown ? rec.network.ips : [];
  const status: cri.PodSandboxStatus = {
    id: rec.id,
    metadata: rec.config.metadata,
    state: sandboxState(rec),
    createdAt: rec.createdAt,
    network: { ip, additionalIps: more.map((x) => ({ ip: x })) },
    linux: { namespaces: { options: namespaceOptions(rec) } },
    labels: rec.config.labels,
    annotations: rec.config.annotations,
    runtimeHandler: rec.runtimeHandler,
  };
  const info: Record<string, string> = {};
  if (req.verbose) {
    info.info = JSON.stringify({
      pid: 0,
      // No pause process: the pod is its pinned namespaces (DESIGN.md, decision 4).
      namespaces: rec.namespaces,
      pidHolder: rec.pidHolder,
      files: rec.files,
      cgroupParent: rec.cgroupParent,
      runtimeHandler: rec.runtimeHandler,
      cniResult: rec.network?.result,
      config: rec.config,
    });
  }
  const containersStatuses: cri.ContainerStatus[] = [];
  return { status, info, containersStatuses, timestamp: "0" };
}

export async function listPodSandbox(ctx: PodContext, req: CriRequest<cri.ListPodSandboxRequest>): Promise<cri.ListPodSandboxResponse> {
  const f = req.filter;
  const items = ctx.sandboxes
    .list()
    .filter((r) => r.phase !== "creating")
    .filter((r) => !f?.id || r.id.startsWith(f.id))
    .filter((r) => !f?.state || sandboxState(r) === f.state.state)
    .filter((r) => labelsMatch(r.config.labels, f?.labelSelector as Record<string, string>))
    .sort((a, b) => (BigInt(a.createdAt) < BigInt(b.createdAt) ? -1 : 1))
    .map(
      (r): cri.PodSandbox => ({
        id: r.id,
        metadata: r.config.metadata,
        state: sandboxState(r),
        createdAt: r.createdAt,
        labels: r.config.labels,
        annotations: r.config.annotations,
        runtimeHandler: r.runtimeHandler,
      }),
    );
  return { items };
}
