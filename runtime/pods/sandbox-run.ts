// RunPodSandbox: a pod without a pause image (DESIGN.md, decision 4). Its network, IPC and UTS
// namespaces are pinned files; its /etc files and /dev/shm are made for its containers to mount;
// CNI connects the network namespace. The record is written first in phase "creating", so a
// crash at any step leaves something recovery recognises and undoes; a failure undoes the steps
// already taken before the error goes back to the caller.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { hostname as hostHostname } from "node:os";
import { isAbsolute } from "node:path";
import type * as cri from "../api/cri-v1";
import type { CriRequest } from "../api/cri-v1";
import { InvalidArgumentError, UnimplementedError } from "../errors";
import { newCgroupManager } from "../cgroups/detect";
import { capabilityArgsOf } from "../network/cni";
import { sysctlRefusal } from "../security/sysctl";
import { criCgroupsPath } from "../cgroups/path";
import { guardUnsafe, type PodContext, handlerFor } from "./context";
import { sandboxName } from "./names";
import { addPodIps, sandboxFilePaths, writeSandboxFiles } from "./sandbox-files";
import { startPidHolder } from "./pid-holder";
import { teardownSandbox } from "./sandbox-teardown";
import { nowNanos } from "./time";
import type { PodNetworkRequest, SandboxRecord } from "./types";

export function requireMetadata(config: CriRequest<cri.PodSandboxConfig> | null | undefined): cri.PodSandboxMetadata {
  const m = config?.metadata;
  if (!config || !m) throw new InvalidArgumentError("RunPodSandbox: config.metadata is required (name, namespace, uid)");
  for (const f of ["name", "namespace", "uid"] as const) {
    if (!m[f]) throw new InvalidArgumentError(`RunPodSandbox: config.metadata.${f} is required`);
  }
  return { name: m.name!, namespace: m.namespace!, uid: m.uid!, attempt: m.attempt ?? 0 };
}

export function namespaceMode(config: CriRequest<cri.PodSandboxConfig>): { network: string; ipc: string; pid: string } {
  const o = config.linux?.securityContext?.namespaceOptions;
  // Unset is the wire default, POD, for all three, as containerd reads it (kubelet always sets them).
  return { network: o?.network ?? "POD", ipc: o?.ipc ?? "POD", pid: o?.pid ?? "POD" };
}

/** The decoded form of what a hand-made request may leave out: records hold complete messages. */
function completeConfig(config: CriRequest<cri.PodSandboxConfig>, metadata: cri.PodSandboxMetadata): cri.PodSandboxConfig {
  return {
    metadata,
    hostname: config.hostname ?? "",
    logDirectory: config.logDirectory ?? "",
    dnsConfig: (config.dnsConfig as cri.DNSConfig) ?? null,
    portMappings: (config.portMappings ?? []) as cri.PortMapping[],
    labels: (config.labels ?? {}) as Record<string, string>,
    annotations: (config.annotations ?? {}) as Record<string, string>,
    linux: (config.linux as cri.LinuxPodSandboxConfig) ?? null,
    windows: null,
  };
}

export function portMappingsOf(config: cri.PodSandboxConfig): PodNetworkRequest["portMappings"] {
  return config.portMappings
    .filter((p) => p.hostPort > 0)
    .map((p) => ({
      protocol: (String(p.protocol || "TCP").toLowerCase() as "tcp" | "udp" | "sctp"),
      containerPort: p.containerPort,
      hostPort: p.hostPort,
      hostIp: p.hostIp ?? "",
    }));
}

export function networkRequest(rec: SandboxRecord): PodNetworkRequest {
  const m = rec.config.metadata!;
  return { podId: rec.id, name: m.name, namespace: m.namespace, uid: m.uid, netns: rec.namespaces.net ?? "", portMappings: portMappingsOf(rec.config) };
}

/** What would fail half-way through making the pod, refused before anything is made. */
function refuseInvalid(config: cri.PodSandboxConfig, modes: ReturnType<typeof namespaceMode>): void {
  const hostNetwork = modes.network === "NODE";
  // HOST_NAME_MAX; sethostname refuses longer ones.
  if (config.hostname.length > 64) throw new InvalidArgumentError(`RunPodSandbox: hostname "${config.hostname.slice(0, 20)}…" is ${config.hostname.length} characters; at most 64`);
  if (config.logDirectory && !isAbsolute(config.logDirectory)) throw new InvalidArgumentError(`RunPodSandbox: log_directory "${config.logDirectory}" must be an absolute path`);
  // Each is one line of the pod's /etc/resolv.conf: a line break would add lines of its own.
  const dns = config.dnsConfig;
  for (const [field, values, spaces] of [["servers", dns?.servers, false], ["searches", dns?.searches, false], ["options", dns?.options, true]] as const) {
    const bad = (values ?? []).find((v) => (spaces ? /[\r\n]/ : /\s/).test(v) || v === "");
    if (bad !== undefined) throw new InvalidArgumentError(`RunPodSandbox: dns_config.${field} ${JSON.stringify(bad)} is not valid: ${bad === "" ? "empty" : "it contains a line break or blank"}`);
  }
  try {
    capabilityArgsOf(portMappingsOf(config));
  } catch (err) {
    throw new InvalidArgumentError(`RunPodSandbox: ${(err as Error).message}`);
  }
  // A pod's sysctls are set by each of its containers (linux.sysctl of their specs): refused here,
  // once, rather than at every CreateContainer. Its UTS namespace goes with its network one.
  for (const key of Object.keys(config.linux?.sysctls ?? {})) {
    const why = sysctlRefusal(key, { ipc: modes.ipc !== "NODE", ownNet: !hostNetwork, uts: !hostNetwork });
    if (why) throw new InvalidArgumentError(`RunPodSandbox: linux.sysctls: ${why}`);
  }
}

