// The OCI spec of a CRI container, built as containerd's CRI plugin builds it
// (internal/cri/server/container_create_linux.go, pkg/oci/spec_opts.go): containerd's default
// Unix spec, the image config merged with the CRI config (entrypoint/cmd/args, env, working dir,
// user), the pod's namespaces joined by path, the pod's /etc files and /dev/shm bound in, CRI
// mounts and devices, the security context (capabilities with ALL, privileged, read-only root,
// masked/read-only paths, seccomp profiles), resources, sysctls and containerd's annotations.
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { type MountInfoEntry, parseMountinfo } from "../cgroups/detect";
import type { LinuxResources } from "../cgroups/types";
import { InvalidArgumentError, UnimplementedError } from "../errors";
import type { ImageRunConfig } from "../image/types";
import { CAPABILITY_NAMES, currentCapabilities, DOCKER_DEFAULT_CAPS } from "../security/capabilities";
import { runtimeDefaultProfile } from "../security/seccomp/default-profile";
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, OCI_VERSION } from "./default-spec";
import { parseSignal } from "./lifecycle";
import { hostDevices, majorMinor } from "./host-devices";
import { restrictOomScoreAdj } from "./oom-score";
import { processProblem } from "./process-check";
import { secureJoin } from "./securejoin";
import type { Device, LinuxSeccomp, Mount, Spec } from "./spec-types";

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ContainerSpecInput {
  containerId: string;
  config: CriRequest<cri.ContainerConfig>;
  sandboxConfig: CriRequest<cri.PodSandboxConfig>;
  image: { id: string; name: string; config: ImageRunConfig };
  rootfs: string;
  sandbox: {
    id: string;
    /** Pinned namespace files; pid is the pod's shared PID namespace (pid mode POD). */
    namespaces: { network?: string; ipc?: string; uts?: string; pid?: string };
    hostname: string;
    files: { resolvConf?: string; hosts?: string; hostname?: string; shm?: string };
  };
  cgroupsPath: string;
  /** The lowest oom_score_adj the container may get (oom-score.ts); undefined: as the CRI asks. */
  oomScoreAdjFloor?: number;
  /** The host's devices for a privileged container (host-devices.ts; tests give their own). */
  hostDevices?: () => Device[];
  /** The host's mounts, for the propagation check (/proc/self/mountinfo; tests give their own). */
  hostMounts?: () => MountInfoEntry[];
}

// ---------------------------------------------------------------- process

/**
 * containerd's terminal environment: a container with a tty gets TERM=xterm unless its env names
 * a TERM (oci.WithTTY appends it, and the first TERM wins); an exec with a tty gets TERM=xterm
 * whatever the container's says (its exec sets it with WithEnv, which replaces).
 */
export function withTerminalEnv(env: string[], tty: boolean, replace: boolean): string[] {
  if (!tty) return env;
  const has = env.some((e) => e.startsWith("TERM="));
  if (has && !replace) return env;
  return [...env.filter((e) => !e.startsWith("TERM=")), "TERM=xterm"];
}

/** containerd's WithProcessArgs: CRI command replaces the entrypoint (and drops the image's cmd); CRI args replace cmd. */
export function processArgs(config: CriRequest<cri.ContainerConfig>, image: ImageRunConfig): string[] {
  const command = (config.command ?? []) as string[];
  const args = (config.args ?? []) as string[];
  let entrypoint = image.Entrypoint ?? [];
  let cmd = image.Cmd ?? [];
  if (command.length) {
    entrypoint = command;
    cmd = [];
  }
  if (args.length) cmd = args;
  const all = [...entrypoint, ...cmd];
  if (!all.length) throw new InvalidArgumentError("CreateContainer: no command: the image has no ENTRYPOINT or CMD and the container config gives no command or args");
  return all;
}

/** Image env, then CRI envs replacing by key; PATH when neither sets it; HOSTNAME as containerd sets it. */
export function processEnv(config: CriRequest<cri.ContainerConfig>, image: ImageRunConfig, hostname: string): string[] {
  const env = new Map<string, string>();
  for (const e of image.Env ?? []) {
    const i = e.indexOf("=");
    env.set(i < 0 ? e : e.slice(0, i), e);
  }
  for (const kv of config.envs ?? []) {
    if (!kv?.key) continue;
    // KeyValue.value is bytes on the wire (cri-api 0.36); a hand-built request may give a string.
    const v = kv.value as unknown;
    env.set(kv.key, `${kv.key}=${Buffer.isBuffer(v) || v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : String(v ?? "")}`);
  }
  if (!env.has("PATH")) env.set("PATH", DEFAULT_PATH);
  if (!env.has("HOSTNAME") && hostname) env.set("HOSTNAME", `HOSTNAME=${hostname}`);
  return [...env.values()];
}

