// A small image builder: layers from a list of entries, written as an OCI image layout that
// skopeo, registries and `berth image import` read. The daemon's demo mode fills its local
// registry with it; tests and benchmarks build their images with it. Output is deterministic:
// the same spec gives the same digests (sorted entries, fixed mtimes, node's gzip header has no
// timestamp), so tests can compare digests across a push and a pull.
import { createCipheriv, createHash, type Hash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, posix, resolve } from "node:path";
import { PassThrough, Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import * as tar from "tar-stream";
import { writeFileAtomic } from "../store/atomic";
import { KeyedMutex } from "../sync/keyed-mutex";
import { type Descriptor, type ImageConfigFile, type ImageRunConfig, type Index, type Manifest, MediaType, type Platform } from "./types";

/** Bytes of a file: inline, streamed from a file on this host, or deterministic random bytes (incompressible), streamed. */
export type EntryContent = string | Uint8Array | { fromFile: string } | { random: number; seed: string | number };

export interface LayerEntry {
  /** Absolute or relative path inside the rootfs; "/etc/passwd" and "etc/passwd" are the same. */
  path: string;
  /** "whiteout" deletes `path` from lower layers; "opaque" hides everything lower layers had below the directory `path`. */
  type: "file" | "dir" | "symlink" | "hardlink" | "whiteout" | "opaque";
  content?: EntryContent;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Symlink target (as given), or hardlink target (a path in the same layer, written earlier in sort order). */
  linkname?: string;
  mtime?: Date;
  xattrs?: Record<string, string>;
}

export interface LayerSpec {
  entries: LayerEntry[];
  compression?: "gzip" | "none";
}

export type HistoryEntry = NonNullable<ImageConfigFile["history"]>[number];

export interface ImageSpec {
  layers: LayerSpec[];
  config: ImageRunConfig;
  /** This host's (linux/amd64 here) unless given. */
  platform?: Platform;
  created?: Date;
  author?: string;
  /** One entry per layer unless given. */
  history?: HistoryEntry[];
  /** Annotations of the manifest itself. */
  annotations?: Record<string, string>;
}

export type MediaTypeFamily = "oci" | "docker";

export interface BuiltImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: string[];
}

/** The date every entry and image gets unless told otherwise, so rebuilding gives the same digests. */
export const DEFAULT_TIME = new Date("2024-01-01T00:00:00Z");
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

const GOARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", ia32: "386", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };

/** This host's platform in OCI terms: the default, since busyboxRootfs copies this host's binary. */
export function hostPlatform(): Platform {
  return { os: "linux", architecture: GOARCH[process.arch] ?? process.arch };
}

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";
const RANDOM_CHUNK = 1 << 20;

type PackHeader = Parameters<tar.Pack["entry"]>[0];

/** A regular file of `bytes` deterministic, incompressible bytes derived from `seed`, streamed when the layer is written. */
export function randomFileEntry(path: string, bytes: number, seed: string | number, mode = 0o644): LayerEntry {
  return { path, type: "file", content: { random: bytes, seed }, mode };
}

/** Writes one image (its layers, config and manifest) into the layout, tagged in index.json when `tag` is given. */
export async function writeImageToLayout(layoutDir: string, image: ImageSpec, opts: { tag?: string; mediaTypes?: MediaTypeFamily } = {}): Promise<BuiltImage> {
  await initLayout(layoutDir);
  const built = await writeImageBlobs(layoutDir, image, opts.mediaTypes ?? "oci");
  await addToIndexJson(layoutDir, built.manifest, opts.tag);
  return built;
}

