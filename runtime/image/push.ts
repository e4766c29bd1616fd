// Push: an image from berth's store to a registry — config and layers first (skipped when the
// registry has them), then the manifest under the target's tag.
import { limiter } from "../sync/limit";
import { parseReference } from "./reference";
import type { ContentStore, ImageRecord, ImageReference, RegistryAuth, RegistryClient } from "./types";

export interface PushDeps {
  content: ContentStore;
  clientFor(ref: ImageReference, auth?: RegistryAuth): Promise<RegistryClient>;
  maxConcurrentUploads?: number;
}

/** Returns the digest of the pushed manifest. */
export async function pushImage(deps: PushDeps, image: ImageRecord, target: string, opts: { auth?: RegistryAuth } = {}): Promise<string> {
  const ref = parseReference(target);
  const client = await deps.clientFor(ref, opts.auth);
  const limit = limiter(deps.maxConcurrentUploads ?? 3);
  await Promise.all([image.config, ...image.layers].map((desc) => limit(() => client.pushBlob(ref, desc, () => deps.content.readStream(desc.digest)))));
  const manifest = await deps.content.read(image.manifest.digest);
  return client.pushManifest(ref, image.manifest.mediaType, manifest);
}