interface Passwd {
  name: string;
  uid: number;
  gid: number;
}

function readIn(rootfs: string, path: string): string {
  try {
    return readFileSync(secureJoin(rootfs, path), "utf8");
  } catch {
    return "";
  }
}

function passwd(rootfs: string): Passwd[] {
  return readIn(rootfs, "/etc/passwd")
    .split("\n")
    .map((l) => l.split(":"))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[2]!) && /^\d+$/.test(f[3]!))
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) }));
}

function groups(rootfs: string): Array<{ name: string; gid: number; members: string[] }> {
  return readIn(rootfs, "/etc/group")
    .split("\n")
    .map((l) => l.split(":"))
    .filter((f) => f.length >= 3 && /^\d+$/.test(f[2]!))
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? "").split(",").filter(Boolean) }));
}

/**
 * run_as_user / run_as_username / the image's USER ("uid", "uid:gid", "name", "name:group"),
 * resolved in the container's own /etc/passwd and /etc/group (read through securejoin: a
 * symlinked /etc/passwd cannot point outside the rootfs); run_as_group overrides the gid;
 * supplemental groups are the user's /etc/group memberships plus supplemental_groups, or only
 * the latter with SupplementalGroupsPolicy Strict.
 */
export function processUser(config: CriRequest<cri.ContainerConfig>, image: ImageRunConfig, rootfs: string): { uid: number; gid: number; additionalGids?: number[] } {
  const sc = config.linux?.securityContext;
  let spec = image.User ?? "";
  if (sc?.runAsUser && sc.runAsUser.value !== undefined && sc.runAsUser.value !== null) spec = String(sc.runAsUser.value);
  else if (sc?.runAsUsername) spec = sc.runAsUsername;
  const [userPart = "", groupPart] = spec.split(":");
  const users = passwd(rootfs);
  let uid = 0;
  let gid = 0;
  let name: string | undefined;
  if (userPart === "") {
    name = "root";
  } else if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const u = users.find((x) => x.uid === uid);
    gid = u?.gid ?? 0;
    name = u?.name;
  } else {
    const u = users.find((x) => x.name === userPart);
    if (!u) throw new InvalidArgumentError(`CreateContainer: user "${userPart}" is not in the image's /etc/passwd`);
    uid = u.uid;
    gid = u.gid;
    name = u.name;
  }
  const allGroups = groups(rootfs);
  if (groupPart !== undefined && groupPart !== "") {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const g = allGroups.find((x) => x.name === groupPart);
      if (!g) throw new InvalidArgumentError(`CreateContainer: group "${groupPart}" is not in the image's /etc/group`);
      gid = g.gid;
    }
  }
  if (sc?.runAsGroup && sc.runAsGroup.value !== undefined && sc.runAsGroup.value !== null) gid = Number(sc.runAsGroup.value);
  const strict = sc?.supplementalGroupsPolicy === "Strict";
  const extra = new Set<number>();
  if (!strict && name) for (const g of allGroups) if (g.members.includes(name) && g.gid !== gid) extra.add(g.gid);
  for (const g of sc?.supplementalGroups ?? []) extra.add(Number(g));
  const user = extra.size ? { uid, gid, additionalGids: [...extra] } : { uid, gid };
  const problem = processProblem({ user, cwd: "/" });
  if (problem) throw new InvalidArgumentError(`CreateContainer: ${problem} (from run_as_user, run_as_group, supplemental_groups or the image's USER)`);
  return user;
}

// ---------------------------------------------------------------- security

function canonicalCap(c: string): string {
  const up = c.toUpperCase();
  return up.startsWith("CAP_") ? up : `CAP_${up}`;
}

/**
 * containerd's capability rules: privileged, or ALL in add, grants every capability the daemon
 * itself has (`current`, containerd's WithAllCurrentCapabilities); ALL in drop clears the
 * defaults, then adds apply.
 */
