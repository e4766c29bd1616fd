// What the launcher hands the init stage (one JSON line on the sync pipe, fd 3): the validated
// spec and everything the init cannot or should not work out again.
import type { CgroupLayout, CgroupV1Hierarchy } from "./rootfs";
import type { Process, Spec } from "./spec-types";

export interface InitConfig {
  id: string;
  spec: Spec;
  /** Absolute host path of the rootfs. */
  rootfs: string;
  bundle: string;
  /** fd (in the init) of the exec FIFO, opened O_PATH. */
  fifoFd: number;
  /** fd (in the init) of the connected console socket, when process.terminal. */
  consoleFd?: number;
  /** Files the init writes "0" (itself) into to join its cgroup (cgroup-of.ts's cgroupJoins). */
  joinCgroup: string[];
  /** What a `cgroup` mount in the container exposes (rootfs.ts's RootfsOptions). */
  cgroupMounts: { cgroupLayout?: CgroupLayout; cgroupV1?: CgroupV1Hierarchy[]; cgroup2Path?: string };
  newCgroupNs: boolean;
  /** A new mount namespace, one to join, or the host's (no mount namespace in the spec). */
  mountNs: "new" | "host" | { path: string };
  joinCgroupNs?: string;
  /** RLIMIT_NOFILE soft limit of the runtime's caller, restored unless the spec sets one. */
  nofile?: number;
  /** Compiled filter (struct sock_filter[], base64) and seccomp flags. */
  seccomp?: { program: string; flags: number };
  /** fds 3.. passed through to the container (runc's --preserve-fds), placed at 6.. in the init. */
  preserveFds: number;
  /** The init's pid as the host sees it: the state hooks read names it. */
  hostPid: number;
}

/** What the launcher of `exec` hands the exec stage. */
export interface ExecConfig {
  id: string;
  process: Process;
  /** fd (in the exec stage) of the container's mount namespace. */
  mountNsFd: number;
  consoleFd?: number;
  joinCgroup: string[];
  seccomp?: { program: string; flags: number };
  preserveFds: number;
  nofile?: number;
}
