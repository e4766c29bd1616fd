// The images the suite pulls, run and unpacks, built from this machine's files (Debian's static
// busybox) into OCI layouts, one layout per image, and the helper that pushes a layout to a
// registry with skopeo. Each image's expected contents are exported beside it so tests assert
// on the same facts the builder was given.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type BuiltImage, busyboxRootfs, hostPlatform, type ImageSpec, type MediaTypeFamily, REF_NAME_ANNOTATION, writeImageToLayout, writeIndexToLayout } from "../../runtime/image/build";
import { type Descriptor, type ImageRunConfig, type Index, MediaType, type Platform } from "../../runtime/image/types";

const run = promisify(execFile);

export const TEST_TAG = "v1";
const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface TestImage {
  /** OCI layout directory holding this image only. */
  layout: string;
  tag: string;
  /** Repository path to push to, e.g. "berth-test/busybox". */
  repo: string;
  /** Digest the tag points at: the manifest, or the index for `multiarch`. Kept by a push (skopeo --preserve-digests). */
  manifestDigest: string;
  /** Media type of what the tag points at. */
  mediaType: string;
  /** The image a pull on this host (linux/amd64) selects. */
  selected: BuiltImage;
  /** Image ID (config digest) of the selected image, as CRI reports it. */
  id: string;
  runConfig: ImageRunConfig;
  /** Every platform's image by "os/architecture[/variant]" (one entry unless an index). */
  platforms: Record<string, BuiltImage>;
}

export interface TestImages {
  /** One layer: busybox, /etc/passwd with root and app (1000:1000). */
  busybox: TestImage;
  /** busybox + a layer of files + a layer that deletes one (whiteout) and makes /opaque opaque. */
  layered: TestImage;
  /** An OCI index: this host's platform, linux/amd64 (busybox), and linux/arm64/v8 (one marker file, never run). */
  multiarch: TestImage;
  /** busybox with USER, WORKDIR, ENV, ENTRYPOINT/CMD, LABELs, EXPOSE and STOPSIGNAL set. */
  userWorkdir: TestImage;
  /** busybox with Docker media types (manifest v2 schema 2, Docker config and layer types). */
  dockerBusybox: TestImage;
}

export const BUSYBOX_CONFIG: ImageRunConfig = { Env: [PATH_ENV], Cmd: ["sh"] };