export function capabilitiesOf(sc: CriRequest<cri.LinuxContainerSecurityContext> | null | undefined, current: () => string[] = currentCapabilities): string[] {
  if (sc?.privileged) return current();
  const add = ((sc?.capabilities?.addCapabilities ?? []) as string[]).map(canonicalCap);
  const drop = ((sc?.capabilities?.dropCapabilities ?? []) as string[]).map(canonicalCap);
  const known = new Set<string>(CAPABILITY_NAMES);
  for (const c of [...add, ...drop]) {
    if (c !== "CAP_ALL" && !known.has(c)) throw new InvalidArgumentError(`CreateContainer: unknown capability "${c}"`);
  }
  let caps = new Set<string>(DOCKER_DEFAULT_CAPS);
  if (add.includes("CAP_ALL")) caps = new Set(current());
  if (drop.includes("CAP_ALL")) caps = new Set();
  for (const c of add) if (c !== "CAP_ALL") caps.add(c);
  for (const c of drop) if (c !== "CAP_ALL" && !add.includes(c)) caps.delete(c);
  return [...caps];
}

function seccompOf(sc: CriRequest<cri.LinuxContainerSecurityContext> | null | undefined, caps: string[]): LinuxSeccomp | undefined {
  if (sc?.privileged) return undefined;
  const profile = sc?.seccomp;
  let kind = profile?.profileType ?? "";
  let localhost = profile?.localhostRef ?? "";
  if (!profile && sc?.seccompProfilePath) {
    const p = sc.seccompProfilePath;
    if (p === "runtime/default" || p === "docker/default") kind = "RuntimeDefault";
    else if (p === "unconfined" || p === "") kind = "Unconfined";
    else if (p.startsWith("localhost/")) {
      kind = "Localhost";
      localhost = p.slice("localhost/".length);
    } else throw new InvalidArgumentError(`CreateContainer: seccomp_profile_path "${p}" is not runtime/default, unconfined or localhost/<path>`);
  }
  // containerd: no profile named means unconfined (kubelet asks for RuntimeDefault when it wants it).
  if (kind === "" || kind === "Unconfined") return undefined;
  if (kind === "RuntimeDefault") return runtimeDefaultProfile({ capabilities: caps, arch: "x86_64" });
  if (kind === "Localhost") {
    if (!isAbsolute(localhost)) throw new InvalidArgumentError(`CreateContainer: seccomp Localhost profile "${localhost}" must be an absolute path`);
    try {
      return JSON.parse(readFileSync(localhost, "utf8")) as LinuxSeccomp;
    } catch (err) {
      throw new InvalidArgumentError(`CreateContainer: seccomp Localhost profile ${localhost} cannot be read: ${(err as Error).message}`);
    }
  }
  throw new InvalidArgumentError(`CreateContainer: unknown seccomp profile type "${kind}"`);
}

function apparmorCheck(sc: CriRequest<cri.LinuxContainerSecurityContext> | null | undefined): void {
  const a = sc?.apparmor;
  const kind = a?.profileType ?? "";
  const legacy = sc?.apparmorProfile ?? "";
  if (kind === "Localhost" || legacy.startsWith("localhost/")) {
    if (!existsSync("/sys/kernel/security/apparmor")) {
      throw new UnimplementedError("CreateContainer: an AppArmor Localhost profile was asked for, but AppArmor is not enabled on this host");
    }
  }
}

// ---------------------------------------------------------------- mounts

const PROPAGATION: Record<string, string> = {
  PROPAGATION_PRIVATE: "rprivate",
  PROPAGATION_HOST_TO_CONTAINER: "rslave",
  PROPAGATION_BIDIRECTIONAL: "rshared",
};

/**
 * The mount a host path lives on (the last, topmost one with the longest mount point that
 * contains it), for containerd's ensureShared / ensureSharedOrSlave.
 */
export function hostMountOf(path: string, mountinfo: MountInfoEntry[]): MountInfoEntry | undefined {
  let best: MountInfoEntry | undefined;
  for (const m of mountinfo) {
    const inside = m.mountpoint === "/" || path === m.mountpoint || path.startsWith(`${m.mountpoint}/`);
    if (inside && (!best || m.mountpoint.length >= best.mountpoint.length)) best = m;
  }
  return best;
}

/**
 * containerd's check: a mount that propagates from the host needs a host mount that does
 * (shared, or a slave of one), and one that propagates both ways needs a shared one; otherwise
 * nothing would cross, silently.
 */
