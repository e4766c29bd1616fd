// How a pulled or imported image becomes the record berth keeps.
import { chainIds } from "./chain";
import { isLayerMediaType } from "./manifest";
import { normalizePlatform } from "./platform";
import { formatReference, repositoryName } from "./reference";
import type { Descriptor, ImageConfigFile, ImageRecord, ImageReference, Manifest } from "./types";

export function contentLayers(manifest: Manifest): Descriptor[] {
  return manifest.layers.filter((l) => isLayerMediaType(l.mediaType));
}

export function imageRecord(opts: {
  ref: ImageReference | undefined;
  /** Digest the reference resolved to (an index or the manifest itself). */
  topDigest: string;
  manifestDesc: Descriptor;
  manifest: Manifest;
  config: ImageConfigFile;
}): ImageRecord {
  const { ref, manifestDesc, manifest, config } = opts;
  const layers = contentLayers(manifest);
  return {
    id: manifest.config.digest,
    repoTags: ref?.tag && !ref.digest ? [formatReference(ref)] : [],
    repoDigests: ref ? [`${repositoryName(ref)}@${opts.topDigest}`] : [],
    manifest: manifestDesc,
    config: manifest.config,
    layers,
    diffIds: config.rootfs.diff_ids,
    chainIds: chainIds(config.rootfs.diff_ids),
    size: manifestDesc.size + manifest.config.size + layers.reduce((n, l) => n + l.size, 0),
    runConfig: config.config ?? {},
    platform: normalizePlatform({ os: config.os, architecture: config.architecture, variant: config.variant }),
    createdAt: Date.now(),
    pinned: false,
  };
}
