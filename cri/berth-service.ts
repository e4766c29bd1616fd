// berth.v1.Berth: what the CLI needs and CRI has no RPC for: a pull that streams its progress,
// importing an OCI layout or archive from the daemon's filesystem, and pushing to a registry.
import { InvalidArgumentError } from "../runtime/errors";
import type { ImageService } from "../runtime/image/types";
import { authFromCri, requireImageName, toCriImage } from "./images";
import type { ServiceHandlers } from "./server";
import type { AuthConfig, ImageSpec, Request } from "./types";

export function berthHandlers(images: ImageService): ServiceHandlers {
  return {
    unary: {
      ImportImage: async (req: { path?: string; name?: string }) => {
        if (!req.path) throw new InvalidArgumentError("ImportImage: path is required (an OCI layout directory or an OCI/Docker archive tar on the daemon's host)");
        const imported = await images.importArchive(req.path, req.name ? { name: req.name } : undefined);
        return { images: imported.map(toCriImage) };
      },
      PushImage: async (req: { image?: string; target?: string; auth?: Request<AuthConfig> | null }) => {
        if (!req.image) throw new InvalidArgumentError("PushImage: image is required");
        const digest = await images.push(req.image, req.target || undefined, { auth: authFromCri(req.auth) });
        return { digest };
      },
    },
    stream: {
      PullImageWithProgress: async (req: { image?: Request<ImageSpec> | null; auth?: Request<AuthConfig> | null }, write, signal) => {
        const name = requireImageName(req.image, "PullImageWithProgress");
        let last = 0;
        const img = await images.pull(name, {
          auth: authFromCri(req.auth),
          signal,
          onProgress: (ev) => {
            // Byte progress is throttled to ~10 messages a second; state changes always go out.
            const now = Date.now();
            if (ev.kind === "layer-progress" && now - last < 100) return;
            last = now;
            write({ kind: ev.kind, digest: ev.digest ?? "", current: String(ev.current ?? 0), total: String(ev.total ?? 0), resumedFrom: String(ev.resumedFrom ?? 0), imageRef: "" });
          },
        });
        write({ kind: "done", digest: img.manifest.digest, current: String(img.size), total: String(img.size), resumedFrom: "0", imageRef: img.id });
      },
    },
  };
}
