// Desired vs actual, as `berth diff` prints it and as apply then acts: per object, the pods to
// create, to replace (with the fields that differ from what was applied) and to delete (prune).
// Pure: the actual side is what the runtime listed, read from the labels and the applied-spec
// annotation berth put on each sandbox.
import type * as cri from "../runtime/api/cri-v1";
import { refuseByHostPorts } from "./host-ports";
import { ANN_APPLIED, type DesiredPod, type DesiredState, keyString, LABEL_OWNER_KIND, LABEL_OWNER_NAME, LABEL_OWNER_NAMESPACE, type ObjectKey } from "./types";

export interface ActualPod {
  sandbox: cri.PodSandbox;
  owner: ObjectKey;
  uid: string;
  name: string;
  applied?: Record<string, unknown>;
}

export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

export type PlannedAction =
  | { action: "create"; object: ObjectKey; pod: string }
  | { action: "replace"; object: ObjectKey; pod: string; replaces: string; changes: FieldChange[] }
  | { action: "delete"; object: ObjectKey; pod: string; reason: string }
  /** Not made: admission refuses it (a host port another pod holds). */
  | { action: "refuse"; object: ObjectKey; pod: string; reason: string };

export function actualPods(sandboxes: cri.PodSandbox[]): ActualPod[] {
  const out: ActualPod[] = [];
  for (const s of sandboxes) {
    const kind = s.labels[LABEL_OWNER_KIND];
    if (kind !== "Pod" && kind !== "Deployment") continue;
    let applied: Record<string, unknown> | undefined;
    try {
      applied = s.annotations[ANN_APPLIED] ? JSON.parse(s.annotations[ANN_APPLIED]!) : undefined;
    } catch {
      applied = undefined;
    }
    out.push({
      sandbox: s,
      owner: { kind, namespace: s.labels[LABEL_OWNER_NAMESPACE] ?? "default", name: s.labels[LABEL_OWNER_NAME] ?? "" },
      uid: s.metadata?.uid ?? "",
      name: s.metadata?.name ?? "",
      applied,
    });
  }
  return out;
}

/** Whether a pod of `p`'s namespace and name runs (in any version). */
export function runsNow(actual: ActualPod[]): (p: DesiredPod) => boolean {
  const names = new Set(actual.map((a) => `${a.sandbox.metadata?.namespace ?? ""}/${a.name}`));
  return (p) => names.has(`${p.namespace}/${p.name}`);
}

/** Pods admission refuses (host-ports.ts), by uid, with why. */
export function refusedPods(desired: DesiredState, actual: ActualPod[]): Map<string, string> {
  return refuseByHostPorts([...desired.pods, ...desired.deployments.flatMap((d) => d.pods)], runsNow(actual));
}

/** The whole plan from `actual` to `desired`, Deployments at their end state. */
export function plan(desired: DesiredState, actual: ActualPod[]): PlannedAction[] {
  const out: PlannedAction[] = [];
  const refused = refusedPods(desired, actual);
  const byOwner = new Map<string, ActualPod[]>();
  for (const a of actual) byOwner.set(keyString(a.owner), [...(byOwner.get(keyString(a.owner)) ?? []), a]);
  const frozen = new Set(desired.frozen.map(keyString));
  const owners = new Set<string>();

  const planPods = (owner: ObjectKey, pods: DesiredPod[]) => {
    owners.add(keyString(owner));
    const have = byOwner.get(keyString(owner)) ?? [];
    const wanted = new Set(pods.map((p) => p.uid));
    const stale = have.filter((a) => !wanted.has(a.uid));
    for (const p of pods) {
      if (have.some((a) => a.uid === p.uid)) continue;
      const why = refused.get(p.uid);
      if (why) {
        out.push({ action: "refuse", object: owner, pod: p.name, reason: why });
        // What runs in its place stays until it can be made.
        const i = stale.findIndex((s) => s.name === p.name);
        if (i >= 0) stale.splice(i, 1);
        continue;
      }
      // Pair a new pod with a stale one to show what changed (same name first, as for a Pod).
      const i = Math.max(
        stale.findIndex((s) => s.name === p.name),
        0,
      );
      const old = stale.splice(i, 1)[0];
      if (old) out.push({ action: "replace", object: owner, pod: p.name, replaces: old.name, changes: changedFields(old.applied ?? {}, p.effective) });
      else out.push({ action: "create", object: owner, pod: p.name });
    }
    for (const s of stale) out.push({ action: "delete", object: owner, pod: s.name, reason: "scaled down" });
  };
  for (const p of desired.pods) planPods(p.owner, [p]);
  for (const d of desired.deployments) planPods(d.key, d.pods);
  for (const [k, pods] of byOwner) {
    if (owners.has(k) || frozen.has(k)) continue;
    for (const a of pods) out.push({ action: "delete", object: a.owner, pod: a.name, reason: "no longer in the folder" });
  }
  return out;
}

/** Leaf-level differences between two JSON values, as dotted paths. */
export function changedFields(from: unknown, to: unknown, path = ""): FieldChange[] {
  if (JSON.stringify(from) === JSON.stringify(to)) return [];
  const isObj = (v: unknown) => v !== null && typeof v === "object";
  if (Array.isArray(from) && Array.isArray(to)) {
    // Lists of named things (containers, env, volumes) compare by name; others by index.
    const named = (a: unknown[]) => a.every((x) => isObj(x) && typeof (x as { name?: unknown }).name === "string");
    if (named(from) && named(to) && (from.length || to.length)) {
      const out: FieldChange[] = [];
      const m = new Map(from.map((x) => [(x as { name: string }).name, x]));
      for (const x of to) {
        const n = (x as { name: string }).name;
        out.push(...changedFields(m.get(n), x, `${path}[${n}]`));
        m.delete(n);
      }
      for (const [n, x] of m) out.push({ field: `${path}[${n}]`, from: x, to: undefined });
      return out;
    }
    if (from.every((x) => !isObj(x)) && to.every((x) => !isObj(x))) return [{ field: path, from, to }];
    const out: FieldChange[] = [];
    for (let i = 0; i < Math.max(from.length, to.length); i++) out.push(...changedFields(from[i], to[i], `${path}[${i}]`));
    return out;
  }
  if (isObj(from) && isObj(to) && !Array.isArray(from) && !Array.isArray(to)) {
    const out: FieldChange[] = [];
    const f = from as Record<string, unknown>;
    const t = to as Record<string, unknown>;
    for (const k of new Set([...Object.keys(f), ...Object.keys(t)])) out.push(...changedFields(f[k], t[k], path ? `${path}.${k}` : k));
    return out;
  }
  return [{ field: path, from, to }];
}

export function formatPlan(actions: PlannedAction[]): string {
  if (!actions.length) return "no changes\n";
  const short = (v: unknown) => {
    const s = JSON.stringify(v) ?? "(none)";
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  };
  let out = "";
  for (const a of actions) {
    const obj = keyString(a.object);
    if (a.action === "create") out += `+ create  ${obj}  pod ${a.pod}\n`;
    else if (a.action === "delete") out += `- delete  ${obj}  pod ${a.pod} (${a.reason})\n`;
    else if (a.action === "refuse") out += `! refuse  ${obj}  pod ${a.pod} (${a.reason.replace(/^pod [^:]+: /, "")})\n`;
    else {
      out += `~ replace ${obj}  pod ${a.replaces} -> ${a.pod}\n`;
      for (const c of a.changes) out += `    ${c.field}: ${short(c.from)} -> ${short(c.to)}\n`;
    }
  }
  return out;
}
