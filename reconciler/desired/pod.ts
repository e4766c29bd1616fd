// A pod spec (from a Pod, or a Deployment's template) → the CRI requests berth sends for it,
// as kubelet builds them: sandbox config with port mappings and namespace options, container
// configs with env, mounts, resources (cpu shares/quota, memory limit, QoS oom_score_adj) and the
// security context. The effective spec (everything that decides what runs, ConfigMap contents
// included) is hashed; the hash decides whether a running pod still matches.
import { createHash } from "node:crypto";
import { isAbsolute, join, normalize } from "node:path";
import type { V1Container, V1PodSpec, V1Probe, V1SecurityContext } from "@kubernetes/client-node";
import type * as cri from "../../runtime/api/cri-v1";
import { InvalidArgumentError } from "../../runtime/errors";
import {
  ANN_APPLIED,
  ANN_HASH,
  ANN_INIT,
  ANN_REVISION,
  ANN_SOURCE,
  type DesiredContainer,
  type DesiredPod,
  type HostPortClaim,
  LABEL_MANAGED,
  LABEL_OWNER_KIND,
  LABEL_OWNER_NAME,
  LABEL_OWNER_NAMESPACE,
  type ObjectKey,
  type PullPolicy,
  type RestartPolicy,
  type SourcePosition,
  type VolumeSource,
} from "../types";
import { type ConfigMapLookup, expand, resolveEnv } from "./env";
import { canonicalJson, derivedUid, specHash } from "./hash";
import { bytesOf, milliCpu } from "./quantity";

export interface PodBuildContext {
  /** Pods' volume directories: DIR/UID/volumes/NAME. */
  podsDir: string;
  /** Pods' log directories: DIR/NAMESPACE_NAME_UID (kubelet's /var/log/pods layout). */
  logsDir: string;
  /** Localhost seccomp profiles named relatively are found here. */
  seccompDir: string;
  configMaps: ConfigMapLookup;
  revision?: string;
}

export interface PodInput {
  owner: ObjectKey;
  source: SourcePosition;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: V1PodSpec;
  /** Field path of `spec` in its manifest, for messages (`spec`, `spec.template.spec`). */
  field: string;
}

const CPU_PERIOD = 100_000;

