// The image builder against the OCI image-spec schemas, skopeo and a real docker-registry: every
// test image is a valid layout, skopeo reads it, and a push keeps its digests.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { createGunzip } from "node:zlib";
import bcrypt from "bcryptjs";
import * as tar from "tar-stream";
import { BUSYBOX_APPLETS, BUSYBOX_PATH, busyboxRootfs, DEFAULT_TIME, type LayerEntry, randomFileEntry, writeImageToLayout } from "../../runtime/image/build";
import { type Descriptor, type ImageConfigFile, type Index, type Manifest, MediaType } from "../../runtime/image/types";
import { validateConfig, validateIndex, validateLayout, validateManifest } from "../support/oci-schemas";
import { BUSYBOX_EXPECT, buildTestImages, LAYERED_EXPECT, MULTIARCH_EXPECT, pushLayout, type TestImage, type TestImages, USER_WORKDIR_CONFIG } from "../support/test-images";

const run = promisify(execFile);

// ---- a registry of our own (test/support/registry.ts will replace this) ----

interface Registry {
  host: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function startRegistry(opts: { htpasswd?: { username: string; password: string } } = {}): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), "berth-registry-"));
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const host = `127.0.0.1:${await freePort()}`;
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: "error" },
      storage: { filesystem: { rootdirectory: join(dir, "data") }, delete: { enabled: true } },
      http: { addr: host },
    };
    if (opts.htpasswd) {
      await writeFile(join(dir, "htpasswd"), `${opts.htpasswd.username}:${bcrypt.hashSync(opts.htpasswd.password, 4)}\n`);
      config.auth = { htpasswd: { realm: "berth-test", path: join(dir, "htpasswd") } };
    }
    // JSON is YAML.
    await writeFile(join(dir, "config.yml"), JSON.stringify(config));
    let output = "";
    child = spawn("docker-registry", ["serve", join(dir, "config.yml")], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${output}`);
      const res = await fetch(`http://${host}/v2/`).catch(() => undefined);
      if (res && (res.status === 200 || res.status === 401)) break;
      if (i >= 500) throw new Error(`docker-registry did not answer on ${host}: ${output}`);
      await sleep(20);
    }
    return { host, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---- reading what the builder wrote ----

const blobPath = (layout: string, digest: string) => join(layout, "blobs", "sha256", digest.slice("sha256:".length));
const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, "utf8")) as T;

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  await pipeline(createReadStream(path), h);
  return `sha256:${h.digest("hex")}`;
}

interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  size: number;
  linkname: string | null;
  pax: Record<string, string> | null;
  sha256: string;
  /** Bodies up to 64 KiB. */
  text?: string;
}

async function readLayer(layout: string, desc: Descriptor): Promise<{ entries: TarEntry[]; diffId: string }> {
  const diff = createHash("sha256");
  const tarBytes = new PassThrough();
  const unzip = desc.mediaType.endsWith("gzip") ? createGunzip() : new PassThrough();
  const reading = pipeline(createReadStream(blobPath(layout, desc.digest)), unzip, tarBytes);
  const extract = tar.extract();
  const feeding = (async () => {
    for await (const c of tarBytes) {
      diff.update(c as Buffer);
      if (!extract.write(c)) await new Promise<void>((r) => extract.once("drain", () => r()));
    }
    extract.end(undefined);
  })();
  const entries: TarEntry[] = [];
  for await (const entry of extract) {
    const h = entry.header;
    const hash = createHash("sha256");
    const chunks: Buffer[] = [];
    for await (const c of entry) {
      hash.update(c as Buffer);
      if (h.size <= 65536) chunks.push(c as Buffer);
    }
    const pax = (h.pax as Record<string, string> | null | undefined) ?? null;
    const text = h.size <= 65536 ? Buffer.concat(chunks).toString() : undefined;
    entries.push({ name: h.name, type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime, size: h.size, linkname: h.linkname, pax, sha256: `sha256:${hash.digest("hex")}`, text });
  }
  await Promise.all([reading, feeding]);
  return { entries, diffId: `sha256:${diff.digest("hex")}` };
}

