// The reconciler's domain types: what a folder of manifests says (ManifestSet), what berth made of
// it (DesiredPod), what runs (ActualPod), the plan between them and what berth reports about each
// object. Implementations live beside this file: load/ reads the folder, desired/ builds pods from
// objects, plan.ts diffs, apply.ts acts, pod-worker.ts keeps one pod true.
import type { V1ConfigMap, V1Deployment, V1Pod, V1Probe } from "@kubernetes/client-node";
import type { ContainerConfig, CriRequest, PodSandboxConfig } from "../runtime/api/cri-v1";
import type { RuntimeService } from "../runtime/api/runtime";

export type ManifestKind = "Pod" | "ConfigMap" | "Deployment";

/** kind/namespace/name: what makes an object unique, as in Kubernetes. */
export interface ObjectKey {
  kind: ManifestKind;
  namespace: string;
  name: string;
}

export function keyString(k: ObjectKey): string {
  return `${k.kind}/${k.namespace}/${k.name}`;
}

/** A place in a manifest file; line and column are 1-based, file is relative to the folder. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/** A problem found in the folder, precise enough for a person to fix it. */
export interface Diagnostic extends SourcePosition {
  /** Dotted path of the failing field (`spec.containers[0].image`); "" for a YAML syntax error. */
  field: string;
  message: string;
  /** The object concerned, when the document got far enough to name one. */
  object?: ObjectKey;
}

/** `file:line:col: field: message`, as berth prints a diagnostic everywhere. */
export function diagnosticText(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.field ? `${d.field}: ` : ""}${d.message}`;
}

export type ManifestBody = V1Pod | V1ConfigMap | V1Deployment;

export interface ManifestObject<T extends ManifestBody = ManifestBody> {
  key: ObjectKey;
  /** Where the object's document starts. */
  source: SourcePosition;
  body: T;
}

/** Everything one read of the folder produced. */
export interface ManifestSet {
  /** The folder as given (possibly a symlink that git-sync swaps). */
  root: string;
  /** The directory actually read (the symlink's target at the time of the read). */
  resolvedRoot: string;
  /** The git-sync worktree's commit when the folder is one (`.worktrees/<hash>`), else undefined. */
  revision?: string;
  /** Valid objects from files without errors; of duplicates only the kept one. */
  objects: ManifestObject[];
  diagnostics: Diagnostic[];
  /**
   * Files (relative paths) with at least one error. Nothing from them is applied: the objects
   * they declared at the last good read keep running as last applied.
   */
  brokenFiles: string[];
}


export type RestartPolicy = "Always" | "OnFailure" | "Never";
export type PullPolicy = "Always" | "IfNotPresent" | "Never";

/** A host directory a pod's volume needs before its containers start. */
export type VolumeSource =
  | { kind: "emptyDir"; name: string; hostPath: string }
  | { kind: "configMap"; name: string; hostPath: string; files: Record<string, { data: Buffer; mode: number }> }
  | { kind: "hostPath"; name: string; hostPath: string; type: string };

export interface DesiredContainer {
  name: string;
  init: boolean;
  image: string;
  pullPolicy: PullPolicy;
  /** The CRI config without attempt and log path, which each (re)start sets. */
  config: CriRequest<ContainerConfig>;
  liveness?: V1Probe;
  readiness?: V1Probe;
  startup?: V1Probe;
  /** Container ports by name, for probes that name a port. */
  namedPorts: Record<string, number>;
}

/** A host port a pod takes: a hostPort mapping, or a port of a host-network pod's container. */
export interface HostPortClaim {
  protocol: string;
  port: number;
  /** "" for every address of the host. */
  ip: string;
  /** The manifest field that asks for it (`spec.containers[0].ports[0].hostPort`). */
  field: string;
}

/** One pod berth means to run: from a Pod object, or one replica of a Deployment. */
export interface DesiredPod {
  /** The manifest object it comes from. */
  owner: ObjectKey;
  namespace: string;
  name: string;
  /** Derived from owner and hash: a changed spec is a new pod, as in Kubernetes. */
  uid: string;
  source: SourcePosition;
  sandbox: CriRequest<PodSandboxConfig>;
  initContainers: DesiredContainer[];
  containers: DesiredContainer[];
  volumes: VolumeSource[];
  restartPolicy: RestartPolicy;
  gracePeriodSeconds: number;
  hostNetwork: boolean;
  /** The host ports it takes (admission: host-ports.ts). */
  hostPorts: HostPortClaim[];
  /** The whole effective spec, as compared and stored in the pod's `berth.io/applied` annotation. */
  effective: Record<string, unknown>;
  /** Hash of `effective` (16 hex digits), kept in `berth.io/spec-hash`. */
  hash: string;
}

export interface DesiredDeployment {
  key: ObjectKey;
  source: SourcePosition;
  replicas: number;
  strategy: { type: "RollingUpdate"; maxSurge: number; maxUnavailable: number } | { type: "Recreate" };
  minReadySeconds: number;
  /** Hash of the pod template's effective spec; it names the replicas (`NAME-HASH-N`). */
  templateHash: string;
  /** The replicas of the current template, index i named `NAME-HASH-i`. */
  pods: DesiredPod[];
}

/** The desired state of the whole folder. */
export interface DesiredState {
  /** Pods from Pod objects. */
  pods: DesiredPod[];
  deployments: DesiredDeployment[];
  /** Objects that could not be turned into pods (a missing ConfigMap, a bad quantity). */
  diagnostics: Diagnostic[];
  /** Keys whose objects are kept as they run (their file is broken, or building them failed). */
  frozen: ObjectKey[];
  revision?: string;
}

/** Labels and annotations that mark what berth manages and what it applied. */
export const LABEL_MANAGED = "berth.io/managed-by";
export const LABEL_OWNER_KIND = "berth.io/owner-kind";
export const LABEL_OWNER_NAME = "berth.io/owner-name";
export const LABEL_OWNER_NAMESPACE = "berth.io/owner-namespace";
export const LABEL_TEMPLATE_HASH = "pod-template-hash";
export const ANN_HASH = "berth.io/spec-hash";
export const ANN_APPLIED = "berth.io/applied";
export const ANN_SOURCE = "berth.io/source";
export const ANN_REVISION = "berth.io/revision";
export const ANN_INIT = "berth.io/init-container";

/** Image pulls as the reconciler needs them: present or not, pull with progress. */
export interface ImagePuller {
  present(image: string): Promise<boolean>;
  pull(image: string, onProgress?: (p: { current: number; total: number }) => void): Promise<void>;
}

/** What the reconciler drives: berth's runtime in-process, or any CRI endpoint (remote mode). */
export interface ReconcilerBackend {
  runtime: RuntimeService;
  images: ImagePuller;
  /** "in-process" or the endpoint, for status output. */
  describe: string;
}
