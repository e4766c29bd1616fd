// CRI RuntimeService over gRPC: each RPC is handed to the runtime layer's RuntimeService as it
// was decoded (the runtime speaks CRI's messages, runtime/api/). What the runtime does not
// offer answers UNIMPLEMENTED with the reason.
import type { RuntimeService } from "../runtime/api/runtime";
import { UnimplementedError } from "../runtime/errors";
import type { ServiceHandlers, StreamHandler, UnaryHandler } from "./server";

/** The URL-issuing half of Exec, Attach and PortForward (cri/streaming/server.ts). */
export interface StreamingRpcs {
  exec(req: unknown): Promise<unknown>;
  attach(req: unknown): Promise<unknown>;
  portForward(req: unknown): Promise<unknown>;
}

export function runtimeServiceHandlers(svc: RuntimeService, streaming?: StreamingRpcs): ServiceHandlers {
  const u = <T>(fn: (req: T) => Promise<unknown>): UnaryHandler => fn as unknown as UnaryHandler;
  const unary: Record<string, UnaryHandler> = {
    Version: u(svc.version.bind(svc)),
    Status: u(svc.status.bind(svc)),
    UpdateRuntimeConfig: u(svc.updateRuntimeConfig.bind(svc)),
    RuntimeConfig: u(svc.runtimeConfig.bind(svc)),
    RunPodSandbox: u(svc.runPodSandbox),
    StopPodSandbox: u(svc.stopPodSandbox),
    RemovePodSandbox: u(svc.removePodSandbox),
    PodSandboxStatus: u(svc.podSandboxStatus),
    ListPodSandbox: u(svc.listPodSandbox),
    CreateContainer: u(svc.createContainer),
    StartContainer: u(svc.startContainer),
    StopContainer: u(svc.stopContainer),
    RemoveContainer: u(svc.removeContainer),
    ListContainers: u(svc.listContainers),
    ContainerStatus: u(svc.containerStatus),
    UpdateContainerResources: u(svc.updateContainerResources),
    ReopenContainerLog: u(svc.reopenContainerLog),
    ExecSync: u(svc.execSync),
    ...(streaming
      ? { Exec: u(streaming.exec.bind(streaming)), Attach: u(streaming.attach.bind(streaming)), PortForward: u(streaming.portForward.bind(streaming)) }
      : {}),
    ContainerStats: u(svc.containerStats),
    ListContainerStats: u(svc.listContainerStats),
    PodSandboxStats: u(svc.podSandboxStats),
    ListPodSandboxStats: u(svc.listPodSandboxStats),
    CheckpointContainer: async () => {
      throw new UnimplementedError("CheckpointContainer: berth does not checkpoint containers (no CRIU integration)");
    },
  };
  const stream: Record<string, StreamHandler> = {
    GetContainerEvents: (_req, write, signal) =>
      new Promise<void>((resolve) => {
        svc.events.subscribe((e) => write(e), signal);
        signal.addEventListener("abort", () => resolve(), { once: true });
      }),
  };
  return { unary, stream };
}
