// The daemon's Prometheus registry: Node's process metrics and berth's own, area by area. Every
// name starts with berth_, uses base units, and counters end in _total; label sets are bounded
// (no digests or ids on histograms).
import { collectDefaultMetrics, Registry } from "prom-client";

/**
 * prom-client's totals of its per-type gauges (nodejs_active_handles by type and so on) carry a
 * counter's suffix, which promtool rejects; the per-type gauges say the same.
 */
const MISNAMED = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

export function newRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "berth_" });
  for (const name of MISNAMED) registry.removeSingleMetric(`berth_${name}`);
  return registry;
}

export { criMetrics } from "./cri";
export { imageMetrics } from "./images";
export { podMetrics } from "./pods";
