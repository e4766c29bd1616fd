// Pull: resolve a reference, pick the platform's manifest, download the blobs into the content
// store (several at once, each verified while it streams, resumed with a Range request after a
// cut) and unpack each layer into a snapshot keyed by its chain ID as soon as it and the layers
// below it are there. Layers whose snapshot already exists are neither downloaded nor unpacked.
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BerthError, Code, codeOf, DataLossError, ResourceExhaustedError } from "../errors";
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
  /** berth's root directory, named when its disk fills up. */
  root?: string;
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
const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * A full disk (or quota) as an error a person can act on: what was being written, where, and
 * what to do. Undefined for any other error.
 */
export function diskFullError(err: unknown, what: string, where: string): ResourceExhaustedError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== "ENOSPC" && code !== "EDQUOT") return undefined;
  const why = code === "EDQUOT" ? "the disk quota is used up on the filesystem" : "no space left on the filesystem";
  return new ResourceExhaustedError(`${what}: ${why} holding ${where} (${code}); free space there, or move berth's --root to a larger filesystem`, { cause: err });
}

function isDiskFull(err: unknown): boolean {
  const code = ((err as Error | undefined)?.cause as NodeJS.ErrnoException | undefined)?.code ?? (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

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

  // Downloads run ahead (bounded); unpack follows in layer order as each blob lands. The first
  // failure stops the other downloads (their ingests stay, for a retry to resume), except a full
  // disk: each download then meets it on its own and discards what it wrote. Either way the pull
  // answers only once none of its downloads is still writing.
  const limit = limiter(Math.max(1, deps.maxConcurrentDownloads));
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  let firstFailure: unknown;
  const fail = (err: unknown) => {
    firstFailure ??= err;
    if (!isDiskFull(err)) stop.abort();
  };
  const present = await Promise.all(chain.map((id) => deps.snapshotter.stat(id).then((s) => s?.kind === "committed")));
  const downloads = layers.map((layer, i) => {
    if (present[i]) {
      progress({ kind: "layer-exists", ref: refString, digest: layer.digest, total: layer.size });
      return Promise.resolve();
    }
    const d = limit(() => fetchBlob(deps, client, resolved, layer, refString, progress, signal));
    // Also keeps unhandled rejections away while earlier layers unpack; each is awaited below.
    d.catch(fail);
    return d;
  });
  try {
    for (let i = 0; i < layers.length; i++) {
      await downloads[i];
      if (present[i]) continue;
      await unpackLayer(deps, layers[i]!, diffIds[i]!, chain[i]!, i > 0 ? chain[i - 1] : undefined, refString);
      progress({ kind: "unpacked", ref: refString, digest: layers[i]!.digest });
    }
  } catch (err) {
    fail(err);
    await Promise.allSettled(downloads);
    throw firstFailure;
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
  for (;;) {
    if (signal?.aborted) throw stopped(where, desc, signal.reason);
    try {
      await deps.blobFlights.do(desc.digest, () => downloadBlob(deps, client, resolved, desc, where, progress, signal));
      return;
    } catch (err) {
      // The download was shared with another pull, which stopped it: this one carries on alone.
      if (codeOf(err) === Code.CANCELLED && !signal?.aborted) continue;
      throw err;
    }
  }
}

function stopped(where: string, desc: Descriptor, cause: unknown): BerthError {
  return new BerthError(Code.CANCELLED, `${where}: the download of ${desc.digest} was stopped (the pull was cancelled, or another of its layers failed); a later pull resumes it`, { cause });
}

async function downloadBlob(deps: PullDeps, client: RegistryClient, resolved: ResolvedReference, desc: Descriptor, where: string, progress: NonNullable<PullOptions["onProgress"]>, signal?: AbortSignal): Promise<void> {
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
        // Sockets deliver 16-64 KiB at a time; writing 1 MiB batches costs a fraction of the syscalls.
        let batch: Buffer[] = [];
        let batched = 0;
        const flush = async () => {
          if (batched === 0) return;
          await ingest.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched));
          current += batched;
          batch = [];
          batched = 0;
          progress({ kind: "layer-progress", ref: where, digest: desc.digest, current, total: desc.size });
        };
        for await (const chunk of res.body) {
          batch.push(chunk as Buffer);
          batched += (chunk as Buffer).length;
          if (batched >= WRITE_BATCH_BYTES) await flush();
        }
        await flush();
      }
      await ingest.commit();
      progress({ kind: "layer-done", ref: where, digest: desc.digest, current: desc.size, total: desc.size });
      return;
    } catch (err) {
      await ingest.close().catch(() => {});
      if (signal?.aborted) throw stopped(where, desc, err);
      // A mismatch discards the ingest; one fresh download is worth a try (a resumed tail may
      // have been spliced onto stale bytes), a second mismatch means the registry serves bad data.
      if (err instanceof DataLossError && ++mismatches < 2) continue;
      if (!isTransient(err) || attempt >= deps.blobAttempts) {
        if (err instanceof BerthError) throw err;
        // The content store discards an ingest that hit a full disk: nothing is left to resume.
        const full = diskFullError(err, `${where}: downloading ${desc.digest} (${desc.size} bytes)`, deps.root ? join(deps.root, "content") : dirname(deps.content.blobPath(desc.digest)));
        if (full) throw full;
        throw new BerthError(Code.UNAVAILABLE, `${where}: downloading ${desc.digest} failed after ${attempt} attempt(s), ${resumedFrom > 0 ? `last resumed at byte ${resumedFrom}, ` : ""}${(err as Error).message}`, { cause: err });
      }
      deps.log.warn("blob download interrupted, resuming", { image: where, digest: desc.digest, attempt, error: (err as Error).message });
      await sleep(Math.min(2000, 100 * 2 ** (attempt - 1)), undefined, { signal }).catch(() => {});
    }
  }
}

export async function unpackLayer(deps: Pick<PullDeps, "content" | "snapshotter" | "unpackFlights">, layer: Descriptor, diffId: string, chainId: string, parent: string | undefined, where: string): Promise<void> {
  await deps.unpackFlights.do(chainId, async () => {
    if ((await deps.snapshotter.stat(chainId))?.kind === "committed") return;
    const key = `extract-${randomBytes(6).toString("hex")}-${chainId.slice(7, 19)}`;
    await deps.snapshotter.prepare(key, parent, { [UNPACKING_LABEL]: chainId });
    let dir: string | undefined;
    try {
      dir = await deps.snapshotter.upperDir(key);
      const lowerDirs = parent ? await deps.snapshotter.lowerDirs(key) : [];
      const { diffId: got } = await applyLayer({ stream: deps.content.readStream(layer.digest), mediaType: layer.mediaType, dir, lowerDirs });
      if (got !== diffId) throw new DataLossError(`it unpacks to ${got}, but the image config says its diff_id is ${diffId}`);
      await deps.snapshotter.commit(chainId, key);
    } catch (err) {
      await deps.snapshotter.remove(key).catch(() => {});
      // Every failure names the image and the layer: the unpacker itself only knows the entry.
      const what = `${where}: unpacking layer ${layer.digest}`;
      const full = diskFullError(err, what, dir ?? "berth's snapshots");
      if (full) throw full;
      if (err instanceof BerthError) {
        err.message = `${what}: ${err.message}`;
        throw err;
      }
      const code = codeOf(err) === Code.UNKNOWN ? Code.INTERNAL : codeOf(err);
      throw new BerthError(code, `${what}: ${(err as Error).message}`, { cause: err });
    }
  });
}