/** Overlay semantics in miniature (image-spec layer.md): whiteouts and opaque markers hide what lower layers had. */
function applyLayers(layers: TarEntry[][]): Map<string, TarEntry> {
  const fs = new Map<string, TarEntry>();
  for (const entries of layers) {
    const lower = new Set(fs.keys());
    for (const e of entries) {
      const name = `/${e.name.replace(/\/$/, "")}`;
      const base = name.slice(name.lastIndexOf("/") + 1);
      const dir = name.slice(0, name.lastIndexOf("/"));
      if (base === ".wh..wh..opq") {
        for (const p of lower) if (p.startsWith(`${dir}/`)) fs.delete(p);
      } else if (base.startsWith(".wh.")) {
        const gone = `${dir}/${base.slice(4)}`;
        for (const p of [...fs.keys()]) if (p === gone || p.startsWith(`${gone}/`)) fs.delete(p);
      } else {
        fs.set(name, e);
      }
    }
  }
  return fs;
}

/** What the tag points at, followed down to every manifest and config. */
async function walk(img: TestImage): Promise<{ top: unknown; manifests: Array<{ desc: Descriptor; manifest: Manifest; config: ImageConfigFile }> }> {
  const index = await readJson<Index>(join(img.layout, "index.json"));
  const target = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === img.tag);
  assert.ok(target, `${img.layout} tags ${img.tag}`);
  const top = await readJson<Manifest | Index>(blobPath(img.layout, target.digest));
  const descs = "manifests" in top ? top.manifests : [target];
  const manifests = [];
  for (const desc of descs) {
    const manifest = await readJson<Manifest>(blobPath(img.layout, desc.digest));
    manifests.push({ desc, manifest, config: await readJson<ImageConfigFile>(blobPath(img.layout, manifest.config.digest)) });
  }
  return { top, manifests };
}

async function skopeoJson<T>(args: string[]): Promise<T> {
  const { stdout } = await run("skopeo", args, { maxBuffer: 16 << 20 });
  return JSON.parse(stdout) as T;
}

/** skopeo 1.9 finds tags only on OCI-typed entries; a Docker-typed image is read as the layout's only entry. */
const layoutRef = (img: TestImage) => (img.mediaType.includes("docker") ? `oci:${img.layout}` : `oci:${img.layout}:${img.tag}`);

