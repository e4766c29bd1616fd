// The OCI runtime-spec v1.3 config.json, as TypeScript types (the Linux parts berth runs).
// config.json is validated against schemas/oci/runtime-spec-v1.3.0 before these types are trusted.

import type { LinuxResources } from "../cgroups/types";
import type { LinuxSeccomp } from "../security/seccomp/types";

export interface Spec {
  ociVersion: string;
  root?: { path: string; readonly?: boolean };
  mounts?: Mount[];
  process?: Process;
  hostname?: string;
  domainname?: string;
  hooks?: Hooks;
  annotations?: Record<string, string>;
  linux?: Linux;
}

export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
}

export interface Process {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: User;
  args?: string[];
  commandLine?: string;
  env?: string[];
  cwd: string;
  capabilities?: Capabilities;
  rlimits?: Rlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
  ioPriority?: { class: "IOPRIO_CLASS_RT" | "IOPRIO_CLASS_BE" | "IOPRIO_CLASS_IDLE"; priority?: number };
  scheduler?: { policy: string; nice?: number; priority?: number; flags?: string[]; runtime?: number; deadline?: number; period?: number };
  execCPUAffinity?: { initial?: string; final?: string };
}

export interface User {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface Capabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface Hooks {
  prestart?: Hook[];
  createRuntime?: Hook[];
  createContainer?: Hook[];
  startContainer?: Hook[];
  poststart?: Hook[];
  poststop?: Hook[];
}

export type NamespaceType = "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup" | "time";

export interface Namespace {
  type: NamespaceType;
  path?: string;
}

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface Device {
  type: "c" | "b" | "u" | "p";
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

// linux.resources and linux.seccomp are typed where they are applied: the cgroup layer and the
// seccomp compiler own those contracts, and this file re-exports them under the spec's names.
export type { LinuxDeviceCgroup as DeviceCgroupRule, LinuxResources, LinuxThrottleDevice as ThrottleDevice, LinuxWeightDevice as WeightDevice } from "../cgroups/types";
export type { LinuxSeccomp, LinuxSeccompArg as SeccompArg, LinuxSyscall as SeccompSyscall, SeccompAction } from "../security/seccomp/types";

export interface Linux {
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  sysctl?: Record<string, string>;
  resources?: LinuxResources;
  cgroupsPath?: string;
  namespaces?: Namespace[];
  devices?: Device[];
  seccomp?: LinuxSeccomp;
  /** The schema's four values, and runc's recursive forms that containerd writes (validate.ts). */
  rootfsPropagation?: "private" | "shared" | "slave" | "unbindable" | "rprivate" | "rshared" | "rslave" | "runbindable";
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  personality?: { domain: string; flags?: string[] };
  timeOffsets?: Record<string, { secs?: number; nanosecs?: number }>;
  intelRdt?: Record<string, unknown>;
}

/** runc's state JSON (`runc state ID`), which conmon and CRI-O parse. */
export interface State {
  ociVersion: string;
  id: string;
  pid: number;
  status: "creating" | "created" | "running" | "stopped" | "paused";
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}
