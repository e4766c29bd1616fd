// Reconciler metrics: pass duration, objects by sync and health state, what it did (applies,
// prunes, drift repairs) by kind, errors by reason, the last successful sync, watch events, and
// containers waiting in back-off.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Reconciler } from "../../../reconciler/reconciler";

const ACTIONS: Record<string, string> = { Creating: "apply", Replacing: "apply", DriftRepaired: "drift_repair" };
const ERRORS = new Set(["SyncFailed", "InvalidManifest", "InvalidObject", "ReconcileFailed", "PruneFailed", "WatchFailed", "KillFailed"]);

export function reconcilerMetrics(registry: Registry, r: Reconciler): void {
  const duration = new Histogram({ name: "berth_reconcile_duration_seconds", help: "Time of one reconcile pass (read the folder, converge).", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] });
  const passes = new Counter({ name: "berth_reconcile_passes_total", help: "Reconcile passes by result.", labelNames: ["result"], registers: [registry] });
  const actions = new Counter({ name: "berth_reconciler_actions_total", help: "What the reconciler did, by object kind and action (apply, prune, drift_repair).", labelNames: ["kind", "action"], registers: [registry] });
  const errors = new Counter({ name: "berth_reconciler_errors_total", help: "Reconciler errors by reason.", labelNames: ["reason"], registers: [registry] });
  const watch = new Counter({ name: "berth_reconciler_watch_events_total", help: "Changes the folder watch reported (debounced).", registers: [registry] });
  const last = new Gauge({ name: "berth_reconciler_last_success_timestamp_seconds", help: "When the last reconcile pass succeeded (Unix time).", registers: [registry] });
  for (const res of ["success", "error"]) passes.inc({ result: res }, 0);
  for (const kind of ["Pod", "Deployment"]) for (const action of ["apply", "prune", "drift_repair"]) actions.inc({ kind, action }, 0);
  for (const reason of ERRORS) errors.inc({ reason }, 0);
  new Gauge({
    name: "berth_reconciler_objects",
    help: "Objects from the folder by kind, sync state and health.",
    labelNames: ["kind", "sync", "health"],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const s of r.status()) counts.set(`${s.kind}|${s.sync}|${s.health}`, (counts.get(`${s.kind}|${s.sync}|${s.health}`) ?? 0) + 1);
      for (const [k, n] of counts) {
        const [kind, sync, health] = k.split("|");
        this.set({ kind: kind!, sync: sync!, health: health! }, n);
      }
    },
  });
  new Gauge({
    name: "berth_reconciler_backoff_containers",
    help: "Containers waiting in crash-loop back-off.",
    registers: [registry],
    collect() {
      let n = 0;
      for (const s of r.status()) for (const p of s.pods) n += (p.message.match(/CrashLoopBackOff/g) ?? []).length;
      this.set(n);
    },
  });
  r.onPass = (seconds, ok) => {
    duration.observe(seconds);
    passes.inc({ result: ok ? "success" : "error" });
    if (ok) last.set(Date.now() / 1000);
  };
  r.book.onEvent((e) => {
    const kind = e.object?.split("/")[0] ?? "";
    // A pod deleted because its object left the folder is a prune; replaced ones are part of an apply.
    const action = e.reason === "Deleted" && /no longer in the folder/.test(e.message) ? "prune" : ACTIONS[e.reason];
    if (action && (kind === "Pod" || kind === "Deployment")) actions.inc({ kind, action });
    if (ERRORS.has(e.reason)) errors.inc({ reason: e.reason });
    if (e.reason === "FolderChanged") watch.inc();
  });
}
