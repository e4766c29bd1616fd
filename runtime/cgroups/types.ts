// The cgroup layer's contract: the OCI resources it applies, the stats it reads, the host layout it
// finds, and the manager that the runtime (create, exec, update, pause, kill, delete) and the CRI
// stats calls drive. Two drivers implement CgroupManager: v2.ts (unified) and v1.ts (one directory
// per controller hierarchy, as on hybrid hosts).

// ---------------------------------------------------------------- OCI runtime-spec resources
// From runtime-spec v1.3.0 config-linux ("linux.resources"). Field names and meanings as the spec
// writes them; numbers are JSON numbers (int64/uint64 in the schema).

/** One `linux.resources.devices` entry. Absent major/minor mean "any" (the "*" of devices.allow). */
export interface LinuxDeviceCgroup {
  allow: boolean;
  /** "a" (all), "c" or "b"; absent means "a". The schema allows any string: deviceRuleV1 checks. */
  type?: "a" | "b" | "c";
  major?: number;
  minor?: number;
  /** Any of "r", "w", "m"; absent means "rwm". */
  access?: string;
}

export interface LinuxMemory {
  /** Bytes; -1 means unlimited. */
  limit?: number;
  /** Soft limit in bytes (v1 memory.soft_limit_in_bytes, v2 memory.low). */
  reservation?: number;
  /** Memory plus swap, in bytes, as v1 counts it; -1 means unlimited. */
  swap?: number;
  /** Deprecated by the spec; ignored with a warning, as runc does. */
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
  /** Refuse a new limit below current usage (runc's MemoryCheckBeforeUpdate). */
  checkBeforeUpdate?: boolean;
}

export interface LinuxCPU {
  /** v1 cpu.shares; converted to v2 cpu.weight with runc's formula. */
  shares?: number;
  /** Microseconds per period; -1 means unlimited. */
  quota?: number;
  /** Microseconds that may be carried over periods (cpu.cfs_burst_us / cpu.max.burst). */
  burst?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  cpus?: string;
  mems?: string;
  /** 1 puts the group in SCHED_IDLE (cpu.idle). */
  idle?: number;
}

export interface LinuxPids {
  /** Positive: the limit; negative: unlimited ("max"); 0: left as it is (runc's reading). */
  limit: number;
}

export interface LinuxWeightDevice {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}

export interface LinuxThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

export interface LinuxBlockIO {
  /** 10-1000 (v1 blkio weight); converted to v2 io.weight when BFQ's io.bfq.weight is absent. */
  weight?: number;
  leafWeight?: number;
  weightDevice?: LinuxWeightDevice[];
  throttleReadBpsDevice?: LinuxThrottleDevice[];
  throttleWriteBpsDevice?: LinuxThrottleDevice[];
  throttleReadIOPSDevice?: LinuxThrottleDevice[];
  throttleWriteIOPSDevice?: LinuxThrottleDevice[];
}

export interface LinuxHugepageLimit {
  /** "2MB", "1GB": the size as hugetlb.<size>.* files spell it. */
  pageSize: string;
  limit: number;
}

export interface LinuxNetwork {
  classID?: number;
  priorities?: Array<{ name: string; priority: number }>;
}

export interface LinuxRdma {
  hcaHandles?: number;
  hcaObjects?: number;
}

export interface LinuxResources {
  devices?: LinuxDeviceCgroup[];
  memory?: LinuxMemory;
  cpu?: LinuxCPU;
  pids?: LinuxPids;
  blockIO?: LinuxBlockIO;
  hugepageLimits?: LinuxHugepageLimit[];
  network?: LinuxNetwork;
  rdma?: Record<string, LinuxRdma>;
  /** cgroup v2 file name → value, written as given (one write per line). Refused on v1. */
  unified?: Record<string, string>;
}

// ---------------------------------------------------------------- stats

export interface CgroupCpuStats {
  /** Total CPU time of every task in the cgroup, nanoseconds. */
  usageNs: number;
  userNs: number;
  systemNs: number;
  /** CFS bandwidth periods that elapsed while the group had runnable tasks. */
  periods: number;
  /** Periods in which the group ran out of quota. */
  throttledPeriods: number;
  throttledTimeNs: number;
}

