// Pull: resolve a reference, pick the platform's manifest, download the blobs into the content
// store (several at once, each verified while it streams, resumed with a Range request after a
// cut) and unpack each layer into a snapshot keyed by its chain ID as soon as it and the layers
// below it are there. Layers whose snapshot already exists are neither downloaded nor unpacked.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { BerthError, Code, codeOf, DataLossError } from "../errors";
import type { Logger } from "../log";
import { type Snapshotter, UNPACKING_LABEL } from "../snapshot/types";
import { SingleFlight } from "../sync/singleflight";
import { limiter } from "../sync/limit";
import { chainIds as computeChainIds } from "./chain";
import { parseImageConfig, parseManifestOrIndex } from "./manifest";
import { normalizePlatform, selectManifest } from "./platform";
import { formatReference, parseReference, repositoryName } from "./reference";
import { contentLayers, imageRecord } from "./record";
import type { ContentStore, Descriptor, ImageRecord, ImageReference, Platform, PullOptions, RegistryAuth, RegistryClient, ResolvedReference } from "./types";
import { applyLayer } from "./unpack";

export interface PullDeps {
  content: ContentStore;
  snapshotter: Snapshotter;
  clientFor(ref: ImageReference, auth?: RegistryAuth): Promise<RegistryClient>;
  platform: Platform;
  /** Layers downloaded at once (default 3). */
  maxConcurrentDownloads: number;
  /** Attempts per blob after a broken transfer (each resumes where the last stopped). */
  blobAttempts: number;
  log: Logger;
  /** Shared between pulls so two images with a common layer fetch and unpack it once. */
  blobFlights: SingleFlight<void>;
  unpackFlights: SingleFlight<void>;
}