export function buildPod(input: PodInput, ctx: PodBuildContext): DesiredPod {
  const { spec, namespace, name, field } = input;
  const restartPolicy = (spec.restartPolicy ?? "Always") as RestartPolicy;
  const hostNetwork = spec.hostNetwork === true;
  const volumes = volumeInputs(input, ctx);
  const containers = spec.containers.map((c, i) => effectiveContainer(c, false, `${field}.containers[${i}]`, input, ctx));
  const initContainers = (spec.initContainers ?? []).map((c, i) => effectiveContainer(c, true, `${field}.initContainers[${i}]`, input, ctx));
  // kubelet's: the sandbox is privileged when any of its containers is (CRI runtimes refuse a
  // privileged container in a pod that is not). In the effective spec only when true, so that a
  // privileged pod made before berth set it is made again, and no other pod's hash moves.
  const privilegedPod = [...spec.containers, ...(spec.initContainers ?? [])].some((c) => c.securityContext?.privileged === true);
  const effective = {
    name,
    namespace,
    ...(privilegedPod ? { privilegedSandbox: true } : {}),
    labels: input.labels,
    annotations: input.annotations,
    hostname: spec.hostname ?? name,
    hostNetwork,
    restartPolicy,
    terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds ?? 30,
    securityContext: spec.securityContext ?? {},
    dnsPolicy: spec.dnsPolicy ?? "ClusterFirst",
    volumes: volumes.map((v) => v.effective),
    initContainers: initContainers.map((c) => c.effective),
    containers: containers.map((c) => c.effective),
  };
  const hash = specHash(effective);
  const uid = derivedUid(`${input.owner.kind}/${namespace}/${name}/${hash}`);
  const podDir = join(ctx.podsDir, uid);
  const volumeSources = volumes.map((v) => v.source(join(podDir, "volumes", v.name)));

  const portMappings: cri.CriRequest<cri.PortMapping>[] = [];
  const hostPorts: HostPortClaim[] = [];
  for (const [i, c] of spec.containers.entries()) {
    for (const [j, p] of (c.ports ?? []).entries()) {
      const protocol = p.protocol ?? "TCP";
      const at = `${field}.containers[${i}].ports[${j}]`;
      // A host-network pod's container ports are the host's (the API server defaults hostPort to them).
      if (hostNetwork) hostPorts.push({ protocol, port: p.hostPort || p.containerPort, ip: "", field: `${at}.${p.hostPort ? "hostPort" : "containerPort"}` });
      else if (p.hostPort) {
        portMappings.push({ protocol: protocol as cri.Protocol, containerPort: p.containerPort, hostPort: p.hostPort, hostIp: p.hostIP ?? "" });
        hostPorts.push({ protocol, port: p.hostPort, ip: p.hostIP ?? "", field: `${at}.hostPort` });
      }
    }
  }
  const managed = {
    [LABEL_MANAGED]: "berth",
    [LABEL_OWNER_KIND]: input.owner.kind,
    [LABEL_OWNER_NAME]: input.owner.name,
    [LABEL_OWNER_NAMESPACE]: input.owner.namespace,
  };
  const podSc = spec.securityContext ?? {};
  const nsOptions = { network: hostNetwork ? "NODE" : "POD", pid: "CONTAINER", ipc: "POD" } as const;
  const sandbox: cri.CriRequest<cri.PodSandboxConfig> = {
    metadata: { name, namespace, uid, attempt: 0 },
    hostname: hostNetwork ? "" : (spec.hostname ?? name).slice(0, 63),
    logDirectory: join(ctx.logsDir, `${namespace}_${name}_${uid}`),
    portMappings,
    labels: {
      ...input.labels,
      ...managed,
      "io.kubernetes.pod.name": name,
      "io.kubernetes.pod.namespace": namespace,
      "io.kubernetes.pod.uid": uid,
    },
    annotations: {
      ...input.annotations,
      [ANN_HASH]: hash,
      [ANN_APPLIED]: canonicalJson(effective),
      [ANN_SOURCE]: `${input.source.file}:${input.source.line}`,
      ...(ctx.revision ? { [ANN_REVISION]: ctx.revision } : {}),
    },
    linux: {
      cgroupParent: "",
      sysctls: Object.fromEntries((podSc.sysctls ?? []).map((s) => [s.name, s.value])),
      securityContext: {
        namespaceOptions: nsOptions,
        privileged: privilegedPod,
        runAsUser: podSc.runAsUser !== undefined ? { value: String(podSc.runAsUser) } : null,
        runAsGroup: podSc.runAsGroup !== undefined ? { value: String(podSc.runAsGroup) } : null,
        supplementalGroups: supplementalGroups(podSc).map(String),
      },
    },
  };

  const toDesired = (c: ReturnType<typeof effectiveContainer>): DesiredContainer => {
    const mounts: cri.CriRequest<cri.Mount>[] = (c.container.volumeMounts ?? []).map((m) => {
      const vol = volumeSources.find((v) => v.name === m.name);
      if (!vol) throw new InvalidArgumentError(`${c.field}.volumeMounts: volume "${m.name}" is not declared in ${field}.volumes`);
      const hostPath = m.subPath ? join(vol.hostPath, safeSubPath(m.subPath, `${c.field}.volumeMounts`)) : vol.hostPath;
      return { containerPath: m.mountPath, hostPath, readonly: m.readOnly === true || vol.kind === "configMap", propagation: "PROPAGATION_PRIVATE" };
    });
    const eff = c.effective;
    const config: cri.CriRequest<cri.ContainerConfig> = {
      metadata: { name: c.container.name, attempt: 0 },
      image: { image: eff.image },
      command: eff.command,
      args: eff.args,
      workingDir: eff.workingDir,
      envs: eff.env.map((e) => ({ key: e.key, value: Buffer.from(e.value) })),
      mounts,
      labels: {
        ...managed,
        "io.kubernetes.container.name": c.container.name,
        "io.kubernetes.pod.name": name,
        "io.kubernetes.pod.namespace": namespace,
        "io.kubernetes.pod.uid": uid,
      },
      annotations: { ...(c.init ? { [ANN_INIT]: "true" } : {}), [ANN_HASH]: specHash(eff) },
      stdin: c.container.stdin === true,
      stdinOnce: c.container.stdinOnce === true,
      tty: c.container.tty === true,
      linux: {
        resources: c.resources,
        securityContext: containerSecurity(c.container.securityContext, podSc, nsOptions, ctx, c.field),
      },
    };
    const namedPorts: Record<string, number> = {};
    for (const p of c.container.ports ?? []) if (p.name) namedPorts[p.name] = p.containerPort;
    return {
      name: c.container.name,
      init: c.init,
      image: eff.image,
      pullPolicy: eff.imagePullPolicy,
      config,
      liveness: c.init ? undefined : c.container.livenessProbe,
      readiness: c.init ? undefined : c.container.readinessProbe,
      startup: c.init ? undefined : c.container.startupProbe,
      namedPorts,
    };
  };

  return {
    owner: input.owner,
    namespace,
    name,
    uid,
    source: input.source,
    sandbox,
    initContainers: initContainers.map(toDesired),
    containers: containers.map(toDesired),
    volumes: volumeSources,
    restartPolicy,
    gracePeriodSeconds: effective.terminationGracePeriodSeconds,
    hostNetwork,
    hostPorts,
    effective,
    hash,
  };
}

