// The reconciler's backend inside the daemon: berth's own runtime and image service, no gRPC.
import type { RuntimeService } from "../runtime/api/runtime";
import type { ImageService } from "../runtime/image/types";
import type { ReconcilerBackend } from "./types";

export function localBackend(runtime: RuntimeService, images: ImageService): ReconcilerBackend {
  return {
    runtime,
    describe: "in-process",
    images: {
      present: async (image) => (await images.get(image)) !== undefined,
      pull: async (image, onProgress) => {
        const layers = new Map<string, { current: number; total: number }>();
        await images.pull(image, {
          onProgress: (ev) => {
            if (!ev.digest || ev.total === undefined) return;
            layers.set(ev.digest, { current: ev.kind === "layer-done" || ev.kind === "layer-exists" ? ev.total : (ev.current ?? 0), total: ev.total });
            let current = 0;
            let total = 0;
            for (const l of layers.values()) {
              current += l.current;
              total += l.total;
            }
            onProgress?.({ current, total });
          },
        });
      },
    },
  };
}