/** Writes several images and one index (or Docker manifest list) that selects between them by platform. Returns the index's descriptor. */
export async function writeIndexToLayout(
  layoutDir: string,
  images: Array<{ image: ImageSpec; annotations?: Record<string, string> }>,
  opts: { tag?: string; mediaTypes?: MediaTypeFamily; annotations?: Record<string, string> } = {},
): Promise<Descriptor> {
  const family = opts.mediaTypes ?? "oci";
  await initLayout(layoutDir);
  const manifests: Descriptor[] = [];
  for (const { image, annotations } of images) {
    const built = await writeImageBlobs(layoutDir, image, family);
    manifests.push({ ...built.manifest, platform: descriptorPlatform(image.platform ?? hostPlatform()), ...(annotations ? { annotations } : {}) });
  }
  const mediaType = family === "docker" ? MediaType.DockerManifestList : MediaType.OCIIndex;
  const index: Index = { schemaVersion: 2, mediaType, manifests, ...(opts.annotations ? { annotations: opts.annotations } : {}) };
  const desc = await writeJsonBlob(layoutDir, mediaType, index);
  await addToIndexJson(layoutDir, desc, opts.tag);
  return desc;
}

async function initLayout(layoutDir: string): Promise<void> {
  await mkdir(blobsDir(layoutDir), { recursive: true });
  const marker = join(layoutDir, "oci-layout");
  if (!(await exists(marker))) await writeFile(marker, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
}

function blobsDir(layoutDir: string): string {
  return join(layoutDir, "blobs", "sha256");
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function writeImageBlobs(layoutDir: string, image: ImageSpec, family: MediaTypeFamily): Promise<BuiltImage> {
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const [i, spec] of image.layers.entries()) {
    try {
      const { descriptor, diffId } = await writeLayer(layoutDir, spec, family);
      layers.push(descriptor);
      diffIds.push(diffId);
    } catch (err) {
      throw new Error(`layer ${i}: ${(err as Error).message}`, { cause: err });
    }
  }
  const platform = image.platform ?? hostPlatform();
  const created = (image.created ?? DEFAULT_TIME).toISOString();
  const configFile: ImageConfigFile & { "os.version"?: string; "os.features"?: string[] } = {
    created,
    ...(image.author ? { author: image.author } : {}),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    ...(platform["os.version"] ? { "os.version": platform["os.version"] } : {}),
    ...(platform["os.features"] ? { "os.features": platform["os.features"] } : {}),
    config: image.config,
    rootfs: { type: "layers", diff_ids: diffIds },
    history: image.history ?? image.layers.map((_, i) => ({ created, created_by: `berth build: layer ${i}` })),
  };
  const config = await writeJsonBlob(layoutDir, family === "docker" ? MediaType.DockerConfig : MediaType.OCIConfig, configFile);
  const manifestType = family === "docker" ? MediaType.DockerManifest : MediaType.OCIManifest;
  const manifestDoc: Manifest = {
    schemaVersion: 2,
    mediaType: manifestType,
    config,
    layers,
    ...(image.annotations ? { annotations: image.annotations } : {}),
  };
  const manifest = await writeJsonBlob(layoutDir, manifestType, manifestDoc);
  return { manifest, config, layers, diffIds };
}

function descriptorPlatform(p: Platform): Platform {
  return { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}) };
}

async function writeJsonBlob(layoutDir: string, mediaType: string, doc: unknown): Promise<Descriptor> {
  const data = Buffer.from(JSON.stringify(doc));
  const hex = createHash("sha256").update(data).digest("hex");
  const path = join(blobsDir(layoutDir), hex);
  if (!(await exists(path))) {
    const tmp = join(blobsDir(layoutDir), `.partial-${randomUUID()}`);
    await writeFile(tmp, data);
    await rename(tmp, path);
  }
  return { mediaType, digest: `sha256:${hex}`, size: data.length };
}

// index.json is read-modify-write: serialise builders writing into the same layout from one process.
const indexLocks = new KeyedMutex();

