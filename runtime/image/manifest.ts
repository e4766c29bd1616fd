// Parsing of manifests, indexes and configs fetched from a registry or read from an archive.
// Whatever comes in is untrusted: every shape problem becomes an error naming where it came from.
import { DataLossError, InvalidArgumentError } from "../errors";
import { type Descriptor, type ImageConfigFile, type Index, INDEX_MEDIA_TYPES, type Manifest, MANIFEST_MEDIA_TYPES, MediaType } from "./types";

export type ParsedManifest = { kind: "index"; index: Index; mediaType: string } | { kind: "manifest"; manifest: Manifest; mediaType: string };

const DOCKER_SCHEMA1 = ["application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws"];

function parseJson(data: Uint8Array, where: string): Record<string, unknown> {
  try {
    const v = JSON.parse(Buffer.from(data).toString("utf8"));
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch (err) {
    throw new DataLossError(`${where}: not valid JSON (${(err as Error).message})`);
  }
  throw new DataLossError(`${where}: expected a JSON object`);
}

export function checkDescriptor(d: unknown, where: string): Descriptor {
  const o = d as Partial<Descriptor> | null;
  if (!o || typeof o !== "object") throw new DataLossError(`${where}: descriptor is not an object`);
  if (typeof o.mediaType !== "string") throw new DataLossError(`${where}: descriptor has no mediaType`);
  if (typeof o.digest !== "string" || !/^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/.test(o.digest)) {
    throw new DataLossError(`${where}: descriptor digest "${String(o.digest)}" is not a sha256/sha512 digest`);
  }
  if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size < 0) throw new DataLossError(`${where}: descriptor ${o.digest} has an invalid size`);
  return o as Descriptor;
}

/** `headerType` is the Content-Type the registry sent (or the descriptor's media type). */
export function parseManifestOrIndex(data: Uint8Array, headerType: string | undefined, where: string): ParsedManifest {
  const o = parseJson(data, where);
  const mediaType = (typeof o.mediaType === "string" && o.mediaType) || headerType?.split(";")[0]?.trim() || "";
  if (DOCKER_SCHEMA1.includes(mediaType) || o.schemaVersion === 1) {
    throw new InvalidArgumentError(`${where}: Docker image manifest schema 1 is deprecated and not supported; push the image again with a current client`);
  }
  if (o.schemaVersion !== 2) throw new DataLossError(`${where}: unsupported schemaVersion ${String(o.schemaVersion)}`);
  const isIndex = INDEX_MEDIA_TYPES.includes(mediaType) || (!MANIFEST_MEDIA_TYPES.includes(mediaType) && Array.isArray(o.manifests));
  if (isIndex) {
    if (!Array.isArray(o.manifests)) throw new DataLossError(`${where}: index has no manifests array`);
    for (const [i, m] of o.manifests.entries()) checkDescriptor(m, `${where}: manifests[${i}]`);
    return { kind: "index", index: o as unknown as Index, mediaType: mediaType || MediaType.OCIIndex };
  }
  if (!Array.isArray(o.layers)) throw new DataLossError(`${where}: manifest has no layers array`);
  checkDescriptor(o.config, `${where}: config`);
  for (const [i, l] of o.layers.entries()) checkDescriptor(l, `${where}: layers[${i}]`);
  return { kind: "manifest", manifest: o as unknown as Manifest, mediaType: mediaType || MediaType.OCIManifest };
}

export function parseImageConfig(data: Uint8Array, where: string): ImageConfigFile {
  const o = parseJson(data, where) as Partial<ImageConfigFile>;
  if (!o.rootfs || !Array.isArray(o.rootfs.diff_ids)) throw new DataLossError(`${where}: image config has no rootfs.diff_ids`);
  for (const d of o.rootfs.diff_ids) {
    if (typeof d !== "string" || !/^sha256:[0-9a-f]{64}$/.test(d)) throw new DataLossError(`${where}: diff_id "${String(d)}" is not a sha256 digest`);
  }
  if (typeof o.os !== "string" || typeof o.architecture !== "string") throw new DataLossError(`${where}: image config lacks os/architecture`);
  return o as ImageConfigFile;
}

/** Layers that are content (not empty/foreign markers), in order. */
export function isLayerMediaType(mediaType: string): boolean {
  return /rootfs\.diff\.tar|image\.layer\.v1\.tar/.test(mediaType);
}
