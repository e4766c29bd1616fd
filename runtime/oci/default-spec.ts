// The config.json `berth runtime spec` writes: what `runc spec` prints (runc's
// libcontainer/specconv/example.go), with containerd's masked and read-only path lists, which add
// /sys/devices/virtual/powercap (RAPL energy counters are a side channel, CVE-2020-8694).
// Properties are built in the order runc's Go structs print them, so the JSON reads the same.
import type { Spec } from "./spec-types";

/** containerd's pkg/oci populateDefaultUnixSpec MaskedPaths. */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
  "/proc/scsi",
];

/** containerd's pkg/oci populateDefaultUnixSpec ReadonlyPaths (the same as runc's). */
export const DEFAULT_READONLY_PATHS: readonly string[] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** `runc spec`'s capability sets. */
export const DEFAULT_CAPABILITIES: readonly string[] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/** The runtime-spec version berth's schemas and types follow (and runc's vendored specs-go). */
export const OCI_VERSION = "1.3.0";

export interface DefaultSpecOptions {
  /** Default true, as `runc spec`. */
  terminal?: boolean;
  /** Default ["sh"], as `runc spec`. */
  args?: string[];
  /**
   * Whether to list a cgroup namespace. Default true; `runc spec` lists one only on a pure
   * cgroup v2 host, so pass false to get its output on a v1 or hybrid host.
   */
  cgroupNamespace?: boolean;
}

export function defaultSpec(opts: DefaultSpecOptions = {}): Spec {
  const caps = () => [...DEFAULT_CAPABILITIES];
  const namespaces: NonNullable<Spec["linux"]>["namespaces"] = [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  if (opts.cgroupNamespace ?? true) namespaces.push({ type: "cgroup" });
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: opts.terminal ?? true,
      user: { uid: 0, gid: 0 },
      args: opts.args ? [...opts.args] : ["sh"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      capabilities: { bounding: caps(), effective: caps(), permitted: caps() },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "runc",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: "rwm" }] },
      namespaces,
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
}
