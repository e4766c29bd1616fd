// Berth's RuntimeService: each RPC is its own module (sandbox-*.ts, container-*.ts, stats.ts);
// this class only hands them the shared context, so the reconciler and the gRPC server call the
// same code.
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import type { EventSource, RuntimeService } from "../api/runtime";
import type { StreamingRuntime, TerminalSize } from "../api/streaming";
import { createContainer } from "./container-create";
import { execSync, reopenContainerLog, updateContainerResources } from "./container-exec";
import { startContainer } from "./container-start";
import { attachStream, checkAttach, checkExec, checkPod, dialPod, execStream } from "./container-stream";
import { containerStatus, listContainers } from "./container-status";
import { removeContainer, stopContainer } from "./container-stop";
import type { PodContext } from "./context";
import { notifyExit, recordExitIfAny } from "./exits";
import { type RecoveryReport, recover } from "./recover";
import { runPodSandbox } from "./sandbox-run";
import { listPodSandbox, podSandboxStatus } from "./sandbox-status";
import { removePodSandbox, stopPodSandbox } from "./sandbox-stop";
import { containerProcessCounts, containerStats, listContainerStats, listPodSandboxStats, podSandboxStats } from "./stats";

type Req<T> = CriRequest<T>;

export const BERTH_VERSION = "0.1.0";

/** How often running containers are checked for an exit the watch did not report. */
const EXIT_SWEEP_MS = 2000;

export class LocalRuntimeService implements RuntimeService, StreamingRuntime {
  readonly events: EventSource;
  private unwatch?: () => void;

  constructor(private readonly ctx: PodContext) {
    this.events = ctx.events;
  }

  /** Loads the records, reconciles them with what survived, and starts watching exits. */
  async start(): Promise<RecoveryReport> {
    const report = await recover(this.ctx);
    this.unwatch = this.ctx.monitor.watchExits((id) => {
      notifyExit(this.ctx, id);
      const rec = this.ctx.containers.get(id);
      if (!rec) return;
      this.ctx.locks
        .run(id, () => recordExitIfAny(this.ctx, rec))
        .catch((err: unknown) => this.ctx.log.error("cannot record a container's exit", { id: id.slice(0, 12), error: (err as Error).message }));
    });
    // The backstop of the watch: an exit a watch event missed, and one no exit file will ever
    // record (its conmon was killed: exitOf reports it lost once the process is gone too).
    // One check per container at a time: a long StopContainer holding its lock must not collect
    // a queue of them.
    const pending = new Set<string>();
    const sweep = setInterval(() => {
      for (const rec of this.ctx.containers.list()) {
        if (rec.phase !== "running" || pending.has(rec.id)) continue;
        pending.add(rec.id);
        this.ctx.locks
          .run(rec.id, () => recordExitIfAny(this.ctx, rec))
          .catch(() => {})
          .finally(() => pending.delete(rec.id));
      }
    }, EXIT_SWEEP_MS);
    sweep.unref();
    const unwatch = this.unwatch;
    this.unwatch = () => {
      clearInterval(sweep);
      unwatch?.();
    };
    return report;
  }

  /** Stops watching exits and waits for what requests left running (background.ts). */
  async stop(): Promise<void> {
    this.unwatch?.();
    await this.ctx.background.drain();
  }

  runPodSandbox = (req: Req<cri.RunPodSandboxRequest>) => runPodSandbox(this.ctx, req);
  stopPodSandbox = (req: Req<cri.StopPodSandboxRequest>) => stopPodSandbox(this.ctx, req);
  removePodSandbox = (req: Req<cri.RemovePodSandboxRequest>) => removePodSandbox(this.ctx, req);
  podSandboxStatus = (req: Req<cri.PodSandboxStatusRequest>) => podSandboxStatus(this.ctx, req);
  listPodSandbox = (req: Req<cri.ListPodSandboxRequest>) => listPodSandbox(this.ctx, req);

