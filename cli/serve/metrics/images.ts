// Image metrics: pulls by result, bytes and duration, pulls under way, resumed and reused layers,
// and what the content store and the snapshotter hold (read at scrape time).
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { PullObserver } from "../../../runtime/image/service";
import type { ContentStore } from "../../../runtime/image/types";
import type { Snapshotter } from "../../../runtime/snapshot/types";

export function imageMetrics(registry: Registry, stores: { content: ContentStore; snapshotter: Snapshotter }): PullObserver {
  const pulls = new Counter({ name: "berth_image_pulls_total", help: "Image pulls by result.", labelNames: ["result"], registers: [registry] });
  const bytes = new Counter({ name: "berth_image_pull_bytes_total", help: "Layer bytes downloaded by pulls.", registers: [registry] });
  const duration = new Histogram({ name: "berth_image_pull_duration_seconds", help: "Time a pull took, download and unpack.", buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers: [registry] });
  const inProgress = new Gauge({ name: "berth_image_pulls_in_progress", help: "Pulls under way.", registers: [registry] });
  const resumes = new Counter({ name: "berth_image_layer_download_resumes_total", help: "Layer downloads continued from where a cut one stopped.", registers: [registry] });
  const reused = new Counter({ name: "berth_image_layers_reused_total", help: "Layers a pull found already in the store.", registers: [registry] });
  for (const r of ["success", "error"]) pulls.inc({ result: r }, 0);
  new Gauge({
    name: "berth_content_store_bytes",
    help: "Bytes of blobs in the content store.",
    registers: [registry],
    async collect() {
      this.set((await stores.content.usage()).bytes);
    },
  });
  new Gauge({
    name: "berth_snapshots",
    help: "Snapshots (image layers and container writable layers).",
    registers: [registry],
    async collect() {
      this.set((await stores.snapshotter.list()).length);
    },
  });
  return {
    started: () => inProgress.inc(),
    finished: (result, seconds) => {
      inProgress.dec();
      pulls.inc({ result });
      duration.observe(seconds);
    },
    layerDownloaded: (n) => bytes.inc(n),
    layerResumed: () => resumes.inc(),
    layerReused: () => reused.inc(),
  };
}