async function addToIndexJson(layoutDir: string, desc: Descriptor, tag: string | undefined): Promise<void> {
  await indexLocks.run(resolve(layoutDir), async () => {
    const path = join(layoutDir, "index.json");
    const index: Index = (await exists(path)) ? JSON.parse(await readFile(path, "utf8")) : { schemaVersion: 2, mediaType: MediaType.OCIIndex, manifests: [] };
    const refName = (d: Descriptor) => d.annotations?.[REF_NAME_ANNOTATION];
    // A tag names one thing: retagging replaces. An untagged entry is kept once per digest.
    index.manifests = index.manifests.filter((m) => (tag === undefined ? !(m.digest === desc.digest && refName(m) === undefined) : refName(m) !== tag));
    index.manifests.push(tag === undefined ? desc : { ...desc, annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: tag } });
    await writeFileAtomic(path, JSON.stringify(index));
  });
}

// ---- layers ----

interface PlannedEntry {
  name: string;
  header: PackHeader;
  body?: EntryContent;
}

async function writeLayer(layoutDir: string, spec: LayerSpec, family: MediaTypeFamily): Promise<{ descriptor: Descriptor; diffId: string }> {
  const entries = planEntries(spec.entries);
  const gzip = (spec.compression ?? "gzip") === "gzip";
  const diffHash = createHash("sha256");
  const blobHash = createHash("sha256");
  let size = 0;
  const tmp = join(blobsDir(layoutDir), `.partial-${randomUUID()}`);
  const pack = tar.pack();
  const countBlob = hashing(blobHash, (n) => {
    size += n;
  });
  const written = pipeline(Readable.from(pack, { objectMode: false }), hashing(diffHash), gzip ? createGzip() : new PassThrough(), countBlob, createWriteStream(tmp));
  // The pipeline may fail first (disk full); stop producing then, rather than waiting on a drain that never comes.
  written.catch((err) => pack.destroy(err));
  try {
    await Promise.all([written, produce(pack, entries)]);
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  const hex = blobHash.digest("hex");
  await rename(tmp, join(blobsDir(layoutDir), hex));
  const mediaType = family === "docker" ? (gzip ? MediaType.DockerLayerGzip : MediaType.DockerLayer) : gzip ? MediaType.OCILayerGzip : MediaType.OCILayer;
  return { descriptor: { mediaType, digest: `sha256:${hex}`, size }, diffId: `sha256:${diffHash.digest("hex")}` };
}

function hashing(hash: Hash, onBytes?: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
}

async function produce(pack: tar.Pack, entries: PlannedEntry[]): Promise<void> {
  for (const e of entries) {
    try {
      await writeEntry(pack, e);
    } catch (err) {
      throw new Error(`${e.name}: ${(err as Error).message}`, { cause: err });
    }
  }
  pack.finalize();
}

async function writeEntry(pack: tar.Pack, e: PlannedEntry): Promise<void> {
  const body = e.body;
  if (body === undefined || typeof body === "string" || body instanceof Uint8Array) {
    const buf = body === undefined ? undefined : Buffer.from(body as Uint8Array | string);
    if (buf) e.header.size = buf.length;
    await new Promise<void>((res, rej) => {
      const cb = (err?: Error | null) => (err ? rej(err) : res());
      if (buf) pack.entry(e.header, buf, cb);
      else pack.entry(e.header, cb);
    });
    return;
  }
  let source: AsyncIterable<Uint8Array>;
  if ("fromFile" in body) {
    const st = await stat(body.fromFile).catch((err: Error) => {
      throw new Error(`cannot read ${body.fromFile}: ${err.message}`);
    });
    if (!st.isFile()) throw new Error(`${body.fromFile} is not a regular file`);
    e.header.size = st.size;
    source = createReadStream(body.fromFile);
  } else {
    e.header.size = body.random;
    source = randomBytesStream(body.random, body.seed);
  }
  await new Promise<void>((res, rej) => {
    // The entry's callback fires once its bytes are in the pack (or it failed, e.g. a size mismatch).
    const sink = pack.entry(e.header, (err) => (err ? rej(err) : res()));
    pipeToSink(source, sink).catch((err: Error) => {
      sink.destroy(err);
      rej(err);
    });
  });
}

async function pipeToSink(source: AsyncIterable<Uint8Array>, sink: ReturnType<tar.Pack["entry"]>): Promise<void> {
  for await (const chunk of source) {
    if (!sink.write(chunk)) {
      await new Promise<void>((res, rej) => {
        const onDrain = () => {
          sink.removeListener("close", onClose);
          res();
        };
        const onClose = () => {
          sink.removeListener("drain", onDrain);
          rej(new Error("tar entry closed while writing"));
        };
        sink.once("drain", onDrain);
        sink.once("close", onClose);
      });
    }
  }
  sink.end(undefined);
}

/** AES-256-CTR over zeros: fast, deterministic from the seed, and gzip cannot shrink it. */
async function* randomBytesStream(bytes: number, seed: string | number): AsyncGenerator<Buffer> {
  const key = createHash("sha256").update(`berth-random:${seed}`).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  const zeros = Buffer.alloc(RANDOM_CHUNK);
  for (let left = bytes; left > 0; left -= RANDOM_CHUNK) {
    yield cipher.update(left >= RANDOM_CHUNK ? zeros : zeros.subarray(0, left));
  }
}

/** Normalises paths, adds missing parent directories, turns whiteouts into their marker files, sorts, and checks. */
function planEntries(entries: LayerEntry[]): PlannedEntry[] {
  const planned = new Map<string, PlannedEntry>();
  const add = (p: PlannedEntry) => {
    if (planned.has(p.name)) throw new Error(`layer lists ${p.name} twice`);
    planned.set(p.name, p);
  };
  for (const e of entries) {
    const name = cleanPath(e.path);
    const mtime = e.mtime ?? DEFAULT_TIME;
    const owner = { uid: e.uid ?? 0, gid: e.gid ?? 0, mtime };
    const pax = e.xattrs ? Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v])) : undefined;
    const common = { ...owner, ...(pax ? { pax } : {}) };
    switch (e.type) {
      case "file":
        add({ name, header: { name, type: "file", mode: e.mode ?? 0o644, ...common }, body: e.content ?? "" });
        break;
      case "dir":
        add({ name, header: { name: `${name}/`, type: "directory", mode: e.mode ?? 0o755, ...common } });
        break;
      case "symlink":
        if (!e.linkname) throw new Error(`symlink ${e.path} has no linkname`);
        add({ name, header: { name, type: "symlink", mode: e.mode ?? 0o777, linkname: e.linkname, ...common } });
        break;
      case "hardlink":
        if (!e.linkname) throw new Error(`hardlink ${e.path} has no linkname`);
        add({ name, header: { name, type: "link", mode: e.mode ?? 0o644, linkname: cleanPath(e.linkname), ...common } });
        break;
      case "whiteout": {
        const marker = posix.join(posix.dirname(name), WHITEOUT_PREFIX + posix.basename(name));
        add({ name: marker, header: { name: marker, type: "file", mode: e.mode ?? 0o644, ...owner }, body: "" });
        break;
      }
      case "opaque": {
        const marker = posix.join(name, OPAQUE_MARKER);
        add({ name: marker, header: { name: marker, type: "file", mode: e.mode ?? 0o644, ...owner }, body: "" });
        break;
      }
    }
  }
  // Unpackers differ on what a missing parent gets; say it explicitly.
  for (const name of [...planned.keys()]) {
    for (let dir = posix.dirname(name); dir !== "."; dir = posix.dirname(dir)) {
      if (!planned.has(dir)) planned.set(dir, { name: dir, header: { name: `${dir}/`, type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: DEFAULT_TIME } });
    }
  }
  for (const [name, p] of planned) {
    if (p.header.type !== "directory" && [...ancestors(name)].some((a) => planned.get(a)?.header.type !== "directory")) {
      throw new Error(`${name} is below ${[...ancestors(name)].find((a) => planned.get(a)?.header.type !== "directory")}, which is not a directory`);
    }
  }
  const sorted = [...planned.values()].sort((a, b) => comparePaths(a.name, b.name));
  const seen = new Set<string>();
  for (const p of sorted) {
    if (p.header.type === "link" && !seen.has(p.header.linkname!)) {
      throw new Error(`hardlink ${p.name} points at ${p.header.linkname}, which is not earlier in this layer`);
    }
    seen.add(p.name);
  }
  return sorted;
}

