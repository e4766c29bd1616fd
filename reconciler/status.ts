// What berth says about each object and what it did: the status book behind `berth status`,
// /api/v1/objects and /api/v1/events. Every event is also a structured log line.
import type { Logger } from "../runtime/log";
import { type Diagnostic, keyString, type ObjectKey } from "./types";

export type SyncState = "Synced" | "OutOfSync";
export type Health = "Healthy" | "Progressing" | "Degraded";

export interface PodView {
  name: string;
  uid: string;
  sandboxId?: string;
  phase: "Pending" | "Running" | "Succeeded" | "Failed";
  ready: boolean;
  restarts: number;
  /** Why it is not running or not ready (image pull, back-off, probe, error). */
  message: string;
  /** True when something is wrong rather than merely under way. */
  degraded: boolean;
  pull?: { image: string; current: number; total: number };
}

export interface ObjectStatus {
  kind: ObjectKey["kind"];
  namespace: string;
  name: string;
  source?: string;
  sync: SyncState;
  health: Health;
  message: string;
  /** The folder revision (git-sync worktree hash) this object was last applied from. */
  revision?: string;
  lastAppliedAt?: string;
  lastError?: { message: string; file?: string; line?: number; column?: number; field?: string; time: string };
  restarts: number;
  drift: number;
  lastDrift?: { message: string; time: string };
  replicas?: { desired: number; current: number; updated: number; ready: number };
  pods: PodView[];
}

export interface ReconcileEvent {
  time: string;
  level: "info" | "warn" | "error";
  reason: string;
  object?: string;
  message: string;
}

const MAX_EVENTS = 1000;
const DRIFT_COALESCE_MS = 1000;

export class StatusBook {
  private readonly objects = new Map<string, ObjectStatus>();
  private readonly events: ReconcileEvent[] = [];
  private readonly lastDriftAt = new Map<string, number>();
  private readonly listeners: Array<(e: ReconcileEvent) => void> = [];

  /** Calls `fn` with every event from now on (metrics). */
  onEvent(fn: (e: ReconcileEvent) => void): void {
    this.listeners.push(fn);
  }

  constructor(private readonly log: Logger) {}

  get(key: ObjectKey): ObjectStatus | undefined {
    return this.objects.get(keyString(key));
  }

  /** The object's status, created empty when it is new. */
  entry(key: ObjectKey): ObjectStatus {
    const k = keyString(key);
    let s = this.objects.get(k);
    if (!s) {
      s = { kind: key.kind, namespace: key.namespace, name: key.name, sync: "OutOfSync", health: "Progressing", message: "", restarts: 0, drift: 0, pods: [] };
      this.objects.set(k, s);
    }
    return s;
  }

  remove(key: ObjectKey): void {
    this.objects.delete(keyString(key));
  }

  list(): ObjectStatus[] {
    return [...this.objects.values()].sort((a, b) => keyString(a).localeCompare(keyString(b)));
  }

  keys(): ObjectKey[] {
    return this.list().map((s) => ({ kind: s.kind, namespace: s.namespace, name: s.name }));
  }

  event(level: ReconcileEvent["level"], reason: string, object: ObjectKey | undefined, message: string, fields: Record<string, unknown> = {}): void {
    const e: ReconcileEvent = { time: new Date().toISOString(), level, reason, object: object ? keyString(object) : undefined, message };
    this.events.push(e);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    this.log[level](message, { reason, ...(object ? { object: e.object } : {}), ...fields });
    for (const l of this.listeners) l(e);
  }

  error(key: ObjectKey, message: string, where?: Partial<Diagnostic>): void {
    const s = this.entry(key);
    s.lastError = { message, file: where?.file, line: where?.line, column: where?.column, field: where?.field, time: new Date().toISOString() };
  }

  /**
   * Records what was changed behind berth's back. One outside action is often seen as several
   * steps (crictl rmp stops the containers, then the sandbox, then removes it): drifts of the
   * same pod within a second count once.
   */
  drift(key: ObjectKey, message: string, pod?: string): void {
    const s = this.entry(key);
    const now = Date.now();
    const k = `${keyString(key)}/${pod ?? ""}`;
    if ((this.lastDriftAt.get(k) ?? 0) < now - DRIFT_COALESCE_MS) s.drift++;
    this.lastDriftAt.set(k, now);
    s.lastDrift = { message, time: new Date(now).toISOString() };
    this.event("warn", "DriftRepaired", key, message);
  }

  /** Clears the object's last error when it came from `prefix` (a pod whose step now succeeds). */
  clearError(key: ObjectKey, prefix: string): void {
    const s = this.objects.get(keyString(key));
    if (s?.lastError?.message.startsWith(prefix)) s.lastError = undefined;
  }

  recentEvents(limit = MAX_EVENTS): ReconcileEvent[] {
    return this.events.slice(-limit);
  }
}