export function newPullFlights(): Pick<PullDeps, "blobFlights" | "unpackFlights"> {
  return { blobFlights: new SingleFlight(), unpackFlights: new SingleFlight() };
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Network trouble that a resumed attempt can get past; anything else (404, 401, bad digest twice) is final. */
function isTransient(err: unknown): boolean {
  if (err instanceof BerthError) return err.code === Code.UNAVAILABLE || err.code === Code.DEADLINE_EXCEEDED;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return ["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "ERR_STREAM_PREMATURE_CLOSE", "UND_ERR_SOCKET", "ECONNABORTED"].includes(code ?? "") || /aborted|socket hang up|premature/i.test(String((err as Error)?.message));
}

export async function pullImage(deps: PullDeps, reference: string, opts: PullOptions = {}): Promise<ImageRecord> {
  const ref = parseReference(reference);
  const refString = ref.digest ? `${repositoryName(ref)}@${ref.digest}` : formatReference(ref);
  const progress = opts.onProgress ?? (() => {});
  const client = await deps.clientFor(ref, opts.auth);
  const resolved = await client.resolve(ref);
  const log = deps.log.with({ image: refString });
  progress({ kind: "resolved", ref: refString, digest: resolved.digest });

  const top = await fetchManifestBlob(deps, client, resolved, resolved.descriptor, refString);
  let manifestDesc = resolved.descriptor;
  let parsed = parseManifestOrIndex(top.data, top.mediaType, `${refString} (${resolved.digest})`);
  const platform = normalizePlatform(opts.platform ?? deps.platform);
  if (parsed.kind === "index") {
    manifestDesc = selectManifest(parsed.index.manifests, platform, `${refString} (${resolved.digest})`);
    const m = await fetchManifestBlob(deps, client, resolved, manifestDesc, refString);
    parsed = parseManifestOrIndex(m.data, manifestDesc.mediaType, `${refString} manifest ${manifestDesc.digest}`);
    if (parsed.kind !== "manifest") throw new DataLossError(`${refString}: index entry ${manifestDesc.digest} is itself an index`);
  } else if (parsed.kind === "manifest") {
    manifestDesc = { ...resolved.descriptor, mediaType: parsed.mediaType };
  }
  if (parsed.kind !== "manifest") throw new DataLossError(`${refString}: expected a manifest`);
  const manifest = parsed.manifest;

  await fetchBlob(deps, client, resolved, manifest.config, refString, () => {});
  const config = parseImageConfig(await deps.content.read(manifest.config.digest), `${refString} config ${manifest.config.digest}`);
  const layers = contentLayers(manifest);
  if (layers.length !== config.rootfs.diff_ids.length) {
    throw new DataLossError(`${refString}: manifest has ${layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff_ids`);
  }
  const diffIds = config.rootfs.diff_ids;
  const chain = computeChainIds(diffIds);

  // Downloads run ahead (bounded); unpack follows in layer order as each blob lands.
  const limit = limiter(Math.max(1, deps.maxConcurrentDownloads));
  const present = await Promise.all(chain.map((id) => deps.snapshotter.stat(id).then((s) => s?.kind === "committed")));
  const downloads = layers.map((layer, i) => {
    if (present[i]) {
      progress({ kind: "layer-exists", ref: refString, digest: layer.digest, total: layer.size });
      return Promise.resolve();
    }
    return limit(() => fetchBlob(deps, client, resolved, layer, refString, progress, opts.signal));
  });
  // Keep unhandled rejections away while earlier layers unpack; each is awaited below.
  for (const d of downloads) d.catch(() => {});
  for (let i = 0; i < layers.length; i++) {
    await downloads[i];
    if (present[i]) continue;
    await unpackLayer(deps, layers[i]!, diffIds[i]!, chain[i]!, i > 0 ? chain[i - 1] : undefined, refString);
    progress({ kind: "unpacked", ref: refString, digest: layers[i]!.digest });
  }
  log.debug("pulled", { digest: manifestDesc.digest, layers: layers.length });

  return imageRecord({ ref, topDigest: resolved.digest, manifestDesc, manifest, config });
}

async function fetchManifestBlob(deps: PullDeps, client: RegistryClient, resolved: ResolvedReference, desc: Descriptor, where: string): Promise<{ data: Buffer; mediaType: string }> {
  if (desc.size > MAX_MANIFEST_BYTES) throw new DataLossError(`${where}: manifest ${desc.digest} is ${desc.size} bytes, over the ${MAX_MANIFEST_BYTES} byte limit`);
  if (await deps.content.info(desc.digest)) return { data: await deps.content.read(desc.digest), mediaType: desc.mediaType };
  const m = await client.fetchManifest(resolved, desc.digest);
  await deps.content.put(m.data, desc.digest);
  return { data: m.data, mediaType: m.mediaType || desc.mediaType };
}

/** Downloads one blob into the content store, resuming after a broken transfer. */
async function fetchBlob(deps: PullDeps, client: RegistryClient, resolved: ResolvedReference, desc: Descriptor, where: string, progress: NonNullable<PullOptions["onProgress"]>, signal?: AbortSignal): Promise<void> {
  if (await deps.content.info(desc.digest)) {
    progress({ kind: "layer-exists", ref: where, digest: desc.digest, total: desc.size });
    return;
  }
  await deps.blobFlights.do(desc.digest, async () => {
    if (await deps.content.info(desc.digest)) return;
    let mismatches = 0;
    for (let attempt = 1; ; attempt++) {
      const ingest = await deps.content.ingest(desc);
      const resumedFrom = ingest.offset;
      try {
        let current = ingest.offset;
        if (current < desc.size) {
          const res = await client.fetchBlob(resolved, desc, { offset: current, signal });
          if (res.offset === 0 && current > 0) {
            await ingest.truncate();
            current = 0;
          }
          progress({ kind: "layer-start", ref: where, digest: desc.digest, current, total: desc.size, resumedFrom: current > 0 ? current : undefined });
          for await (const chunk of res.body) {
            await ingest.write(chunk as Buffer);
            current += (chunk as Buffer).length;
            progress({ kind: "layer-progress", ref: where, digest: desc.digest, current, total: desc.size });
          }
        }
        await ingest.commit();
        progress({ kind: "layer-done", ref: where, digest: desc.digest, current: desc.size, total: desc.size });
        return;
      } catch (err) {
        await ingest.close().catch(() => {});
        // A mismatch discards the ingest; one fresh download is worth a try (a resumed tail may
        // have been spliced onto stale bytes), a second mismatch means the registry serves bad data.
        if (err instanceof DataLossError && ++mismatches < 2) continue;
        if (!isTransient(err) || attempt >= deps.blobAttempts || signal?.aborted) {
          if (err instanceof BerthError) throw err;
          throw new BerthError(Code.UNAVAILABLE, `${where}: downloading ${desc.digest} failed after ${attempt} attempt(s), ${resumedFrom > 0 ? `last resumed at byte ${resumedFrom}, ` : ""}${(err as Error).message}`, { cause: err });
        }
        deps.log.warn("blob download interrupted, resuming", { image: where, digest: desc.digest, attempt, error: (err as Error).message });
        await sleep(Math.min(2000, 100 * 2 ** (attempt - 1)));
      }
    }
  });
}

export async function unpackLayer(deps: Pick<PullDeps, "content" | "snapshotter" | "unpackFlights">, layer: Descriptor, diffId: string, chainId: string, parent: string | undefined, where: string): Promise<void> {
  await deps.unpackFlights.do(chainId, async () => {
    if ((await deps.snapshotter.stat(chainId))?.kind === "committed") return;
    const key = `extract-${randomBytes(6).toString("hex")}-${chainId.slice(7, 19)}`;
    await deps.snapshotter.prepare(key, parent, { [UNPACKING_LABEL]: chainId });
    try {
      const dir = await deps.snapshotter.upperDir(key);
      const lowerDirs = parent ? await deps.snapshotter.lowerDirs(key) : [];
      const { diffId: got } = await applyLayer({ stream: deps.content.readStream(layer.digest), mediaType: layer.mediaType, dir, lowerDirs });
      if (got !== diffId) throw new DataLossError(`${where}: layer ${layer.digest} unpacks to ${got}, but the image config says ${diffId}`);
      await deps.snapshotter.commit(chainId, key);
    } catch (err) {
      await deps.snapshotter.remove(key).catch(() => {});
      if (err instanceof BerthError) throw err;
      const code = codeOf(err) === Code.UNKNOWN ? Code.INTERNAL : codeOf(err);
      throw new BerthError(code, `${where}: unpacking layer ${layer.digest}: ${(err as Error).message}`, { cause: err });
    }
  });
}