function effectiveContainer(c: V1Container, init: boolean, field: string, input: PodInput, ctx: PodBuildContext) {
  const env = resolveEnv(c, input.namespace, field, ctx.configMaps);
  const vars = new Map(env.map((e) => [e.key, e.value]));
  const lookup = (n: string) => vars.get(n);
  const resources = resourcesOf(c, field);
  const effective = {
    name: c.name,
    image: c.image!,
    imagePullPolicy: (c.imagePullPolicy ?? defaultPullPolicy(c.image!)) as PullPolicy,
    command: (c.command ?? []).map((s) => expand(s, lookup)),
    args: (c.args ?? []).map((s) => expand(s, lookup)),
    workingDir: c.workingDir ?? "",
    env,
    ports: c.ports ?? [],
    volumeMounts: c.volumeMounts ?? [],
    resources: c.resources ?? {},
    securityContext: c.securityContext ?? {},
    probes: init ? {} : { liveness: probeOf(c.livenessProbe), readiness: probeOf(c.readinessProbe), startup: probeOf(c.startupProbe) },
    stdin: c.stdin === true,
    tty: c.tty === true,
  };
  return { container: c, init, field, effective, resources };
}

function probeOf(p: V1Probe | undefined): V1Probe | undefined {
  return p ? { ...p } : undefined;
}

/** Kubernetes' default: Always for :latest or no tag, IfNotPresent otherwise (digests included). */
export function defaultPullPolicy(image: string): PullPolicy {
  if (image.includes("@")) return "IfNotPresent";
  const last = image.slice(image.lastIndexOf("/") + 1);
  const tag = last.includes(":") ? last.slice(last.indexOf(":") + 1) : "";
  return tag === "" || tag === "latest" ? "Always" : "IfNotPresent";
}

