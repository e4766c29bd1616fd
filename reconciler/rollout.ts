// One step of a Deployment's rollout, as the Deployment controller takes it, over the replicas
// that exist now: scale the current template's replicas up within maxSurge, take old ones down
// while at least replicas - maxUnavailable stay ready (not-ready old ones first), and remove
// replicas above the count. Recreate removes every old replica before making new ones. Called
// again whenever a replica's readiness changes, until nothing is left to do.
import type { DesiredDeployment, DesiredPod } from "./types";

export interface Replica {
  uid: string;
  name: string;
  templateHash: string;
  ready: boolean;
}

export interface RolloutStep {
  create: DesiredPod[];
  remove: Replica[];
  /** Every replica is of the current template, none is missing or extra. */
  complete: boolean;
}

export function rolloutStep(d: DesiredDeployment, replicas: Replica[]): RolloutStep {
  const wanted = new Set(d.pods.map((p) => p.uid));
  const current = replicas.filter((r) => wanted.has(r.uid));
  // Same template but not one of the wanted names: left over from a scale-down.
  const extra = replicas.filter((r) => !wanted.has(r.uid) && r.templateHash === d.templateHash);
  const old = replicas.filter((r) => !wanted.has(r.uid) && r.templateHash !== d.templateHash);
  const have = new Set(current.map((r) => r.uid));
  const missing = d.pods.filter((p) => !have.has(p.uid));
  const remove: Replica[] = [...extra];
  let create: DesiredPod[] = [];

  if (d.strategy.type === "Recreate") {
    if (old.length) remove.push(...old);
    else create = missing;
  } else {
    const { maxSurge, maxUnavailable } = d.strategy;
    const room = d.replicas + maxSurge - (current.length + old.length);
    create = old.length ? missing.slice(0, Math.max(0, room)) : missing;
    const minAvailable = d.replicas - maxUnavailable;
    let removable = current.filter((r) => r.ready).length + old.filter((r) => r.ready).length - minAvailable;
    const oldByReadiness = [...old.filter((r) => !r.ready), ...old.filter((r) => r.ready)];
    for (const r of oldByReadiness) {
      if (!r.ready) remove.push(r);
      else if (removable > 0) {
        remove.push(r);
        removable--;
      }
    }
  }
  return { create, remove, complete: old.length === 0 && extra.length === 0 && missing.length === 0 };
}
