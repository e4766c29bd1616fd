// The folder's objects → the pods berth means to run. ConfigMaps are inputs only; a Pod is one pod;
// a Deployment is `replicas` pods named NAME-TEMPLATEHASH-N (deterministic names: a daemon killed
// mid-apply finds the replicas it made instead of making more). An object that cannot be built
// (a ConfigMap it needs is missing) is reported and frozen: what runs for it is left alone.
import type { V1ConfigMap, V1Deployment, V1Pod } from "@kubernetes/client-node";
import { BerthError } from "../../runtime/errors";
import { type DesiredDeployment, type DesiredPod, type DesiredState, type Diagnostic, LABEL_TEMPLATE_HASH, type ManifestObject, type ManifestSet, type ObjectKey } from "../types";
import { buildPod, type PodBuildContext } from "./pod";

export type ModelContext = Omit<PodBuildContext, "configMaps" | "revision">;

export function buildDesired(set: ManifestSet, frozenKeys: ObjectKey[], ctx: ModelContext): DesiredState {
  const configMaps = new Map<string, V1ConfigMap>();
  for (const o of set.objects) if (o.key.kind === "ConfigMap") configMaps.set(`${o.key.namespace}/${o.key.name}`, o.body as V1ConfigMap);
  const podCtx: PodBuildContext = { ...ctx, configMaps: (ns, name) => configMaps.get(`${ns}/${name}`), revision: set.revision };
  const state: DesiredState = { pods: [], deployments: [], diagnostics: [], frozen: [...frozenKeys], revision: set.revision };
  for (const o of set.objects) {
    try {
      if (o.key.kind === "Pod") state.pods.push(podFromObject(o as ManifestObject<V1Pod>, podCtx));
      else if (o.key.kind === "Deployment") state.deployments.push(deploymentFromObject(o as ManifestObject<V1Deployment>, podCtx));
    } catch (err) {
      if (!(err instanceof BerthError)) throw err;
      const field = fieldOf(err.message);
      const d: Diagnostic = { ...o.source, field, message: field ? err.message.slice(field.length + 2) : err.message, object: o.key };
      state.diagnostics.push(d);
      state.frozen.push(o.key);
    }
  }
  return state;
}

function fieldOf(message: string): string {
  const m = /^([\w.[\]]+):/.exec(message);
  return m ? m[1]! : "";
}

function podFromObject(o: ManifestObject<V1Pod>, ctx: PodBuildContext): DesiredPod {
  const md = o.body.metadata ?? {};
  return buildPod(
    { owner: o.key, source: o.source, namespace: o.key.namespace, name: o.key.name, labels: md.labels ?? {}, annotations: md.annotations ?? {}, spec: o.body.spec!, field: "spec" },
    ctx,
  );
}

function deploymentFromObject(o: ManifestObject<V1Deployment>, ctx: PodBuildContext): DesiredDeployment {
  const spec = o.body.spec!;
  const tmpl = spec.template;
  const base = {
    owner: o.key,
    source: o.source,
    namespace: o.key.namespace,
    labels: tmpl.metadata?.labels ?? {},
    annotations: tmpl.metadata?.annotations ?? {},
    spec: tmpl.spec!,
    field: "spec.template.spec",
  };
  // The template's hash, independent of replica names: built once under the Deployment's name.
  const templateHash = buildPod({ ...base, name: o.key.name }, ctx).hash.slice(0, 10);
  const replicas = spec.replicas ?? 1;
  const pods: DesiredPod[] = [];
  for (let i = 0; i < replicas; i++) {
    pods.push(buildPod({ ...base, name: `${o.key.name}-${templateHash}-${i}`, labels: { ...base.labels, [LABEL_TEMPLATE_HASH]: templateHash } }, ctx));
  }
  const strategyType = spec.strategy?.type ?? "RollingUpdate";
  const strategy: DesiredDeployment["strategy"] =
    strategyType === "Recreate"
      ? { type: "Recreate" }
      : (() => {
          const ru = spec.strategy?.rollingUpdate ?? {};
          let maxSurge = scaled(ru.maxSurge ?? "25%", replicas, true);
          const maxUnavailable = scaled(ru.maxUnavailable ?? "25%", replicas, false);
          // Both zero cannot make progress; the API server refuses it, berth surges by one.
          if (maxSurge === 0 && maxUnavailable === 0) maxSurge = 1;
          return { type: "RollingUpdate", maxSurge, maxUnavailable };
        })();
  return { key: o.key, source: o.source, replicas, strategy, minReadySeconds: spec.minReadySeconds ?? 0, templateHash, pods };
}

/** An int-or-percent of `total`: surge rounds up, unavailability down, as the Deployment controller does. */
export function scaled(v: number | string, total: number, roundUp: boolean): number {
  if (typeof v === "number") return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m) return Number(v) || 0;
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}
