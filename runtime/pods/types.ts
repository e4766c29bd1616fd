// What the pod service keeps about pods and containers, and the collaborators it drives. The
// records are the truth on disk (DESIGN.md, decision 6): one JSON file per object, written
// atomically, read back after a crash. CRI messages are kept as kubelet sent them, so status
// answers and the reconciler's hashes see exactly what was asked for.
import type * as cri from "../api/cri-v1";

/**
 * "creating": written before anything is made, so a crash mid-way leaves a record that recovery
 * recognises as half-made and undoes. "ready"/"notready" are CRI's sandbox states.
 */
export type SandboxPhase = "creating" | "ready" | "notready";

export interface SandboxRecord {
  id: string;
  /** CRI's unique key: name_namespace_uid_attempt. */
  name: string;
  config: cri.PodSandboxConfig;
  runtimeHandler: string;
  phase: SandboxPhase;
  /** Nanoseconds since the epoch, as a decimal string (CRI's int64). */
  createdAt: string;
  /** The pod's hostname (its UTS namespace's, or the host's for a host-network pod). */
  hostname: string;
  /** Pinned namespace files; absent kinds are the host's. */
  namespaces: { net?: string; ipc?: string; uts?: string };
  /** The process that keeps a pod-wide PID namespace (pid mode POD). */
  pidHolder?: { pid: number; startTime: string; ns: string };
  /** Per-pod files bind-mounted into its containers. */
  files: { dir: string; resolvConf: string; hosts: string; hostname: string; shm?: string };
  /** The pod's cgroup (relative to berth's own, or absolute), and whether berth made it. */
  cgroupParent: string;
  ownsCgroup: boolean;
  network?: { ips: string[]; interfaceName: string; result: unknown };
  /** Set once StopPodSandbox tore the network down (so a second stop, or one after a restart, does not repeat it). */
  networkTornDown?: boolean;
}

export type ContainerPhase = "creating" | "created" | "running" | "exited";

export interface ContainerRecord {
  id: string;
  /** CRI's unique key: name_podname_podnamespace_poduid_attempt. */
  name: string;
  sandboxId: string;
  config: cri.ContainerConfig;
  runtimeHandler: string;
  phase: ContainerPhase;
  image: { id: string; name: string; ref: string; user?: string };
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  reason?: string;
  message?: string;
  pid?: number;
  conmonPid?: number;
  /** Absolute host path of the CRI log, or "" when kubelet gave none. */
  logPath: string;
  bundle: string;
  rootfs: string;
  snapshotKey: string;
  cgroupsPath: string;
  stopSignal: number;
  /** Mounts as the container sees them, for ContainerStatus. */
  mounts: cri.Mount[];
  resources?: cri.LinuxContainerResources;
}

/** One OCI runtime, by CRI runtime_handler name. */
export interface RuntimeHandler {
  name: string;
  path: string;
  /** Global flags before the command (e.g. --root). */
  args: string[];
  /** The runtime's state root, for in-process start/state of berth's own runtime. */
  root: string;
  /** True for berth's own runtime: start, state and kill run in-process (no Node boot). */
  inProcess: boolean;
}

// The pod service's view of pod networking is the network layer's own interface (runtime/network/types.ts).
export type { NamespacePinner, PodNetwork, PodNetworkRequest } from "../network/types";