describe("image builder", () => {
  let work: string;
  let images: TestImages;
  let registry: Registry;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "berth-image-build-"));
    images = await buildTestImages(join(work, "layouts"));
    registry = await startRegistry();
  });

  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test("every layout, index, manifest and config validates against the image-spec schemas", async () => {
    for (const [name, img] of Object.entries(images)) {
      validateLayout(await readJson(join(img.layout, "oci-layout")));
      validateIndex(await readJson(join(img.layout, "index.json")));
      const { top, manifests } = await walk(img);
      if (name === "multiarch") validateIndex(top);
      for (const m of manifests) {
        validateManifest(m.manifest);
        validateConfig(m.config);
      }
    }
  });

  test("the schemas reject what the spec forbids, naming the failing path", () => {
    assert.throws(() => validateManifest({ schemaVersion: 2, config: { mediaType: "a/b", digest: "sha256:abc", size: 1 }, layers: [{ mediaType: "not a type", digest: "sha256:abc", size: 1 }] }), /\/layers\/0\/mediaType/);
    assert.throws(() => validateIndex({ schemaVersion: 2, manifests: [{ mediaType: "a/b", size: 1 }] }), /\/manifests\/0 must have required property 'digest'/);
    assert.throws(() => validateConfig({ architecture: "amd64", os: "linux", created: "yesterday", rootfs: { type: "layers", diff_ids: [] } }), /\/created must match format "date-time"/);
    assert.throws(() => validateManifest({ schemaVersion: 2, config: { mediaType: "a/b", digest: "sha256:abc", size: 1, urls: ["no scheme"] }, layers: [] }), /\/config\/urls\/0 must match format "uri"/);
    assert.throws(() => validateLayout({ imageLayoutVersion: 1 }), /\/imageLayoutVersion must be string/);
  });

  test("every blob is named by its digest, every descriptor has the blob's size, diff_ids hash the uncompressed tars", async () => {
    for (const img of Object.values(images)) {
      for (const file of await readdir(join(img.layout, "blobs", "sha256"))) {
        assert.equal(await sha256File(join(img.layout, "blobs", "sha256", file)), `sha256:${file}`, `${img.layout}: blob ${file}`);
      }
      const { manifests } = await walk(img);
      for (const { desc, manifest, config } of manifests) {
        assert.equal((await stat(blobPath(img.layout, desc.digest))).size, desc.size);
        assert.equal((await stat(blobPath(img.layout, manifest.config.digest))).size, manifest.config.size);
        assert.equal(manifest.layers.length, config.rootfs.diff_ids.length);
        for (const [i, layer] of manifest.layers.entries()) {
          assert.equal((await stat(blobPath(img.layout, layer.digest))).size, layer.size);
          assert.equal((await readLayer(img.layout, layer)).diffId, config.rootfs.diff_ids[i]);
        }
      }
    }
  });

  test("the busybox layer holds Debian's static busybox, its applet links, users and directories, in a fixed order and time", async () => {
    const img = images.busybox;
    assert.equal(img.selected.layers.length, 1);
    const { entries } = await readLayer(img.layout, img.selected.layers[0]!);
    const names = entries.map((e) => e.name);
    for (const [i, name] of names.entries()) {
      const parent = name.replace(/\/$/, "").split("/").slice(0, -1).join("/");
      if (parent) assert.ok(names.slice(0, i).includes(`${parent}/`), `${parent}/ comes before ${name}`);
      assert.ok(!name.startsWith("/") && !name.startsWith("./"), name);
    }
    assert.ok(entries.every((e) => e.mtime.getTime() === DEFAULT_TIME.getTime()));
    const fs = applyLayers([entries]);
    const bb = fs.get("/bin/busybox")!;
    assert.equal(bb.type, "file");
    assert.equal(bb.mode & 0o777, 0o755);
    assert.equal(bb.sha256, await sha256File(BUSYBOX_PATH));
    for (const [path, target] of Object.entries(BUSYBOX_EXPECT.symlinks)) assert.equal(fs.get(path)?.linkname, target, path);
    for (const applet of BUSYBOX_APPLETS) assert.equal(fs.get(`/bin/${applet}`)?.type, "symlink", applet);
    for (const [path, text] of Object.entries(BUSYBOX_EXPECT.files)) assert.ok(fs.get(path)?.text?.startsWith(text), path);
    assert.match(fs.get("/etc/passwd")!.text!, /^app:x:1000:1000:app:\/home\/app:\/bin\/sh$/m);
    assert.match(fs.get("/etc/group")!.text!, /^app:x:1000:$/m);
    for (const [path, mode] of Object.entries(BUSYBOX_EXPECT.dirs)) {
      assert.equal(fs.get(path)?.type, "directory", path);
      assert.equal(fs.get(path)!.mode & 0o7777, mode, path);
    }
    assert.equal(fs.get("/home/app")?.uid, 1000);
    assert.equal(fs.get("/home/app")?.gid, 1000);
    const { stdout } = await run(BUSYBOX_PATH, ["--list"]);
    const available = new Set(stdout.split("\n"));
    assert.deepEqual(
      BUSYBOX_APPLETS.filter((a) => !available.has(a)),
      [],
      "every linked applet exists in this busybox",
    );
  });

  test("layered: the upper layer's whiteout and opaque marker leave /data/keep and /opaque/new only", async () => {
    const img = images.layered;
    assert.equal(img.selected.layers.length, LAYERED_EXPECT.layers);
    assert.equal(img.selected.layers[0]!.digest, images.busybox.selected.layers[0]!.digest, "the busybox base layer is shared");
    const layers = [];
    for (const l of img.selected.layers) layers.push((await readLayer(img.layout, l)).entries);
    const top = layers[2]!.map((e) => e.name);
    assert.ok(top.includes("data/.wh.drop"), "whiteout marker");
    assert.ok(top.indexOf("opaque/.wh..wh..opq") < top.indexOf("opaque/new"), "opaque marker before the directory's new content");
    const fs = applyLayers(layers);
    for (const [path, text] of Object.entries(LAYERED_EXPECT.present)) assert.equal(fs.get(path)?.text, text, path);
    for (const path of LAYERED_EXPECT.absent) assert.equal(fs.has(path), false, path);
    assert.ok(fs.has("/bin/busybox"));
  });

  test("multiarch: an index with linux/amd64 (busybox) and linux/arm64/v8 (a marker file)", async () => {
    const img = images.multiarch;
    assert.equal(img.mediaType, MediaType.OCIIndex);
    assert.deepEqual(Object.keys(img.platforms).sort(), [...MULTIARCH_EXPECT.platforms].sort());
    const { top, manifests } = await walk(img);
    assert.deepEqual(
      (top as Index).manifests.map((m) => m.platform),
      [
        { architecture: "amd64", os: "linux" },
        { architecture: "arm64", os: "linux", variant: "v8" },
      ],
    );
    assert.equal(manifests[0]!.config.architecture, "amd64");
    assert.equal(manifests[1]!.config.architecture, "arm64");
    assert.equal(manifests[1]!.config.variant, "v8");
    assert.equal(img.selected.layers[0]!.digest, images.busybox.selected.layers[0]!.digest);
    const arm = applyLayers([(await readLayer(img.layout, img.platforms["linux/arm64/v8"]!.layers[0]!)).entries]);
    assert.equal(arm.get(MULTIARCH_EXPECT.arm64Marker.path)?.text, MULTIARCH_EXPECT.arm64Marker.content);
  });

  test("user-workdir: the config carries USER, WORKDIR, ENV, ENTRYPOINT/CMD, LABELs, EXPOSE and STOPSIGNAL", async () => {
    const { manifests } = await walk(images.userWorkdir);
    assert.deepEqual(manifests[0]!.config.config, USER_WORKDIR_CONFIG);
    assert.equal(images.userWorkdir.id, manifests[0]!.manifest.config.digest);
  });

  test("Docker media types on request: manifest v2 schema 2, Docker config and layer types", async () => {
    const img = images.dockerBusybox;
    const { manifests } = await walk(img);
    const m = manifests[0]!.manifest;
    assert.equal(m.mediaType, MediaType.DockerManifest);
    assert.equal(m.config.mediaType, MediaType.DockerConfig);
    assert.deepEqual(
      m.layers.map((l) => l.mediaType),
      [MediaType.DockerLayerGzip],
    );
    assert.deepEqual(img.selected.diffIds, images.busybox.selected.diffIds, "same tar as the OCI-typed busybox");
  });

  test("building the same spec again gives the same digests; random content is deterministic, incompressible and streamed", async () => {
    const dir = join(work, "again");
    const again = await writeImageToLayout(dir, { layers: [{ entries: busyboxRootfs() }], config: images.busybox.runConfig }, { tag: "v1" });
    assert.equal(again.manifest.digest, images.busybox.manifestDigest);
    const bytes = 6 * 1024 * 1024 + 123;
    const a = await writeImageToLayout(dir, { layers: [{ entries: [randomFileEntry("/r", bytes, "s1")] }], config: {} });
    const b = await writeImageToLayout(dir, { layers: [{ entries: [randomFileEntry("/r", bytes, "s1")] }], config: {} });
    const c = await writeImageToLayout(dir, { layers: [{ entries: [randomFileEntry("/r", bytes, "s2")] }], config: {} });
    assert.equal(a.layers[0]!.digest, b.layers[0]!.digest);
    assert.notEqual(a.layers[0]!.digest, c.layers[0]!.digest);
    assert.ok(a.layers[0]!.size > bytes, "gzip cannot shrink it");
    const { entries } = await readLayer(dir, a.layers[0]!);
    assert.equal(entries.find((e) => e.name === "r")?.size, bytes);
    const fromFile = await writeImageToLayout(dir, { layers: [{ entries: [{ path: "/bb", type: "file", content: { fromFile: BUSYBOX_PATH } }], compression: "none" }], config: {} });
    assert.equal(fromFile.layers[0]!.mediaType, MediaType.OCILayer);
    assert.equal(fromFile.layers[0]!.digest, fromFile.diffIds[0], "an uncompressed layer's digest is its diff_id");
  });

  test("links, xattrs, whiteouts and opaque markers are written as the layer format says", async () => {
    const dir = join(work, "formats");
    const built = await writeImageToLayout(dir, {
      config: {},
      layers: [
        {
          entries: [
            { path: "/a/file", type: "file", content: "x", mode: 0o4755, uid: 7, gid: 8, xattrs: { "user.berth": "yes" }, mtime: new Date("2020-02-02T00:00:00Z") },
            { path: "/a/hard", type: "hardlink", linkname: "/a/file" },
            { path: "/a/soft", type: "symlink", linkname: "../etc/x" },
            { path: "/gone", type: "whiteout" },
            { path: "/o", type: "opaque" },
            { path: `/long/${"d".repeat(120)}/${"f".repeat(120)}`, type: "file", content: "long" },
          ],
        },
      ],
    });
    const { entries } = await readLayer(dir, built.layers[0]!);
    const by = new Map(entries.map((e) => [e.name, e]));
    const file = by.get("a/file")!;
    assert.equal(file.mode, 0o4755);
    assert.equal(file.uid, 7);
    assert.equal(file.gid, 8);
    assert.equal(file.mtime.toISOString(), "2020-02-02T00:00:00.000Z");
    assert.equal(file.pax?.["SCHILY.xattr.user.berth"], "yes");
    assert.equal(by.get("a/hard")?.type, "link");
    assert.equal(by.get("a/hard")?.linkname, "a/file");
    assert.equal(by.get("a/soft")?.linkname, "../etc/x");
    assert.equal(by.get(".wh.gone")?.size, 0);
    assert.equal(by.get("o/")?.type, "directory", "the opaque directory itself is in the layer");
    assert.equal(by.get("o/.wh..wh..opq")?.type, "file");
    assert.equal(by.get(`long/${"d".repeat(120)}/${"f".repeat(120)}`)?.text, "long");
  });

  test("a bad spec fails naming the entry, and leaves no partial blob behind", async () => {
    const dir = join(work, "bad");
    await mkdir(dir);
    const build = (entries: LayerEntry[]) => writeImageToLayout(dir, { layers: [{ entries }], config: {} });
    await assert.rejects(build([{ path: "/x", type: "file", content: { fromFile: join(work, "no-such-file") } }]), /layer 0: x: cannot read .*no-such-file/);
    await assert.rejects(build([{ path: "/x", type: "file" }, { path: "x", type: "dir" }]), /lists x twice/);
    await assert.rejects(build([{ path: "/../x", type: "file" }]), /invalid layer path/);
    await assert.rejects(build([{ path: "/a", type: "hardlink", linkname: "/b" }, { path: "/b", type: "file" }]), /not earlier in this layer/);
    await assert.rejects(build([{ path: "/f", type: "file" }, { path: "/f/g", type: "file" }]), /not a directory/);
    const left = (await readdir(join(dir, "blobs", "sha256"))).filter((f) => f.startsWith("."));
    assert.deepEqual(left, []);
  });

  test("skopeo inspects every layout and finds the builder's digests", async () => {
    for (const [name, img] of Object.entries(images)) {
      const info = await skopeoJson<{ Digest: string; Architecture: string; Os: string }>(["inspect", layoutRef(img)]);
      assert.equal(info.Digest, img.manifestDigest, name);
      assert.equal(info.Architecture, "amd64", name);
      const config = await skopeoJson<ImageConfigFile>(["inspect", "--config", layoutRef(img)]);
      assert.deepEqual(config.config, img.runConfig, name);
    }
  });

  test("skopeo pushes each layout to a docker-registry and reads back the same digests", async () => {
    for (const [name, img] of Object.entries(images)) {
      const pushed = await pushLayout(img.layout, img.tag, registry.host, img.repo);
      assert.equal(pushed, img.manifestDigest, name);
      const ref = `docker://${registry.host}/${img.repo}:${img.tag}`;
      const info = await skopeoJson<{ Digest: string; Layers: string[] }>(["inspect", "--tls-verify=false", ref]);
      assert.equal(info.Digest, img.manifestDigest, name);
      assert.deepEqual(
        info.Layers,
        img.selected.layers.map((l: Descriptor) => l.digest),
        name,
      );
      const { stdout: raw } = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", ref], { maxBuffer: 16 << 20 });
      assert.equal(`sha256:${createHash("sha256").update(raw).digest("hex")}`, img.manifestDigest, `${name}: the registry serves the bytes the builder wrote`);
      assert.equal(JSON.parse(raw).mediaType, img.mediaType, name);
    }
    const arm = await skopeoJson<ImageConfigFile>(["--override-arch", "arm64", "--override-variant", "v8", "inspect", "--config", "--tls-verify=false", `docker://${registry.host}/${images.multiarch.repo}:${images.multiarch.tag}`]);
    assert.equal(arm.architecture, "arm64", "every platform of the index was pushed");
  });

  test("pushLayout passes credentials to a registry that wants them", async () => {
    const creds = { username: "berth", password: "s3cret" };
    const secured = await startRegistry({ htpasswd: creds });
    try {
      const img = images.busybox;
      await assert.rejects(pushLayout(img.layout, img.tag, secured.host, img.repo), /skopeo copy .* failed: .*(unauthorized|authentication required)/i);
      assert.equal(await pushLayout(img.layout, img.tag, secured.host, img.repo, creds), img.manifestDigest);
      const info = await skopeoJson<{ Digest: string }>(["inspect", "--tls-verify=false", "--creds", `${creds.username}:${creds.password}`, `docker://${secured.host}/${img.repo}:${img.tag}`]);
      assert.equal(info.Digest, img.manifestDigest);
    } finally {
      await secured.stop();
    }
  });
});