function resourcesOf(c: V1Container, field: string): cri.CriRequest<cri.LinuxContainerResources> {
  const limits = c.resources?.limits ?? {};
  // A limit without a request requests the limit, as the API server defaults it.
  const requests = { ...limits, ...(c.resources?.requests ?? {}) };
  const out: cri.CriRequest<cri.LinuxContainerResources> = {};
  const f = `${field}.resources`;
  if (requests.cpu !== undefined) out.cpuShares = String(Math.max(2, Math.floor((milliCpu(requests.cpu, `${f}.requests.cpu`) * 1024) / 1000)));
  else out.cpuShares = "2";
  if (limits.cpu !== undefined) {
    out.cpuPeriod = String(CPU_PERIOD);
    out.cpuQuota = String(Math.max(1000, (milliCpu(limits.cpu, `${f}.limits.cpu`) * CPU_PERIOD) / 1000));
  }
  if (limits.memory !== undefined) out.memoryLimitInBytes = String(bytesOf(limits.memory, `${f}.limits.memory`));
  out.oomScoreAdj = String(qosOomScoreAdj(requests, limits, f));
  return out;
}

/**
 * kubelet's QoS oom_score_adj: Guaranteed -997, BestEffort 1000, Burstable in between by memory
 * request. The node size is not known here; berth uses the host's memory, as kubelet does.
 */
function qosOomScoreAdj(requests: Record<string, string | number>, limits: Record<string, string | number>, field: string): number {
  if (requests.cpu === undefined && requests.memory === undefined) return 1000;
  const guaranteed = ["cpu", "memory"].every((r) => limits[r] !== undefined && requests[r] !== undefined && String(limits[r]) === String(requests[r]));
  if (guaranteed) return -997;
  const mem = requests.memory !== undefined ? bytesOf(requests.memory, `${field}.requests.memory`) : 0;
  const total = hostMemory();
  const adj = 1000 - Math.floor((1000 * mem) / total);
  return Math.min(999, Math.max(2, adj));
}

let memTotal: number | undefined;
function hostMemory(): number {
  if (memTotal === undefined) memTotal = Number(process.availableMemory?.() ?? 0) || 8 * 2 ** 30;
  return memTotal;
}

function supplementalGroups(podSc: NonNullable<V1PodSpec["securityContext"]>): number[] {
  const groups = [...(podSc.supplementalGroups ?? [])];
  // kubelet adds fsGroup to every container's groups so that volume files owned by it are usable.
  if (podSc.fsGroup !== undefined && !groups.includes(podSc.fsGroup)) groups.push(podSc.fsGroup);
  return groups;
}

function containerSecurity(
  sc: V1SecurityContext | undefined,
  podSc: NonNullable<V1PodSpec["securityContext"]>,
  namespaceOptions: cri.CriRequest<cri.NamespaceOption>,
  ctx: PodBuildContext,
  field: string,
): cri.CriRequest<cri.LinuxContainerSecurityContext> {
  const runAsUser = sc?.runAsUser ?? podSc.runAsUser;
  const runAsGroup = sc?.runAsGroup ?? podSc.runAsGroup;
  const nonRoot = sc?.runAsNonRoot ?? podSc.runAsNonRoot;
  if (nonRoot && runAsUser === 0) throw new InvalidArgumentError(`${field}.securityContext: runAsNonRoot is true but runAsUser is 0`);
  const profile = sc?.seccompProfile ?? podSc.seccompProfile;
  // Berth confines containers with the default profile unless told otherwise (podman's choice,
  // and kubelet's with --seccomp-default); `Unconfined` is one line away.
  let seccomp: cri.CriRequest<cri.SecurityProfile> = { profileType: "RuntimeDefault" };
  if (profile?.type === "Unconfined") seccomp = { profileType: "Unconfined" };
  else if (profile?.type === "Localhost") {
    const p = profile.localhostProfile ?? "";
    if (!p) throw new InvalidArgumentError(`${field}.securityContext.seccompProfile.localhostProfile: required for type Localhost`);
    seccomp = { profileType: "Localhost", localhostRef: isAbsolute(p) ? p : join(ctx.seccompDir, safeSubPath(p, `${field}.securityContext.seccompProfile.localhostProfile`)) };
  }
  return {
    capabilities: { addCapabilities: sc?.capabilities?.add ?? [], dropCapabilities: sc?.capabilities?.drop ?? [] },
    privileged: sc?.privileged === true,
    namespaceOptions,
    runAsUser: runAsUser !== undefined ? { value: String(runAsUser) } : null,
    runAsGroup: runAsGroup !== undefined ? { value: String(runAsGroup) } : null,
    readonlyRootfs: sc?.readOnlyRootFilesystem === true,
    supplementalGroups: supplementalGroups(podSc).map(String),
    noNewPrivs: sc?.allowPrivilegeEscalation === false,
    seccomp,
  };
}

