// Linux capabilities: OCI names <-> bit numbers, and the order runc applies them in at the end of
// a container's init. Names need the CAP_ prefix, in upper case, as in runc's config.json.
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "../errors";
import type { Capabilities } from "../oci/spec-types";
import { ErrnoError, type Syscalls } from "../linux/types";

/** Capability names indexed by number (linux/capability.h, up to Linux 6.x). */
export const CAPABILITY_NAMES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
] as const;

export type CapabilityName = (typeof CAPABILITY_NAMES)[number];

const NUMBERS = new Map<string, number>(CAPABILITY_NAMES.map((name, i) => [name, i]));

/** The capabilities Docker and containerd grant a container by default. */
export const DOCKER_DEFAULT_CAPS: readonly CapabilityName[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** prctl options for capabilities (linux/prctl.h). */
export const PR = {
  CAPBSET_READ: 23,
  CAPBSET_DROP: 24,
  SET_KEEPCAPS: 8,
  CAP_AMBIENT: 47,
  CAP_AMBIENT_RAISE: 2,
  CAP_AMBIENT_CLEAR_ALL: 4,
} as const;

export function capNumber(name: string): number {
  const n = NUMBERS.get(name);
  if (n !== undefined) return n;
  const hint = NUMBERS.has(`CAP_${name.toUpperCase()}`) ? ` (did you mean CAP_${name.toUpperCase()}?)` : "";
  throw new InvalidArgumentError(`unknown capability ${JSON.stringify(name)}${hint}`);
}

export function capsToMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const name of names) mask |= 1n << BigInt(capNumber(name));
  return mask;
}

/** Names of the set bits, in number order; a bit with no known name appears as its number. */
export function maskToCaps(mask: bigint): string[] {
  const names: string[] = [];
  for (let n = 0; mask >> BigInt(n) !== 0n; n++) {
    if ((mask >> BigInt(n)) & 1n) names.push(CAPABILITY_NAMES[n] ?? String(n));
  }
  return names;
}

/**
 * The calling process's effective capabilities, by name (containerd's cap.Current): what a
 * privileged container, or one asking for ALL, gets. Every known one would include what this
 * host's bounding set lacks (CAP_SYS_RESOURCE here), and capset would refuse the whole set.
 */
export function currentCapabilities(status = readFileSync("/proc/self/status", "utf8")): string[] {
  const mask = effectiveMask(status);
  if (mask === undefined) return [...CAPABILITY_NAMES];
  const known = new Set<string>(CAPABILITY_NAMES);
  return maskToCaps(mask).filter((c) => known.has(c));
}

/** The CapEff mask of a /proc/PID/status text; undefined when it has none. */
export function effectiveMask(status: string): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-f]+)$/im.exec(status);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/** The highest capability number the running kernel knows. */
export function lastCap(path = "/proc/sys/kernel/cap_last_cap"): number {
  return Number.parseInt(readFileSync(path, "utf8"), 10);
}

/**
 * Drop from the calling thread's bounding set every capability up to `last` that `bounding` lacks.
 * Needs CAP_SETPCAP in the effective set, so it runs before the switch to the container's user.
 * Capabilities already out of the set are skipped, which makes a second call after that switch
 * (from applyCapabilities) a no-op rather than an EPERM.
 */
export function dropBoundingSet(sys: Syscalls, bounding: readonly string[], last = lastCap()): void {
  const keep = capsToMask(bounding);
  for (let n = 0; n <= last; n++) {
    if ((keep >> BigInt(n)) & 1n) continue;
    if (sys.prctl(PR.CAPBSET_READ, n) !== 1) continue;
    sys.prctl(PR.CAPBSET_DROP, n);
  }
}

/**
 * Apply an OCI `process.capabilities` to the calling thread, as runc does at the end of init:
 * the bounding set, then capset(effective, permitted, inheritable), then the ambient set cleared
 * and raised cap by cap. The caller switches user in between (dropBoundingSet first, then
 * setgroups/setresgid/setresuid with PR_SET_KEEPCAPS, then this). An absent list is an empty set.
 * Capabilities above the kernel's last one are left out, as runc ignores them.
 * Returns warnings: ambient capabilities the kernel refused to raise (runc only warns, since
 * raising needs the capability in both the permitted and inheritable sets).
 */
export function applyCapabilities(sys: Syscalls, caps: Capabilities, last = lastCap()): string[] {
  // Every name is checked before the first call: a typo must not leave a half-applied set.
  const known = (1n << BigInt(last + 1)) - 1n;
  const bounding = caps.bounding ?? [];
  capsToMask(bounding);
  const sets = {
    effective: capsToMask(caps.effective ?? []) & known,
    permitted: capsToMask(caps.permitted ?? []) & known,
    inheritable: capsToMask(caps.inheritable ?? []) & known,
  };
  const ambient = (caps.ambient ?? []).map((name) => ({ name, n: capNumber(name) })).filter(({ n }) => n <= last);

  dropBoundingSet(sys, bounding, last);
  sys.capset(sets);
  const warnings: string[] = [];
  sys.prctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (const { name, n } of ambient) {
    try {
      sys.prctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_RAISE, n, 0, 0);
    } catch (err) {
      if (!(err instanceof ErrnoError)) throw err;
      warnings.push(`ambient capability ${name} not raised: ${err.code}`);
    }
  }
  return warnings;
}