  createContainer = (req: Req<cri.CreateContainerRequest>) => createContainer(this.ctx, req);
  startContainer = (req: Req<cri.StartContainerRequest>) => startContainer(this.ctx, req);
  stopContainer = (req: Req<cri.StopContainerRequest>) => stopContainer(this.ctx, req);
  removeContainer = (req: Req<cri.RemoveContainerRequest>) => removeContainer(this.ctx, req);
  listContainers = (req: Req<cri.ListContainersRequest>) => listContainers(this.ctx, req);
  containerStatus = (req: Req<cri.ContainerStatusRequest>) => containerStatus(this.ctx, req);
  updateContainerResources = (req: Req<cri.UpdateContainerResourcesRequest>) => updateContainerResources(this.ctx, req);
  reopenContainerLog = (req: Req<cri.ReopenContainerLogRequest>) => reopenContainerLog(this.ctx, req);
  execSync = (req: Req<cri.ExecSyncRequest>) => execSync(this.ctx, req);

  // Streaming (CRI Exec, Attach, PortForward through cri/streaming's server).
  checkExec = (containerId: string) => checkExec(this.ctx, containerId);
  checkAttach = (containerId: string) => checkAttach(this.ctx, containerId);
  checkPod = (podSandboxId: string) => checkPod(this.ctx, podSandboxId);
  exec = (containerId: string, cmd: string[], opts: { tty: boolean; stdin: boolean; size?: TerminalSize }) => execStream(this.ctx, containerId, cmd, opts);
  attach = (containerId: string) => attachStream(this.ctx, containerId);
  dialPod = (podSandboxId: string, port: number) => dialPod(this.ctx, podSandboxId, port);

  containerStats = (req: Req<cri.ContainerStatsRequest>) => containerStats(this.ctx, req);
  listContainerStats = (req: Req<cri.ListContainerStatsRequest>) => listContainerStats(this.ctx, req);
  podSandboxStats = (req: Req<cri.PodSandboxStatsRequest>) => podSandboxStats(this.ctx, req);
  listPodSandboxStats = (req: Req<cri.ListPodSandboxStatsRequest>) => listPodSandboxStats(this.ctx, req);
  /** Processes per running container id (metrics). */
  containerProcessCounts = () => containerProcessCounts(this.ctx);

  async version(): Promise<cri.VersionResponse> {
    // The CRI "version" field is the kubelet API version, 0.1.0 for every runtime.
    return { version: "0.1.0", runtimeName: "berth", runtimeVersion: BERTH_VERSION, runtimeApiVersion: "v1" };
  }

  async status(req: Req<cri.StatusRequest>): Promise<cri.StatusResponse> {
    const net = await this.ctx.network.status();
    const info: Record<string, string> = {};
    if (req.verbose) {
      info.config = JSON.stringify({ root: this.ctx.config.root, state: this.ctx.config.state, cgroupRoot: this.ctx.config.cgroupRoot, handlers: Object.keys(this.ctx.config.handlers) });
    }
    return {
      status: {
        conditions: [
          { type: "RuntimeReady", status: true, reason: "", message: "" },
          { type: "NetworkReady", status: net.ready, reason: net.ready ? "" : net.reason, message: net.ready ? "" : net.message },
        ],
      },
      info,
      runtimeHandlers: Object.keys(this.ctx.config.handlers).map((name) => ({ name, features: { recursiveReadOnlyMounts: false, userNamespaces: false } })),
      features: { supplementalGroupsPolicy: true, userNamespacesHostNetwork: false },
    };
  }

  async updateRuntimeConfig(req: Req<cri.UpdateRuntimeConfigRequest>): Promise<cri.UpdateRuntimeConfigResponse> {
    const cidr = req.runtimeConfig?.networkConfig?.podCidr;
    if (cidr) await this.ctx.network.setPodCidr(cidr);
    return {};
  }

  async runtimeConfig(): Promise<cri.RuntimeConfigResponse> {
    return { linux: { cgroupDriver: "CGROUPFS" } };
  }
}