export interface CgroupMemoryStats {
  /** Bytes charged (v1 memory.usage_in_bytes, v2 memory.current), page cache included. */
  usage: number;
  /** usage - inactive_file, at least 0: what kubelet and cAdvisor call the working set. */
  workingSet: number;
  /** Anonymous memory (v1 total_rss, v2 anon). */
  rss: number;
  /** Page cache (v1 total_cache, v2 file). */
  cache: number;
  inactiveFile: number;
  /** The hard limit in bytes; null when unlimited. */
  limit: number | null;
  /** Processes the kernel's OOM killer ended in this cgroup (v1 oom_control oom_kill, v2 memory.events oom_kill). */
  oomKills: number;
  pageFaults: number;
  majorPageFaults: number;
}

export interface CgroupPidsStats {
  current: number;
  /** null when unlimited. */
  limit: number | null;
}

export interface CgroupIoStats {
  /** Bytes read and written by the cgroup's tasks, summed over devices. */
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

export interface CgroupStats {
  cpu: CgroupCpuStats;
  memory: CgroupMemoryStats;
  pids: CgroupPidsStats;
  io: CgroupIoStats;
}

// ---------------------------------------------------------------- host layout

/** One mounted cgroup hierarchy as seen from the caller. */
export interface CgroupHierarchy {
  /** Controllers bound to it ("cpu", "cpuacct", "name=systemd"); empty for the v2 hierarchy. */
  controllers: string[];
  mountpoint: string;
  /** The mount's root inside the hierarchy: "/" unless a sub-tree is mounted (containers, cgroup namespaces). */
  root: string;
  /** The caller's own cgroup in this hierarchy, from /proc/self/cgroup. */
  own: string;
}

/**
 * unified: only cgroup v2 (every controller there). hybrid: controllers on v1 hierarchies plus a
 * v2 hierarchy (systemd's /sys/fs/cgroup/unified, usually with no controllers). legacy: v1 only.
 */
export type CgroupMode = "unified" | "hybrid" | "legacy";

export interface CgroupLayout {
  mode: CgroupMode;
  /** The v2 hierarchy, when one is mounted. */
  unified?: CgroupHierarchy;
  /** v1 hierarchies keyed by each controller they carry (co-mounted controllers share one entry). */
  v1: Record<string, CgroupHierarchy>;
}

// ---------------------------------------------------------------- the manager

/**
 * Where a container's cgroup lives, enough to reopen it later from another process (runc keeps
 * the same in its state.json): the in-hierarchy path and the directory in every hierarchy joined.
 */
export interface CgroupLocation {
  version: 1 | 2;
  /** The cgroup's path inside its hierarchy (v1: the memory hierarchy's, or the first one's). */
  path: string;
  /** v2: { unified: dir }. v1: controller → dir, plus "unified" on hybrid hosts. */
  dirs: Record<string, string>;
}

export interface CgroupManagerOptions {
  /**
   * Berth's root cgroup, under which relative cgroupsPaths are placed: absolute (same path in every
   * hierarchy), or relative to the caller's own cgroup in each hierarchy. Default "berth".
   */
  root?: string;
  /** The cgroup's name when cgroupsPath is empty (runc uses the container id). */
  name?: string;
  /** Receives what was skipped rather than applied (swap without memsw, v2 device rules...). */
  warn?: (message: string) => void;
  /** The host layout; read from /proc/self when absent (tests give fixtures). */
  layout?: CgroupLayout;
}

export interface CgroupManager {
  readonly version: 1 | 2;
  /** The cgroup's path inside its hierarchy (see CgroupLocation.path). */
  readonly path: string;
  readonly location: CgroupLocation;

  /** Makes the cgroup's directories (and berth's root above them); existing ones are fine. */
  create(): Promise<void>;
  /** Writes the limits, in runc's order and with runc's conversions. Safe to repeat (update). */
  apply(resources: LinuxResources): Promise<void>;
  /** Moves a process (all its threads) into the cgroup in every hierarchy. */
  addProcess(pid: number): Promise<void>;
  stats(): Promise<CgroupStats>;
  /** Freezes every task and resolves once the kernel reports the cgroup frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  isFrozen(): Promise<boolean>;
  /** Every process in the cgroup and its descendants. */
  pids(): Promise<number[]>;
  /** Signals every process (runc kill --all): cgroup.kill for SIGKILL where the kernel has it, else freeze, signal, thaw. */
  killAll(signal: number | NodeJS.Signals): Promise<void>;
  /** Removes the cgroup (sub-cgroups first). Refuses, after retries, while processes remain: it kills nothing. */
  destroy(): Promise<void>;

  // The same steps without an event-loop turn, for the container init stage before execve.
  createSync(): void;
  applySync(resources: LinuxResources): void;
  addProcessSync(pid: number): void;
  /** create + apply (when resources are given) + addProcess, synchronously. */
  setupSync(resources: LinuxResources | undefined, pid: number): void;
}