export async function runPodSandbox(ctx: PodContext, req: CriRequest<cri.RunPodSandboxRequest>): Promise<cri.RunPodSandboxResponse> {
  const metadata = requireMetadata(req.config);
  const config = completeConfig(req.config!, metadata);
  const handler = handlerFor(ctx, req.runtimeHandler);
  const modes = namespaceMode(config);
  if (modes.pid === "TARGET") {
    throw new UnimplementedError("RunPodSandbox: pid mode TARGET (a container's PID namespace) is not supported by berth; use POD, CONTAINER or NODE");
  }
  refuseInvalid(config, modes);
  const id = randomBytes(32).toString("hex");
  const name = sandboxName(metadata);
  ctx.names.reserve(name, id, "pod sandbox");
  const hostNetwork = modes.network === "NODE";
  const hostname = config.hostname || (hostNetwork ? hostHostname() : metadata.name);
  const rec: SandboxRecord = {
    id,
    name,
    config,
    runtimeHandler: handler.name,
    phase: "creating",
    createdAt: nowNanos(),
    hostname,
    namespaces: {},
    files: sandboxFilePaths(ctx.config.state, id, modes.ipc !== "NODE"),
    cgroupParent: "",
    ownsCgroup: false,
  };
  const log = ctx.log.with({ pod: `${metadata.namespace}/${metadata.name}`, sandbox: id.slice(0, 12) });
  try {
    await ctx.locks.run(id, async () => {
      // Recorded before it is made: a crash right after mkdir still leaves a record that owns it.
      rec.cgroupParent = podCgroupPath(ctx.config.cgroupRoot, config.linux?.cgroupParent || `berth-pod-${id.slice(0, 12)}`);
      const cg = newCgroupManager(rec.cgroupParent, { root: "" });
      rec.ownsCgroup = !cgroupExists(cg.location.dirs);
      await ctx.sandboxes.put(rec);
      await cg.create();

      const kinds: Array<"net" | "ipc" | "uts"> = [];
      if (!hostNetwork) kinds.push("net", "uts");
      if (modes.ipc !== "NODE") kinds.push("ipc");
      rec.namespaces = kinds.length ? guardUnsafe(ctx, () => ctx.namespaces.pin(id, kinds, hostNetwork ? undefined : hostname)) : {};
      await ctx.sandboxes.put(rec);
      if (modes.pid === "POD") {
        rec.pidHolder = await startPidHolder(id, rec.files.dir);
        await ctx.sandboxes.put(rec);
      }

      await writeSandboxFiles(ctx.sys, rec.files, { hostname, dns: config.dnsConfig, hostNetwork });
      if (!hostNetwork) {
        rec.network = await ctx.network.setUp(networkRequest(rec));
        await addPodIps(rec.files, hostname, rec.network.ips);
      }
      rec.phase = "ready";
      await ctx.sandboxes.put(rec);
    });
  } catch (err) {
    log.warn("pod sandbox creation failed; undoing", { error: (err as Error).message });
    await teardownSandbox(ctx, rec).catch((e: unknown) => log.error("undoing a failed pod sandbox left something behind", { error: (e as Error).message }));
    ctx.names.release(name, id);
    throw err;
  }
  log.info("pod sandbox ready", { ips: rec.network?.ips ?? [], hostNetwork });
  return { podSandboxId: id };
}

/** kubelet's cgroup_parent below berth's cgroup root (DESIGN.md, decision 9). */
export function podCgroupPath(root: string, cgroupParent: string): string {
  const rel = criCgroupsPath(cgroupParent, ".");
  const r = root.replace(/\/+$/, "");
  if (root.startsWith("/")) return `${r}/${rel}`;
  return r === "" ? rel : `${r}/${rel}`;
}

function cgroupExists(dirs: Record<string, string>): boolean {
  return Object.values(dirs).every((d) => existsSync(d));
}
