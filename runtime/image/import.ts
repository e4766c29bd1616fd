// `berth image import`: images from an OCI image layout directory, an OCI archive (a tar of a
// layout) or a Docker archive (`docker save`), for nodes that cannot reach a registry. Every blob
// is verified against its digest on the way into the content store, like a pull.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm, stat } from "node:fs/promises";
import { join, normalize } from "node:path";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { DataLossError, InvalidArgumentError, NotFoundError } from "../errors";
import type { Logger } from "../log";
import type { Snapshotter } from "../snapshot/types";
import { SingleFlight } from "../sync/singleflight";
import { parseImageConfig, parseManifestOrIndex } from "./manifest";
import { selectManifest } from "./platform";
import { unpackLayer } from "./pull";
import { contentLayers, imageRecord } from "./record";
import { formatReference, parseReference } from "./reference";
import { type ContentStore, type Descriptor, type ImageRecord, type Manifest, MediaType, type Platform } from "./types";

export interface ImportDeps {
  content: ContentStore;
  snapshotter: Snapshotter;
  platform: Platform;
  log: Logger;
  /** Scratch space for unpacking archives; on the same filesystem as the store. */
  tmpDir: string;
}

const unpackFlights = new SingleFlight<void>();

export async function importImages(deps: ImportDeps, path: string, opts: { name?: string } = {}): Promise<ImageRecord[]> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch {
    throw new NotFoundError(`import: ${path} does not exist on the daemon's host`);
  }
  if (st.isDirectory()) return importLayout(deps, path, opts);
  await mkdir(deps.tmpDir, { recursive: true });
  const dir = await mkdtemp(join(deps.tmpDir, "import-"));
  try {
    await extractArchive(path, dir);
    if (await exists(join(dir, "index.json"))) return await importLayout(deps, dir, opts);
    if (await exists(join(dir, "manifest.json"))) return await importDockerArchive(deps, dir, opts);
    throw new InvalidArgumentError(`import: ${path} is neither an OCI archive (no index.json) nor a Docker archive (no manifest.json)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Extracts regular files only, refusing any name that would leave `dir`. */
async function extractArchive(file: string, dir: string): Promise<void> {
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const name = normalize(entry.header.name).replace(/^(\.\/)+/, "");
      if (entry.header.type === "file" || entry.header.type === "contiguous-file") {
        if (name.startsWith("..") || name.startsWith("/") || name.includes("/../")) {
          entry.resume();
          throw new DataLossError(`import: archive entry "${entry.header.name}" points outside the archive`);
        }
        const target = join(dir, name);
        await mkdir(join(target, ".."), { recursive: true });
        await pipeline(entry, createWriteStream(target, { flags: "wx" }));
      } else {
        entry.resume();
      }
    }
  })();
  await Promise.all([pipeline(createReadStream(file), extract).catch((err: Error) => Promise.reject(new InvalidArgumentError(`import: ${file} is not a readable tar archive: ${err.message}`))), done]);
}

/** Copies one blob file into the content store, verifying size and digest. */
async function ingestFile(content: ContentStore, desc: Pick<Descriptor, "digest" | "size">, file: string): Promise<void> {
  if (await content.info(desc.digest)) return;
  const ingest = await content.ingest(desc);
  try {
    if (ingest.offset > 0) await ingest.truncate();
    for await (const chunk of createReadStream(file)) await ingest.write(chunk as Buffer);
    await ingest.commit();
  } catch (err) {
    await ingest.close().catch(() => {});
    throw err;
  }
}

function blobFile(layout: string, digest: string): string {
  const [alg, hex] = digest.split(":");
  return join(layout, "blobs", alg!, hex!);
}

function nameFor(annotations: Record<string, string> | undefined, override: string | undefined, where: string): string {
  const full = annotations?.["io.containerd.image.name"];
  const refName = annotations?.["org.opencontainers.image.ref.name"];
  if (override) {
    const last = override.slice(override.lastIndexOf("/") + 1);
    if (last.includes(":") || last.includes("@")) return override;
    return `${override}:${refName && !refName.includes("/") ? refName : "latest"}`;
  }
  if (full) return full;
  if (refName && (refName.includes("/") || refName.includes(":"))) return refName;
  throw new InvalidArgumentError(`import: ${where} carries no image name (only tag "${refName ?? ""}"); pass a name (berth image import --name NAME)`);
}

async function importLayout(deps: ImportDeps, layout: string, opts: { name?: string }): Promise<ImageRecord[]> {
  let indexBytes: Buffer;
  try {
    indexBytes = await readFile(join(layout, "index.json"));
  } catch {
    throw new InvalidArgumentError(`import: ${layout} is not an OCI image layout (no index.json)`);
  }
  const top = parseManifestOrIndex(indexBytes, MediaType.OCIIndex, `${layout}/index.json`);
  if (top.kind !== "index") throw new InvalidArgumentError(`import: ${layout}/index.json is not an image index`);
  if (top.index.manifests.length === 0) throw new InvalidArgumentError(`import: ${layout}/index.json lists no images`);
  const out: ImageRecord[] = [];
  for (const entry of top.index.manifests) {
    const name = nameFor(entry.annotations, opts.name, `${layout} entry ${entry.digest}`);
    const ref = parseReference(name);
    await ingestFile(deps.content, entry, blobFile(layout, entry.digest));
    let manifestDesc = entry;
    let parsed = parseManifestOrIndex(await deps.content.read(entry.digest), entry.mediaType, `${layout} ${entry.digest}`);
    if (parsed.kind === "index") {
      manifestDesc = selectManifest(parsed.index.manifests, deps.platform, `${layout} ${entry.digest}`);
      await ingestFile(deps.content, manifestDesc, blobFile(layout, manifestDesc.digest));
      parsed = parseManifestOrIndex(await deps.content.read(manifestDesc.digest), manifestDesc.mediaType, `${layout} ${manifestDesc.digest}`);
    }
    if (parsed.kind !== "manifest") throw new DataLossError(`import: ${layout} ${manifestDesc.digest} is not a manifest`);
    out.push(await importManifest(deps, layout, ref, entry.digest, manifestDesc, parsed.manifest));
  }
  return out;
}

async function importManifest(deps: ImportDeps, layout: string, ref: ReturnType<typeof parseReference>, topDigest: string, manifestDesc: Descriptor, manifest: Manifest): Promise<ImageRecord> {
  const where = `import ${layout}`;
  await ingestFile(deps.content, manifest.config, blobFile(layout, manifest.config.digest));
  const config = parseImageConfig(await deps.content.read(manifest.config.digest), `${where} config ${manifest.config.digest}`);
  const layers = contentLayers(manifest);
  if (layers.length !== config.rootfs.diff_ids.length) throw new DataLossError(`${where}: ${layers.length} layers but ${config.rootfs.diff_ids.length} diff_ids`);
  const record = imageRecord({ ref, topDigest, manifestDesc, manifest, config });
  for (let i = 0; i < layers.length; i++) {
    if ((await deps.snapshotter.stat(record.chainIds[i]!))?.kind === "committed") continue;
    await ingestFile(deps.content, layers[i]!, blobFile(layout, layers[i]!.digest));
    await unpackLayer({ content: deps.content, snapshotter: deps.snapshotter, unpackFlights }, layers[i]!, record.diffIds[i]!, record.chainIds[i]!, i > 0 ? record.chainIds[i - 1] : undefined, where);
  }
  deps.log.info("image imported", { image: record.repoTags[0] ?? record.id, from: layout });
  return record;
}

async function fileDescriptor(file: string, mediaType: string): Promise<Descriptor> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { mediaType, digest: `sha256:${hash.digest("hex")}`, size };
}

/** `docker save` output: manifest.json lists each image's config file, tags and layer tars. */
async function importDockerArchive(deps: ImportDeps, dir: string, opts: { name?: string }): Promise<ImageRecord[]> {
  type Entry = { Config: string; RepoTags?: string[] | null; Layers: string[] };
  let entries: Entry[];
  try {
    entries = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Entry[];
    if (!Array.isArray(entries)) throw new Error("not an array");
  } catch (err) {
    throw new InvalidArgumentError(`import: the Docker archive's manifest.json is malformed: ${(err as Error).message}`);
  }
  const out: ImageRecord[] = [];
  for (const e of entries) {
    const safe = (p: string) => {
      const n = normalize(p);
      if (n.startsWith("..") || n.startsWith("/")) throw new DataLossError(`import: manifest.json names "${p}" outside the archive`);
      return join(dir, n);
    };
    const configDesc = await fileDescriptor(safe(e.Config), MediaType.DockerConfig);
    await ingestFile(deps.content, configDesc, safe(e.Config));
    const layers: Descriptor[] = [];
    for (const l of e.Layers) {
      const file = safe(l);
      const head = await readHead(file);
      const gz = head[0] === 0x1f && head[1] === 0x8b;
      const desc = await fileDescriptor(file, gz ? MediaType.DockerLayerGzip : MediaType.DockerLayer);
      await ingestFile(deps.content, desc, file);
      layers.push(desc);
    }
    const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.DockerManifest, config: configDesc, layers };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const info = await deps.content.put(manifestBytes);
    const manifestDesc: Descriptor = { mediaType: MediaType.DockerManifest, digest: info.digest, size: info.size };
    const tags = opts.name ? [opts.name] : (e.RepoTags ?? []);
    if (tags.length === 0) throw new InvalidArgumentError(`import: image ${configDesc.digest} in the Docker archive has no RepoTags; pass a name`);
    // Every blob is in the content store already, so importManifest finds them there.
    const record = await importManifest(deps, dir, parseReference(tags[0]!), info.digest, manifestDesc, manifest);
    record.repoTags = tags.map((t) => formatReference(parseReference(t)));
    out.push(record);
  }
  return out;
}

async function readHead(file: string): Promise<Buffer> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(2);
    await fh.read(buf, 0, 2, 0);
    return buf;
  } finally {
    await fh.close();
  }
}