function checkPropagation(i: number, src: string, propagation: string, mountinfo: () => MountInfoEntry[]): void {
  if (propagation !== "PROPAGATION_BIDIRECTIONAL" && propagation !== "PROPAGATION_HOST_TO_CONTAINER") return;
  const m = hostMountOf(realpathSync(src), mountinfo());
  const shared = Boolean(m?.optional.some((o) => o.startsWith("shared:")));
  const slave = Boolean(m?.optional.some((o) => o.startsWith("master:")));
  if (propagation === "PROPAGATION_BIDIRECTIONAL" && !shared) {
    throw new InvalidArgumentError(`CreateContainer: mounts[${i}] propagation BIDIRECTIONAL: ${src} is on the mount ${m?.mountpoint ?? "?"}, which is not shared (mount --make-rshared ${m?.mountpoint ?? src})`);
  }
  if (propagation === "PROPAGATION_HOST_TO_CONTAINER" && !shared && !slave) {
    throw new InvalidArgumentError(`CreateContainer: mounts[${i}] propagation HOST_TO_CONTAINER: ${src} is on the mount ${m?.mountpoint ?? "?"}, which is neither shared nor a slave`);
  }
}

/**
 * containerd's rule: the container's root is shared with a BIDIRECTIONAL mount, a slave with a
 * HOST_TO_CONTAINER one. Left unset, the runtime makes every mount below the root an rslave
 * before the binds are made, which cuts a bind off from the host's peer group (a mount made in
 * the container would never reach the host). containerd writes runc's "rshared"/"rslave"; the
 * schema's "shared"/"slave" leave the host's mounts as they are, which is all the binds need.
 */
function rootfsPropagationOf(mounts: CriRequest<cri.Mount>[]): "shared" | "slave" | undefined {
  if (mounts.some((m) => m.propagation === "PROPAGATION_BIDIRECTIONAL")) return "shared";
  if (mounts.some((m) => m.propagation === "PROPAGATION_HOST_TO_CONTAINER")) return "slave";
  return undefined;
}

function criMounts(mounts: CriRequest<cri.Mount>[], hostMounts?: () => MountInfoEntry[]): Mount[] {
  const out: Mount[] = [];
  let info: MountInfoEntry[] | undefined;
  const mountinfo = () => (info ??= hostMounts ? hostMounts() : parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8")));
  for (const [i, m] of mounts.entries()) {
    const dest = m.containerPath ?? "";
    const src = m.hostPath ?? "";
    // What berth cannot do is refused rather than dropped (its RuntimeConfig says it has neither
    // recursive read-only mounts nor user namespaces).
    if (m.image?.image) throw new UnimplementedError(`CreateContainer: mounts[${i}] is an image volume (${m.image.image}); berth does not mount images as volumes`);
    if (m.recursiveReadOnly) throw new InvalidArgumentError(`CreateContainer: mounts[${i}].recursive_read_only is not supported by berth (its RuntimeConfig reports recursive_read_only_mounts false)`);
    if (m.uidMappings?.length || m.gidMappings?.length) throw new InvalidArgumentError(`CreateContainer: mounts[${i}] has uid/gid mappings (an idmapped mount), which need user namespaces; berth has none`);
    if (!isAbsolute(dest)) throw new InvalidArgumentError(`CreateContainer: mounts[${i}].container_path "${dest}" must be an absolute path`);
    if (!isAbsolute(src)) throw new InvalidArgumentError(`CreateContainer: mounts[${i}].host_path "${src}" must be an absolute path`);
    // containerd makes a missing host directory (kubelet made it, or expects the runtime to).
    if (!existsSync(src)) mkdirSync(src, { recursive: true, mode: 0o755 });
    checkPropagation(i, src, m.propagation ?? "PROPAGATION_PRIVATE", mountinfo);
    out.push({ destination: dest, type: "bind", source: src, options: ["rbind", PROPAGATION[m.propagation ?? "PROPAGATION_PRIVATE"] ?? "rprivate", m.readonly ? "ro" : "rw"] });
  }
  return out;
}

function defaultMounts(privileged: boolean): Mount[] {
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", privileged ? "rw" : "ro"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", privileged ? "rw" : "ro"] },
  ];
}

// ---------------------------------------------------------------- resources

const num = (s: string | number | null | undefined): number => Number(s ?? 0);

