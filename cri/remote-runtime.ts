// RuntimeService over a CRI endpoint (berth's own socket, containerd's, CRI-O's): the
// reconciler's remote mode (DESIGN.md decision 1). Each method is the RPC of the same name; the
// messages are CRI's on both sides, so nothing is translated.
import type { RuntimeService } from "../runtime/api/runtime";
import type { ReconcilerBackend } from "../reconciler/types";
import type { CriClient } from "./client";

type AnyFn = (req?: object) => Promise<never>;

const RPCS = {
  version: "Version",
  status: "Status",
  updateRuntimeConfig: "UpdateRuntimeConfig",
  runtimeConfig: "RuntimeConfig",
  runPodSandbox: "RunPodSandbox",
  stopPodSandbox: "StopPodSandbox",
  removePodSandbox: "RemovePodSandbox",
  podSandboxStatus: "PodSandboxStatus",
  listPodSandbox: "ListPodSandbox",
  createContainer: "CreateContainer",
  startContainer: "StartContainer",
  stopContainer: "StopContainer",
  removeContainer: "RemoveContainer",
  listContainers: "ListContainers",
  containerStatus: "ContainerStatus",
  updateContainerResources: "UpdateContainerResources",
  reopenContainerLog: "ReopenContainerLog",
  execSync: "ExecSync",
  containerStats: "ContainerStats",
  listContainerStats: "ListContainerStats",
  podSandboxStats: "PodSandboxStats",
  listPodSandboxStats: "ListPodSandboxStats",
} as const;

export function remoteRuntime(client: CriClient): RuntimeService {
  const svc: Record<string, unknown> = {};
  for (const [method, rpc] of Object.entries(RPCS)) {
    // ExecSync may run as long as its own timeout: give the call that much and a margin.
    svc[method] = ((req: { timeout?: string | number } = {}) =>
      client.runtimeCall(rpc, req, rpc === "ExecSync" && Number(req.timeout) > 0 ? Number(req.timeout) * 1000 + 5000 : undefined)) as AnyFn;
  }
  svc.events = {
    subscribe(listener: (e: never) => void, signal: AbortSignal) {
      const call = client.runtimeStream("GetContainerEvents", {});
      signal.addEventListener("abort", () => call.cancel(), { once: true });
      (async () => {
        try {
          for await (const e of call) listener(e as never);
        } catch {
          // A cancelled or broken stream ends the subscription; the reconciler's resync covers the gap.
        }
      })();
    },
  };
  return svc as unknown as RuntimeService;
}

export function remoteBackend(client: CriClient): ReconcilerBackend {
  return {
    runtime: remoteRuntime(client),
    describe: client.endpoint,
    images: {
      present: async (image) => {
        const res = await client.imageCall<{ image: unknown }>("ImageStatus", { image: { image } });
        return !!res.image;
      },
      // CRI's PullImage has no progress; the pull is reported as running until it ends.
      pull: async (image) => {
        await client.imageCall("PullImage", { image: { image } });
      },
    },
  };
}