/** What an unpacked busybox rootfs has: the binary, applet links, users and directories. */
export const BUSYBOX_EXPECT = {
  files: { "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "/etc/group": "root:x:0:\n" },
  executables: ["/bin/busybox"],
  symlinks: { "/bin/sh": "busybox", "/bin/sleep": "busybox", "/bin/httpd": "busybox" } as Record<string, string>,
  dirs: { "/tmp": 0o1777, "/root": 0o700, "/home/app": 0o755 } as Record<string, number>,
  users: { root: { uid: 0, gid: 0, home: "/root" }, app: { uid: 1000, gid: 1000, home: "/home/app" } },
};

/** After all three layers: what is there with its content, and what the upper layer removed. */
export const LAYERED_EXPECT = {
  present: { "/data/keep": "keep\n", "/opaque/new": "new\n" } as Record<string, string>,
  absent: ["/data/drop", "/opaque/old", "/opaque/old/x"],
  layers: 3,
};

export const MULTIARCH_EXPECT = {
  platforms: ["linux/amd64", "linux/arm64/v8"],
  /** In the arm64 image only. */
  arm64Marker: { path: "/arm64-marker", content: "linux/arm64 image: never run\n" },
};

export const USER_WORKDIR_CONFIG: ImageRunConfig = {
  User: "1000:1000",
  WorkingDir: "/home/app",
  Env: [PATH_ENV, "GREETING=hello from the image"],
  Entrypoint: ["/bin/sh", "-c"],
  Cmd: ['echo "$GREETING as $(id -u):$(id -g) in $(pwd)"'],
  Labels: { "org.opencontainers.image.title": "user-workdir", "berth.test/purpose": "config" },
  ExposedPorts: { "8080/tcp": {} },
  StopSignal: "SIGQUIT",
};

const busyboxImage = (config: ImageRunConfig): ImageSpec => ({ layers: [{ entries: busyboxRootfs() }], config });

const layeredImage: ImageSpec = {
  config: BUSYBOX_CONFIG,
  layers: [
    { entries: busyboxRootfs() },
    {
      entries: [
        { path: "/data/keep", type: "file", content: "keep\n" },
        { path: "/data/drop", type: "file", content: "drop\n" },
        { path: "/opaque/old/x", type: "file", content: "x\n" },
      ],
    },
    {
      entries: [
        { path: "/data/drop", type: "whiteout" },
        { path: "/opaque", type: "opaque" },
        { path: "/opaque/new", type: "file", content: "new\n" },
      ],
    },
  ],
};

const arm64Image: ImageSpec = {
  config: { Cmd: ["/bin/true"] },
  platform: { os: "linux", architecture: "arm64", variant: "v8" },
  layers: [{ entries: [{ path: MULTIARCH_EXPECT.arm64Marker.path, type: "file", content: MULTIARCH_EXPECT.arm64Marker.content }] }],
};

function platformKey(p: Platform | undefined): string {
  const q = p ?? hostPlatform();
  return [q.os, q.architecture, q.variant].filter(Boolean).join("/");
}

async function single(dir: string, repo: string, spec: ImageSpec, mediaTypes: MediaTypeFamily = "oci"): Promise<TestImage> {
  const built = await writeImageToLayout(dir, spec, { tag: TEST_TAG, mediaTypes });
  return {
    layout: dir,
    tag: TEST_TAG,
    repo,
    manifestDigest: built.manifest.digest,
    mediaType: built.manifest.mediaType,
    selected: built,
    id: built.config.digest,
    runConfig: spec.config,
    platforms: { [platformKey(spec.platform)]: built },
  };
}

async function multi(dir: string, repo: string, specs: ImageSpec[]): Promise<TestImage> {
  const index = await writeIndexToLayout(
    dir,
    specs.map((image) => ({ image })),
    { tag: TEST_TAG },
  );
  const platforms: Record<string, BuiltImage> = {};
  const doc = JSON.parse(await readFile(join(dir, "blobs", "sha256", index.digest.slice("sha256:".length)), "utf8")) as Index;
  for (const m of doc.manifests) platforms[platformKey(m.platform)] = await readBuilt(dir, m);
  const selected = platforms[platformKey(undefined)];
  if (!selected) throw new Error(`${dir}: the index has no image for this host (${platformKey(undefined)})`);
  return {
    layout: dir,
    tag: TEST_TAG,
    repo,
    manifestDigest: index.digest,
    mediaType: index.mediaType,
    selected,
    id: selected.config.digest,
    runConfig: specs.find((s) => platformKey(s.platform) === platformKey(undefined))!.config,
    platforms,
  };
}

async function readBuilt(dir: string, manifest: Descriptor): Promise<BuiltImage> {
  const blob = async (d: string) => JSON.parse(await readFile(join(dir, "blobs", "sha256", d.slice("sha256:".length)), "utf8"));
  const m = await blob(manifest.digest);
  const config = await blob(m.config.digest);
  const { platform: _, annotations: __, ...plain } = manifest;
  return { manifest: plain, config: m.config, layers: m.layers, diffIds: config.rootfs.diff_ids };
}

/** Builds every test image, each in its own layout below `dir` (created if missing; the caller removes it). */
export async function buildTestImages(dir: string): Promise<TestImages> {
  const [busybox, layered, multiarch, userWorkdir, dockerBusybox] = await Promise.all([
    single(join(dir, "busybox"), "berth-test/busybox", busyboxImage(BUSYBOX_CONFIG)),
    single(join(dir, "layered"), "berth-test/layered", layeredImage),
    multi(join(dir, "multiarch"), "berth-test/multiarch", [busyboxImage(BUSYBOX_CONFIG), arm64Image]),
    single(join(dir, "user-workdir"), "berth-test/user-workdir", busyboxImage(USER_WORKDIR_CONFIG)),
    single(join(dir, "busybox-docker"), "berth-test/busybox-docker", busyboxImage(BUSYBOX_CONFIG), "docker"),
  ]);
  return { busybox: busybox!, layered: layered!, multiarch: multiarch!, userWorkdir: userWorkdir!, dockerBusybox: dockerBusybox! };
}

/** skopeo 1.9 finds a tag only among OCI-typed entries of index.json; a Docker-typed image is reachable as the layout's only entry. */
async function skopeoSource(layoutDir: string, tag: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layoutDir, "index.json"), "utf8")) as Index;
  const target = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag);
  if (!target) throw new Error(`${layoutDir} has no image tagged "${tag}"`);
  if (target.mediaType === MediaType.OCIManifest || target.mediaType === MediaType.OCIIndex) return `oci:${layoutDir}:${tag}`;
  if (index.manifests.length === 1) return `oci:${layoutDir}`;
  throw new Error(`${layoutDir}: "${tag}" has media type ${target.mediaType}; skopeo reads that only from a layout holding one image`);
}

export type RegistryCreds = string | { username: string; password: string };

/**
 * Pushes `oci:<layoutDir>:<tag>` to `docker://<registryHost>/<repo>:<tag>` over plain HTTP, every
 * platform of an index, digests unchanged. Returns the digest the registry now has under the tag.
 */
export async function pushLayout(layoutDir: string, tag: string, registryHost: string, repo: string, creds?: RegistryCreds): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), "berth-push-"));
  try {
    const digestFile = join(work, "digest");
    const args = ["copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false", "--digestfile", digestFile];
    if (creds) args.push("--dest-creds", typeof creds === "string" ? creds : `${creds.username}:${creds.password}`);
    args.push(await skopeoSource(layoutDir, tag), `docker://${registryHost}/${repo}:${tag}`);
    try {
      await run("skopeo", args, { maxBuffer: 16 << 20 });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`skopeo copy ${layoutDir}:${tag} → ${registryHost}/${repo}:${tag} failed: ${e.stderr?.trim() || e.message}`);
    }
    return (await readFile(digestFile, "utf8")).trim();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