/** CRI LinuxContainerResources → OCI linux.resources (containerd's WithResources). */
export function resourcesFromCri(r: CriRequest<cri.LinuxContainerResources>): LinuxResources {
  const out: LinuxResources = {};
  const cpu: NonNullable<LinuxResources["cpu"]> = {};
  if (num(r.cpuShares)) cpu.shares = num(r.cpuShares);
  if (num(r.cpuQuota)) cpu.quota = num(r.cpuQuota);
  if (num(r.cpuPeriod)) cpu.period = num(r.cpuPeriod);
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length) out.cpu = cpu;
  const limit = num(r.memoryLimitInBytes);
  if (limit > 0) {
    out.memory = { limit };
    const swap = num(r.memorySwapLimitInBytes);
    // containerd: swap follows the limit unless set (no swap beyond the limit).
    if (swap > 0) out.memory.swap = swap;
  }
  const huge = (r.hugepageLimits ?? []).filter((h) => h?.pageSize);
  if (huge.length) out.hugepageLimits = huge.map((h) => ({ pageSize: h!.pageSize!, limit: num(h!.limit) }));
  if (r.unified && Object.keys(r.unified).length) out.unified = r.unified as Record<string, string>;
  return out;
}

// ---------------------------------------------------------------- devices

function devicesOf(devs: CriRequest<cri.Device>[]): { devices: NonNullable<Spec["linux"]>["devices"]; rules: NonNullable<LinuxResources["devices"]> } {
  const devices: NonNullable<NonNullable<Spec["linux"]>["devices"]> = [];
  const rules: NonNullable<LinuxResources["devices"]> = [];
  for (const [i, d] of devs.entries()) {
    const host = d.hostPath ?? "";
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(host);
    } catch (err) {
      throw new InvalidArgumentError(`CreateContainer: devices[${i}].host_path ${host}: ${(err as Error).message}`);
    }
    const type = st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : undefined;
    if (!type) throw new InvalidArgumentError(`CreateContainer: devices[${i}].host_path ${host} is not a device node`);
    const { major, minor } = majorMinor(st.rdev);
    devices.push({ path: d.containerPath || host, type, major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
    rules.push({ allow: true, type, major, minor, access: d.permissions || "rwm" });
  }
  return { devices, rules };
}

// ---------------------------------------------------------------- the spec

export function buildContainerSpec(input: ContainerSpecInput): Spec {
  const { config, sandboxConfig, image } = input;
  const sc = config.linux?.securityContext;
  const privileged = Boolean(sc?.privileged);
  apparmorCheck(sc);
  const caps = capabilitiesOf(sc);
  const ns = sandboxConfig.linux?.securityContext?.namespaceOptions;

  const namespaces: NonNullable<Spec["linux"]>["namespaces"] = [{ type: "mount" }];
  // The container's own choice wins over the pod's (kubelet sets both); the wire default is POD.
  const pidMode = sc?.namespaceOptions ? (sc.namespaceOptions.pid ?? "POD") : (ns?.pid ?? "POD");
  if (pidMode === "POD" && input.sandbox.namespaces.pid) namespaces.push({ type: "pid", path: input.sandbox.namespaces.pid });
  else if (pidMode === "TARGET") throw new UnimplementedError("CreateContainer: pid mode TARGET is not supported by berth");
  else if (pidMode !== "NODE") namespaces.push({ type: "pid" });
  if (input.sandbox.namespaces.network) namespaces.push({ type: "network", path: input.sandbox.namespaces.network });
  if (input.sandbox.namespaces.ipc) namespaces.push({ type: "ipc", path: input.sandbox.namespaces.ipc });
  if (input.sandbox.namespaces.uts) namespaces.push({ type: "uts", path: input.sandbox.namespaces.uts });

  const mounts = [...defaultMounts(privileged)];
  const user = criMounts((config.mounts ?? []) as CriRequest<cri.Mount>[], input.hostMounts);
  const taken = new Set(user.map((m) => m.destination));
  const ro = Boolean(sc?.readonlyRootfs);
  const files = input.sandbox.files;
  const podFile = (dest: string, src: string | undefined) => {
    if (src && !taken.has(dest)) mounts.push({ destination: dest, type: "bind", source: src, options: ["rbind", "rprivate", ro ? "ro" : "rw"] });
  };
  podFile("/etc/hostname", files.hostname);
  podFile("/etc/hosts", files.hosts);
  podFile("/etc/resolv.conf", files.resolvConf);
  if (!taken.has("/dev/shm")) {
    if (files.shm) mounts.push({ destination: "/dev/shm", type: "bind", source: files.shm, options: ["rbind", "rprivate", "nosuid", "nodev", "noexec"] });
    else mounts.push({ destination: "/dev/shm", type: "bind", source: "/dev/shm", options: ["rbind", "rprivate", "nosuid", "nodev", "noexec"] });
  }
  // Shallower destinations first, so /data is mounted before /data/sub (containerd sorts the CRI mounts so).
  user.sort((a, b) => a.destination.split("/").length - b.destination.split("/").length);
  mounts.push(...user);

  const { devices: requested, rules } = devicesOf((config.devices ?? []) as CriRequest<cri.Device>[]);
  // A privileged container gets the host's devices too, as in containerd (its cgroup allows all).
  const devices = privileged ? [...(input.hostDevices ?? hostDevices)().filter((h) => !requested!.some((d) => d.path === h.path)), ...requested!] : requested;
  const resources: LinuxResources = { ...resourcesFromCri(config.linux?.resources ?? {}), devices: [{ allow: privileged, access: "rwm" }, ...rules] };

  const masked = privileged ? [] : sc?.maskedPaths?.length ? (sc.maskedPaths as string[]) : [...DEFAULT_MASKED_PATHS];
  const readonly = privileged ? [] : sc?.readonlyPaths?.length ? (sc.readonlyPaths as string[]) : [...DEFAULT_READONLY_PATHS];
  const oomScoreAdj = restrictOomScoreAdj(num(config.linux?.resources?.oomScoreAdj), input.oomScoreAdjFloor);

  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: Boolean(config.tty),
      user: processUser(config, image.config, input.rootfs),
      args: processArgs(config, image.config),
      env: withTerminalEnv(processEnv(config, image.config, input.sandbox.hostname), Boolean(config.tty), false),
      cwd: config.workingDir || image.config.WorkingDir || "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: Boolean(sc?.noNewPrivs),
      ...(oomScoreAdj ? { oomScoreAdj } : {}),
    },
    root: { path: input.rootfs, readonly: ro },
    hostname: input.sandbox.namespaces.uts ? input.sandbox.hostname : undefined,
    mounts,
    annotations: {
      ...((config.annotations ?? {}) as Record<string, string>),
      "io.kubernetes.cri.container-type": "container",
      "io.kubernetes.cri.container-name": config.metadata?.name ?? "",
      "io.kubernetes.cri.sandbox-id": input.sandbox.id,
      "io.kubernetes.cri.sandbox-name": sandboxConfig.metadata?.name ?? "",
      "io.kubernetes.cri.sandbox-namespace": sandboxConfig.metadata?.namespace ?? "",
      "io.kubernetes.cri.sandbox-uid": sandboxConfig.metadata?.uid ?? "",
      "io.kubernetes.cri.image-name": image.name,
    },
    linux: {
      resources,
      cgroupsPath: input.cgroupsPath,
      namespaces,
      devices: devices?.length ? devices : undefined,
      maskedPaths: masked,
      readonlyPaths: readonly,
      sysctl: sandboxConfig.linux?.sysctls && Object.keys(sandboxConfig.linux.sysctls).length ? (sandboxConfig.linux.sysctls as Record<string, string>) : undefined,
      seccomp: seccompOf(sc, caps),
      rootfsPropagation: rootfsPropagationOf((config.mounts ?? []) as CriRequest<cri.Mount>[]),
    },
  };
  if (spec.hostname === undefined) delete spec.hostname;
  for (const k of ["devices", "sysctl", "seccomp", "rootfsPropagation"] as const) if (spec.linux![k] === undefined) delete spec.linux![k];
  return spec;
}

/**
 * The signal StopContainer sends first: CRI stop_signal, else the image's STOPSIGNAL, else SIGTERM.
 * Names and numbers are read as `berth runtime kill` reads them (parseSignal); CRI's enum spells
 * real-time signals SIGRTMINPLUS3 / SIGRTMAXMINUS2. One that cannot be read is ignored.
 */
export function stopSignalOf(config: CriRequest<cri.ContainerConfig>, image: ImageRunConfig): number {
  const pick = (s: string | undefined): number | undefined => {
    if (!s || s === "RUNTIME_DEFAULT") return undefined;
    try {
      return parseSignal(s.replace(/PLUS(\d+)$/, "+$1").replace(/MINUS(\d+)$/, "-$1"));
    } catch {
      return undefined;
    }
  };
  return pick(config.stopSignal ?? undefined) ?? pick(image.StopSignal) ?? 15;
}
