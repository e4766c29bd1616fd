// Domain types and interfaces of the image pipeline. Implementations live beside this file:
// registry/ (OCI distribution client), content/ (content store), store.ts (image store),
// unpack.ts (layers → snapshots), pull.ts, push.ts, import.ts.
import type { Readable } from "node:stream";

export const MediaType = {
  OCIIndex: "application/vnd.oci.image.index.v1+json",
  OCIManifest: "application/vnd.oci.image.manifest.v1+json",
  OCIConfig: "application/vnd.oci.image.config.v1+json",
  OCILayer: "application/vnd.oci.image.layer.v1.tar",
  OCILayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OCILayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  OCILayerNonDistributableGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  DockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  DockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [MediaType.OCIManifest, MediaType.DockerManifest];
export const INDEX_MEDIA_TYPES: readonly string[] = [MediaType.OCIIndex, MediaType.DockerManifestList];

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

/** An OCI content descriptor. `digest` is "algorithm:hex"; berth accepts sha256 (and sha512 if given). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The runnable part of an image config (OCI image-spec config.config). */
export interface ImageRunConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface ImageConfigFile {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: ImageRunConfig;
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: Array<{ created?: string; created_by?: string; empty_layer?: boolean; comment?: string }>;
}

/** A parsed image reference, normalised as Docker does (busybox → docker.io/library/busybox:latest). */
export interface ImageReference {
  /** Registry host[:port], e.g. "docker.io", "127.0.0.1:5000". */
  domain: string;
  /** Repository path inside the registry, e.g. "library/busybox". */
  path: string;
  tag?: string;
  digest?: string;
}

/** What berth keeps for one image (one platform-resolved manifest). */
export interface ImageRecord {
  /** The config digest, as crictl shows IMAGE ID. */
  id: string;
  /** Fully qualified name:tag references pointing here. */
  repoTags: string[];
  /** Fully qualified name@digest references (the digest that was resolved: index or manifest). */
  repoDigests: string[];
  /** The platform-selected manifest. */
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** Uncompressed layer digests from the config's rootfs. */
  diffIds: string[];
  /** Chain IDs, one per layer, keys of the committed snapshots. */
  chainIds: string[];
  /** Bytes of content (manifest + config + compressed layers), what crictl prints as SIZE. */
  size: number;
  /** Parsed runnable config. */
  runConfig: ImageRunConfig;
  platform: Platform;
  /** Milliseconds since the epoch. */
  createdAt: number;
  pinned: boolean;
}

export interface ContentInfo {
  digest: string;
  size: number;
  createdAt: number;
}

/**
 * An ingest: a blob being written. It survives a crash: reopening the same ref resumes at
 * `offset` (bytes already written), and `commit` verifies size and digest before the blob
 * becomes visible under its name.
 */
export interface Ingest {
  readonly ref: string;
  /**
   * Bytes already written (and hashed): a download resumes from here with a Range request. 0
   * for a new ingest, or when what was on disk was meant for another digest or size.
   */
  readonly offset: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Verify and move into place. Throws DataLossError (and discards the ingest) on a mismatch. */
  commit(): Promise<ContentInfo>;
  /** Discard what was written (e.g. the server ignored a Range request). */
  truncate(): Promise<void>;
  /** Release without discarding: the ingest can be resumed later. */
  close(): Promise<void>;
}

export interface ContentStore {
  info(digest: string): Promise<ContentInfo | undefined>;
  /** Path of a committed blob, for readers that want a file. */
  blobPath(digest: string): string;
  read(digest: string): Promise<Buffer>;
  readStream(digest: string): Readable;
  /**
   * Open or resume the ingest for `expected`. One writer per digest: this waits while another
   * Ingest of the same digest is open in this process (until its commit or close), and throws
   * ALREADY_EXISTS if the blob was committed meanwhile. Callers check `info()` first and treat
   * ALREADY_EXISTS as done.
   */
  ingest(expected: Pick<Descriptor, "digest" | "size">): Promise<Ingest>;
  /** Write a small blob in one go; verifies `expected` when given. Returns its info. */
  put(data: Uint8Array, expectedDigest?: string): Promise<ContentInfo>;
  delete(digest: string): Promise<void>;
  list(): Promise<ContentInfo[]>;
  /** Bytes and inodes used by blobs and ingests. */
  usage(): Promise<{ bytes: number; inodes: number }>;
}

/** Credentials for one registry: basic auth, or an identity/registry token. */
export interface RegistryAuth {
  username?: string;
  password?: string;
  /** base64(username:password), as CRI AuthConfig.auth and docker config.json give it. */
  auth?: string;
  identityToken?: string;
  registryToken?: string;
}

/** One endpoint that can serve a registry host's content (the host itself or a mirror). */
export interface RegistryEndpoint {
  /** "http://127.0.0.1:5000" or "https://registry-1.docker.io". */
  url: string;
  /** Repository path prefix the mirror serves under, if any (containerd's hosts.toml `override_path`). */
  pathPrefix?: string;
  insecureSkipVerify?: boolean;
  caFile?: string;
  auth?: RegistryAuth;
}

/** How to reach a registry host: its mirrors in order, then the host itself unless disabled. */
export interface RegistryHostConfig {
  host: string;
  mirrors: RegistryEndpoint[];
  /** Endpoint for the host itself; undefined means "https://host" (http if insecure). */
  self?: RegistryEndpoint;
  /** Plain HTTP allowed for the host itself. */
  insecure?: boolean;
  auth?: RegistryAuth;
}

export interface ResolvedReference {
  ref: ImageReference;
  /** Digest of what the tag points at (an index or a manifest). */
  digest: string;
  descriptor: Descriptor;
  /** The endpoint that answered, used for the blobs that follow. */
  endpoint: RegistryEndpoint;
}

export interface BlobFetchOptions {
  /** Resume from this byte offset with a Range request. */
  offset?: number;
  signal?: AbortSignal;
}

export interface BlobFetch {
  /** Bytes that follow start at this offset (0 when the server ignored the Range request). */
  offset: number;
  body: Readable;
}

/** Speaks the OCI distribution spec to one registry host, through its mirrors. */
export interface RegistryClient {
  resolve(ref: ImageReference): Promise<ResolvedReference>;
  fetchManifest(resolved: ResolvedReference, digest: string): Promise<{ mediaType: string; data: Buffer }>;
  fetchBlob(resolved: ResolvedReference, desc: Descriptor, opts?: BlobFetchOptions): Promise<BlobFetch>;
  /** Upload a blob unless the registry has it (HEAD, then cross-mount or POST+PUT). */
  pushBlob(ref: ImageReference, desc: Descriptor, open: () => Readable): Promise<void>;
  pushManifest(ref: ImageReference, mediaType: string, data: Buffer): Promise<string>;
}

export interface PullProgressEvent {
  kind: "resolved" | "layer-start" | "layer-progress" | "layer-done" | "layer-exists" | "unpacked" | "done";
  ref: string;
  digest?: string;
  /** Bytes downloaded so far of this layer (or of all layers, for "done"). */
  current?: number;
  total?: number;
  resumedFrom?: number;
}

export interface PullOptions {
  auth?: RegistryAuth;
  platform?: Platform;
  onProgress?: (ev: PullProgressEvent) => void;
  signal?: AbortSignal;
}

/** CRI-shaped image service that the CRI server and the reconciler call in-process. */
export interface ImageService {
  pull(reference: string, opts?: PullOptions): Promise<ImageRecord>;
  /** By id, id prefix, name:tag, name@digest or short name. */
  get(reference: string): Promise<ImageRecord | undefined>;
  list(filter?: { reference?: string }): Promise<ImageRecord[]>;
  /** Drop the reference (or all references, when given an id). Content and snapshots go with the last one unless in use. */
  remove(reference: string): Promise<void>;
  fsInfo(): Promise<{ mountpoint: string; usedBytes: number; inodesUsed: number; timestamp: number }>;
  importArchive(path: string, opts?: { name?: string }): Promise<ImageRecord[]>;
  push(reference: string, target?: string, opts?: { auth?: RegistryAuth }): Promise<string>;
}