function* ancestors(name: string): Generator<string> {
  for (let dir = posix.dirname(name); dir !== "."; dir = posix.dirname(dir)) yield dir;
}

function cleanPath(p: string): string {
  // normalize() would quietly turn "/../x" into "/x"; a spec that says ".." is a mistake.
  if (p.split("/").includes("..")) throw new Error(`invalid layer path "${p}": ".." is not allowed`);
  const n = posix.normalize(`/${p}`).replace(/^\/+/, "").replace(/\/+$/, "");
  if (n === "") throw new Error(`invalid layer path "${p}"`);
  return n;
}

/** Parents before children; inside a directory the opaque marker comes first, so stream-order unpackers clear before they add. */
function comparePaths(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    if (x === OPAQUE_MARKER) return -1;
    if (y === OPAQUE_MARKER) return 1;
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

// ---- a busybox rootfs ----

/** Applets linked by default: what tests and demo workloads call. */
export const BUSYBOX_APPLETS: readonly string[] = [
  "[", "ash", "awk", "basename", "cat", "chmod", "chown", "cp", "cut", "date", "dd", "df", "dirname", "du", "echo", "env",
  "expr", "false", "find", "free", "grep", "head", "hostname", "httpd", "id", "ifconfig", "ip", "kill", "ln", "ls", "mkdir",
  "mktemp", "mount", "mv", "nc", "nproc", "nslookup", "ping", "printf", "ps", "pwd", "readlink", "realpath", "rm", "rmdir",
  "sed", "seq", "sh", "sleep", "sort", "stat", "sync", "tail", "tee", "test", "timeout", "top", "touch", "tr", "true",
  "umount", "uname", "uptime", "usleep", "vi", "wc", "wget", "whoami", "xargs", "yes",
];

export const BUSYBOX_PATH = "/bin/busybox";

/**
 * A minimal runnable rootfs: Debian's static busybox with applet symlinks in /bin, /etc/passwd
 * and /etc/group with root, "app" (1000:1000) and nobody, and the usual empty directories.
 */
export function busyboxRootfs(opts: { applets?: readonly string[]; busybox?: string } = {}): LayerEntry[] {
  const applets = opts.applets ?? BUSYBOX_APPLETS;
  return [
    { path: "/bin", type: "dir" },
    { path: "/bin/busybox", type: "file", mode: 0o755, content: { fromFile: opts.busybox ?? BUSYBOX_PATH } },
    ...applets.filter((a) => a !== "busybox").map((a): LayerEntry => ({ path: `/bin/${a}`, type: "symlink", linkname: "busybox" })),
    { path: "/dev", type: "dir" },
    { path: "/proc", type: "dir", mode: 0o555 },
    { path: "/sys", type: "dir", mode: 0o555 },
    { path: "/etc", type: "dir" },
    {
      path: "/etc/passwd",
      type: "file",
      content: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    },
    { path: "/etc/group", type: "file", content: "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n" },
    { path: "/root", type: "dir", mode: 0o700 },
    { path: "/home", type: "dir" },
    { path: "/home/app", type: "dir", uid: 1000, gid: 1000 },
    { path: "/tmp", type: "dir", mode: 0o1777 },
    { path: "/var", type: "dir" },
    { path: "/var/tmp", type: "dir", mode: 0o1777 },
    { path: "/usr", type: "dir" },
  ];
}
