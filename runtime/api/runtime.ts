// The runtime layer's interface with CRI semantics (DESIGN.md, decision 1): pods and containers
// as kubelet sees them. One implementation runs them here (runtime/pods/service.ts); cri/ serves
// it over gRPC, the reconciler calls it in-process, and a CRI client implements it too, so the
// reconciler can drive containerd or CRI-O. Messages are CRI v1's (runtime/api/cri-v1.ts): the
// in-process caller builds the same requests a gRPC client sends, and nothing is translated twice.
import type * as cri from "./cri-v1";

type Req<T> = cri.CriRequest<T>;

export interface PodSandboxService {
  runPodSandbox(req: Req<cri.RunPodSandboxRequest>): Promise<cri.RunPodSandboxResponse>;
  stopPodSandbox(req: Req<cri.StopPodSandboxRequest>): Promise<cri.StopPodSandboxResponse>;
  removePodSandbox(req: Req<cri.RemovePodSandboxRequest>): Promise<cri.RemovePodSandboxResponse>;
  podSandboxStatus(req: Req<cri.PodSandboxStatusRequest>): Promise<cri.PodSandboxStatusResponse>;
  listPodSandbox(req: Req<cri.ListPodSandboxRequest>): Promise<cri.ListPodSandboxResponse>;
}

export interface ContainerService {
  createContainer(req: Req<cri.CreateContainerRequest>): Promise<cri.CreateContainerResponse>;
  startContainer(req: Req<cri.StartContainerRequest>): Promise<cri.StartContainerResponse>;
  stopContainer(req: Req<cri.StopContainerRequest>): Promise<cri.StopContainerResponse>;
  removeContainer(req: Req<cri.RemoveContainerRequest>): Promise<cri.RemoveContainerResponse>;
  listContainers(req: Req<cri.ListContainersRequest>): Promise<cri.ListContainersResponse>;
  containerStatus(req: Req<cri.ContainerStatusRequest>): Promise<cri.ContainerStatusResponse>;
  updateContainerResources(req: Req<cri.UpdateContainerResourcesRequest>): Promise<cri.UpdateContainerResourcesResponse>;
  reopenContainerLog(req: Req<cri.ReopenContainerLogRequest>): Promise<cri.ReopenContainerLogResponse>;
  execSync(req: Req<cri.ExecSyncRequest>): Promise<cri.ExecSyncResponse>;
}

export interface StatsService {
  containerStats(req: Req<cri.ContainerStatsRequest>): Promise<cri.ContainerStatsResponse>;
  listContainerStats(req: Req<cri.ListContainerStatsRequest>): Promise<cri.ListContainerStatsResponse>;
  podSandboxStats(req: Req<cri.PodSandboxStatsRequest>): Promise<cri.PodSandboxStatsResponse>;
  listPodSandboxStats(req: Req<cri.ListPodSandboxStatsRequest>): Promise<cri.ListPodSandboxStatsResponse>;
}

export interface RuntimeStatusService {
  version(req: Req<cri.VersionRequest>): Promise<cri.VersionResponse>;
  status(req: Req<cri.StatusRequest>): Promise<cri.StatusResponse>;
  updateRuntimeConfig(req: Req<cri.UpdateRuntimeConfigRequest>): Promise<cri.UpdateRuntimeConfigResponse>;
  runtimeConfig(req: Req<cri.RuntimeConfigRequest>): Promise<cri.RuntimeConfigResponse>;
}

/** Container lifecycle events, as GetContainerEvents streams them. */
export interface EventSource {
  /** Calls `listener` for every event until `signal` aborts. */
  subscribe(listener: (event: cri.ContainerEventResponse) => void, signal: AbortSignal): void;
}

export interface RuntimeService extends PodSandboxService, ContainerService, StatsService, RuntimeStatusService {
  events: EventSource;
}
