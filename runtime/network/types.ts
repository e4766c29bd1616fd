// The shapes runtime/network exchanges with the pod service, with CNI plugins and with its own
// files. The pod service (runtime/pods/types.ts) takes NamespacePinner, PodNetwork and
// PodNetworkRequest from here.

/** The namespaces a pod shares between its containers and that berth pins without a process. */
export type PinnableNamespace = "net" | "ipc" | "uts";

/** Bind-mounted namespace files, by kind; an absent kind is the host's. */
export type PinnedNamespaces = Partial<Record<PinnableNamespace, string>>;

/** One CRI PortMapping; hostPort 0 means "no host port" and is not given to CNI. */
export interface PortMapping {
  protocol: "tcp" | "udp" | "sctp";
  containerPort: number;
  hostPort: number;
  /** "" for every address of the host. */
  hostIp: string;
}

export interface PodNetworkRequest {
  /** The sandbox id: CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID. */
  podId: string;
  name: string;
  namespace: string;
  uid: string;
  /** The pinned network namespace file. */
  netns: string;
  portMappings: PortMapping[];
}

export interface PodNetworkResult {
  /** The pod's addresses without prefix length, IPv4 first (CRI's PodIP is the first). */
  ips: string[];
  interfaceName: string;
  /** A StoredAttachment: kept with the pod and handed back to tearDown, also after a restart. */
  result: unknown;
}

/** CRI's NetworkReady condition. */
export interface NetworkStatus {
  ready: boolean;
  reason: string;
  message: string;
}

/** berth's own network, written when the conf dir holds none. */
export interface DefaultNetworkOptions {
  bridge: string;
  /** IPv4 CIDR; the bridge takes its first host address. */
  subnet: string;
  /** host-local's lease files (its default, /var/lib/cni/networks, is outside berth's root). */
  ipamDataDir: string;
}

export type CniCommand = "ADD" | "DEL" | "CHECK";

/** A plugin configuration object of a network configuration list (CNI spec, section 1). */
export interface PluginConfig {
  type: string;
  capabilities?: Record<string, boolean>;
  ipam?: { type?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** A network configuration list as berth runs it: a single-plugin .conf becomes a list of one. */
export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  plugins: PluginConfig[];
  disableCheck?: boolean;
}

/** A network configuration list and the file it came from. */
export interface LoadedNetworkConfig extends NetworkConfigList {
  file: string;
}

/** Values the runtime offers to plugins that declare the matching capability (CONVENTIONS.md). */
export interface CapabilityArgs {
  portMappings?: Array<{ hostPort: number; containerPort: number; protocol: string; hostIP?: string }>;
}

/** An ADD result of CNI 0.3.x to 1.x (interfaces, ips) or 0.1/0.2 (ip4, ip6). */
export interface CniResult {
  cniVersion?: string;
  interfaces?: Array<{ name?: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ address?: string; gateway?: string; interface?: number; version?: string }>;
  routes?: unknown[];
  dns?: unknown;
  ip4?: { ip?: string };
  ip6?: { ip?: string };
}

/**
 * What DEL needs after a daemon restart, stored by the pod service as PodNetworkResult.result:
 * the network as it was at ADD (the spec wants DEL run with the configuration ADD used, and the
 * conf dir may have changed since), the capability arguments ADD was given (portmap's DEL finds
 * nothing to remove without them) and the final ADD result (DEL's prevResult).
 */
export interface StoredAttachment {
  network: string;
  cniVersion: string;
  plugins: PluginConfig[];
  ifName?: string;
  capabilityArgs?: CapabilityArgs;
  result: CniResult | undefined;
}

/** What the pod service needs of namespace pinning (runtime/network/namespaces.ts). */
export interface NamespacePinner {
  pin(podId: string, kinds: PinnableNamespace[], hostname?: string): PinnedNamespaces;
  unpin(pinned: PinnedNamespaces): void;
}

/** What the pod service needs of pod networking (runtime/network/cni.ts). */
export interface PodNetwork {
  status(): Promise<NetworkStatus>;
  setUp(req: PodNetworkRequest): Promise<PodNetworkResult>;
  /** `prev` is PodNetworkResult.result of the pod's setUp, if there was one. */
  tearDown(req: PodNetworkRequest, prev?: unknown): Promise<void>;
  /** CRI UpdateRuntimeConfig's pod CIDR. */
  setPodCidr(cidr: string): Promise<void>;
}