function safeSubPath(p: string, field: string): string {
  const n = normalize(p);
  if (isAbsolute(n) || n === ".." || n.startsWith("../")) throw new InvalidArgumentError(`${field}: "${p}" must be a relative path that stays inside`);
  return n;
}

interface VolumeInput {
  name: string;
  effective: Record<string, unknown>;
  source(hostDir: string): VolumeSource;
}

function volumeInputs(input: PodInput, ctx: PodBuildContext): VolumeInput[] {
  return (input.spec.volumes ?? []).map((v, i): VolumeInput => {
    const field = `${input.field}.volumes[${i}]`;
    if (v.hostPath) {
      const path = v.hostPath.path;
      if (!isAbsolute(path)) throw new InvalidArgumentError(`${field}.hostPath.path: "${path}" must be absolute`);
      const type = v.hostPath.type ?? "";
      return { name: v.name, effective: { name: v.name, hostPath: { path, type } }, source: () => ({ kind: "hostPath", name: v.name, hostPath: path, type }) };
    }
    if (v.configMap) {
      const ref = v.configMap;
      const cm = ctx.configMaps(input.namespace, ref.name!);
      if (!cm && !ref.optional) throw new InvalidArgumentError(`${field}.configMap: ConfigMap ${input.namespace}/${ref.name} is not defined in the folder`);
      const mode = ref.defaultMode ?? 0o644;
      const all: Record<string, Buffer> = {};
      for (const [k, s] of Object.entries(cm?.data ?? {})) all[k] = Buffer.from(s);
      for (const [k, s] of Object.entries(cm?.binaryData ?? {})) all[k] = Buffer.from(s, "base64");
      const files: Record<string, { data: Buffer; mode: number }> = {};
      if (ref.items?.length) {
        for (const [j, item] of ref.items.entries()) {
          const data = all[item.key];
          if (data === undefined) {
            if (ref.optional) continue;
            throw new InvalidArgumentError(`${field}.configMap.items[${j}]: ConfigMap ${input.namespace}/${ref.name} has no key "${item.key}"`);
          }
          files[safeSubPath(item.path, `${field}.configMap.items[${j}].path`)] = { data, mode: item.mode ?? mode };
        }
      } else for (const [k, data] of Object.entries(all)) files[safeSubPath(k, `${field}.configMap`)] = { data, mode };
      const digests = Object.fromEntries(Object.entries(files).map(([p, f]) => [p, { sha256: createHash("sha256").update(f.data).digest("hex"), mode: f.mode }]));
      return { name: v.name, effective: { name: v.name, configMap: { name: ref.name, files: digests } }, source: (hostPath) => ({ kind: "configMap", name: v.name, hostPath, files }) };
    }
    if (v.emptyDir) {
      return { name: v.name, effective: { name: v.name, emptyDir: { medium: v.emptyDir.medium ?? "" } }, source: (hostPath) => ({ kind: "emptyDir", name: v.name, hostPath }) };
    }
    throw new InvalidArgumentError(`${field}: volume "${v.name}" has no source berth supports (hostPath, emptyDir, configMap)`);
  });
}
