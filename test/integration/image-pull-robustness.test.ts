// The image pipeline under trouble, through a real `berth serve` and a real registry: transfers
// cut and resumed, a daemon killed mid-pull, a registry that only fails, layers that try to
// escape their snapshot, concurrent pulls, a full disk, and what berth writes checked against the
// OCI schemas.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import { type BuiltImage, randomFileEntry, REF_NAME_ANNOTATION, writeImageToLayout } from "../../runtime/image/build";
import { chainIds } from "../../runtime/image/chain";
import { type Descriptor, MediaType } from "../../runtime/image/types";
import { Code } from "../../runtime/errors";
import { type CutProxy, startCutProxy } from "../support/cut-proxy";
import { startDaemon, type TestDaemon } from "../support/daemon";
import { validateConfig, validateManifest } from "../support/oci-schemas";
import { startRegistry, type TestRegistry } from "../support/registry";
import { pushLayout } from "../support/test-images";

const run = promisify(execFile);
const MiB = 1024 * 1024;
const TAG = "v1";

type Image = { id: string; repoTags: string[]; repoDigests: string[]; size: string };
type GrpcError = { code: number; message: string };
type TarHeader = Parameters<tar.Pack["entry"]>[0];

/** assert.rejects with a gRPC code and patterns the message must match; returns the message. */
async function rejectsWith(call: Promise<unknown>, code: number, ...patterns: Array<RegExp | string>): Promise<string> {
  let message = "";
  await assert.rejects(call, (e: GrpcError) => {
    message = e.message;
    assert.equal(e.code, code, `expected gRPC code ${code}, got ${e.code}: ${e.message}`);
    for (const p of patterns) {
      if (typeof p === "string") assert.ok(e.message.includes(p), `message should name "${p}": ${e.message}`);
      else assert.match(e.message, p);
    }
    return true;
  });
  return message;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Every committed blob whose bytes do not hash to its file name. */
async function mismatchedBlobs(root: string): Promise<string[]> {
  const dir = join(root, "content", "blobs", "sha256");
  const names = await readdir(dir).catch(() => [] as string[]);
  const bad: string[] = [];
  for (const name of names) if ((await sha256File(join(dir, name))) !== name) bad.push(name);
  return bad;
}

interface SnapshotMeta {
  key: string;
  kind: string;
  labels: Record<string, string>;
  dir: string;
}

async function snapshotsOf(root: string): Promise<SnapshotMeta[]> {
  const dir = join(root, "snapshots");
  const out: SnapshotMeta[] = [];
  for (const id of await readdir(dir).catch(() => [] as string[])) {
    const meta = await readFile(join(dir, id, "meta.json"), "utf8").catch(() => undefined);
    if (meta) out.push({ ...(JSON.parse(meta) as Omit<SnapshotMeta, "dir">), dir: join(dir, id) });
  }
  return out;
}

async function ingestsOf(root: string): Promise<string[]> {
  return readdir(join(root, "content", "ingest")).catch(() => []);
}

function blobGets(proxy: CutProxy, digest: string): Array<{ range: string | undefined }> {
  return proxy.requests.filter((r) => r.method === "GET" && r.path.endsWith(`/blobs/${digest}`)).map((r) => ({ range: r.headers.range }));
}

function rangeStart(range: string | undefined): number | undefined {
  const m = /^bytes=(\d+)-$/.exec(range ?? "");
  return m ? Number(m[1]) : undefined;
}

/** A tar of the given entries, each header as tar-stream takes it, in the order given. */
async function tarOf(entries: Array<{ header: TarHeader; body?: string | Buffer }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => pack.entry({ mode: 0o644, mtime: new Date(0), ...e.header }, e.body ?? "", (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/**
 * Writes an OCI layout holding one image whose layers are exactly `layerTars` (gzipped), with a
 * config whose diff_ids match, so only the unpacker can object.
 */
async function rawImageLayout(dir: string, layerTars: Buffer[]): Promise<{ manifest: Descriptor; config: Descriptor; layers: Descriptor[]; diffIds: string[] }> {
  const blobs = join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const put = async (mediaType: string, data: Buffer): Promise<Descriptor> => {
    const digest = sha256(data);
    await writeFile(join(blobs, digest.slice(7)), data);
    return { mediaType, digest, size: data.length };
  };
  const diffIds = layerTars.map(sha256);
  const layers: Descriptor[] = [];
  for (const t of layerTars) layers.push(await put(MediaType.OCILayerGzip, gzipSync(t)));
  const configDoc = { architecture: "amd64", os: "linux", config: { Cmd: ["/bin/sh"] }, rootfs: { type: "layers", diff_ids: diffIds }, history: diffIds.map(() => ({ created_by: "test" })) };
  const config = await put(MediaType.OCIConfig, Buffer.from(JSON.stringify(configDoc)));
  const manifest = await put(MediaType.OCIManifest, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCIManifest, config, layers })));
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCIIndex, manifests: [{ ...manifest, annotations: { [REF_NAME_ANNOTATION]: TAG } }] }));
  return { manifest, config, layers, diffIds };
}

describe("image pull robustness through the daemon", () => {
  let work: string;
  let registry: TestRegistry;
  let daemon: TestDaemon;
  let cutProxy: CutProxy;
  let countingProxy: CutProxy;
  /** Stalls the big layer of "refused-early" for good. */
  let stallProxy: CutProxy;
  let failing: Server;
  let failingHost: string;
  let sentinel: string;
  /** A few small files: fits anywhere, pulled first as "an image that was there before". */
  let small: BuiltImage;
  /** A small layer then a 4 MiB incompressible one. */
  let big: BuiltImage;
  /** Three layers of their own, pulled only by the concurrency test. */
  let concurrent: BuiltImage;
  let refusedEarlyStalled: Descriptor;
  const bigLayer = () => big.layers[1]!;
  const ref = (host: string, repo: string) => `${host}/berth-test/${repo}:${TAG}`;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "berth-pull-robustness-"));
    sentinel = await mkdtemp(join(tmpdir(), "berth-sentinel-"));
    const layouts = join(work, "layouts");
    [small, big, concurrent] = await Promise.all([
      writeImageToLayout(join(layouts, "small"), { layers: [{ entries: [{ path: "/etc/hello", type: "file", content: "hello\n" }, { path: "/bin/tool", type: "file", content: "#!/bin/sh\n", mode: 0o755 }] }], config: { Cmd: ["/bin/tool"] } }, { tag: TAG }),
      writeImageToLayout(join(layouts, "big"), { layers: [{ entries: [{ path: "/etc/big", type: "file", content: "big\n" }] }, { entries: [randomFileEntry("/data/random", 4 * MiB, "big-layer")] }], config: { Cmd: ["/bin/sh"] } }, { tag: TAG }),
      writeImageToLayout(
        join(layouts, "concurrent"),
        { layers: [0, 1, 2].map((i) => ({ entries: [randomFileEntry(`/layer${i}`, 256 * 1024, `concurrent-${i}`)] })), config: { Cmd: ["/bin/sh"] } },
        { tag: TAG },
      ),
    ]);
    // A refused first layer, and a second one whose transfer stalls (long before the first
    // layer's 2 MiB are in) and is still in flight when the first is refused.
    const refusedEarly = await rawImageLayout(join(layouts, "refused-early"), [
      await tarOf([
        { header: { name: "../escape" }, body: "escaped\n" },
        { header: { name: "filler" }, body: randomBytes(2 * MiB) },
      ]),
      await tarOf([{ header: { name: "data" }, body: randomBytes(2 * MiB) }]),
    ]);
    registry = await startRegistry();
    await Promise.all(["small", "big", "concurrent", "refused-early"].map((name) => pushLayout(join(layouts, name), TAG, registry.host, `berth-test/${name}`)));
    stallProxy = await startCutProxy(registry.host, { pathIncludes: `/blobs/${refusedEarly.layers[1]!.digest}`, afterBytes: 64 * 1024, stall: true });
    refusedEarlyStalled = refusedEarly.layers[1]!;
    // Cut the first GET of the big layer after 1.5 MiB; a resume must pick it up.
    cutProxy = await startCutProxy(registry.host, { pathIncludes: `/blobs/${big.layers[1]!.digest}`, afterBytes: 1.5 * MiB });
    countingProxy = await startCutProxy(registry.host);
    failing = createServer((req, res) => {
      req.resume();
      res.writeHead(500, { "content-type": "text/plain" }).end("internal trouble\n");
    });
    await new Promise<void>((resolve) => failing.listen(0, "127.0.0.1", resolve));
    failingHost = `127.0.0.1:${(failing.address() as { port: number }).port}`;
    daemon = await startDaemon({ insecureRegistries: [registry.host, cutProxy.host, countingProxy.host, stallProxy.host, failingHost] });
    const { imageRef } = await daemon.client.imageCall<{ imageRef: string }>("PullImage", { image: { image: ref(registry.host, "small") } });
    assert.equal(imageRef, small.config.digest);
  });

  after(async () => {
    await daemon?.stop();
    await cutProxy?.stop();
    await countingProxy?.stop();
    await stallProxy?.stop();
    if (failing) {
      failing.closeAllConnections();
      await new Promise<void>((resolve) => failing.close(() => resolve()));
    }
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
    await rm(sentinel, { recursive: true, force: true });
  });

  test("a blob transfer cut mid-way resumes with a Range request and the blob on disk matches its digest", async () => {
    const { imageRef } = await daemon.client.imageCall<{ imageRef: string }>("PullImage", { image: { image: ref(cutProxy.host, "big") } });
    assert.equal(imageRef, big.config.digest);
    assert.equal(cutProxy.cuts(), 1, "the proxy cut the first transfer of the big layer");
    const gets = blobGets(cutProxy, bigLayer().digest);
    assert.equal(gets[0]?.range, undefined, "the first GET asks for the whole blob");
    const resumed = gets.map((g) => rangeStart(g.range)).find((n) => n !== undefined && n > 0);
    assert.ok(resumed !== undefined, `a later GET resumes with "Range: bytes=N-", N > 0; GETs seen: ${JSON.stringify(gets)}`);
    assert.ok(resumed < bigLayer().size);
    const hex = bigLayer().digest.slice(7);
    assert.equal(await sha256File(join(daemon.root, "content", "blobs", "sha256", hex)), hex);
    assert.deepEqual(await ingestsOf(daemon.root), [], "no ingest is left behind");
    // The layer's file is whole in its snapshot.
    const snap = (await snapshotsOf(daemon.root)).find((s) => s.key === chainIds(big.diffIds).at(-1));
    assert.ok(snap, "the top layer's snapshot is committed");
    assert.equal((await stat(join(snap.dir, "fs", "data", "random"))).size, 4 * MiB);
  });

  test("a daemon killed mid-pull leaves only whole blobs, and after a restart the pull resumes from the ingest", async () => {
    const proxy = await startCutProxy(registry.host, { pathIncludes: `/blobs/${bigLayer().digest}`, afterBytes: 2.5 * MiB, stall: true });
    let crashing: TestDaemon | undefined;
    try {
      crashing = await startDaemon({ insecureRegistries: [proxy.host] });
      const image = ref(proxy.host, "big");
      const inFlight = crashing.client.imageCall("PullImage", { image: { image } }).catch((e: GrpcError) => e);
      // The proxy stalls the transfer after 2.5 MiB: wait until the daemon has written some of it.
      const data = join(crashing.root, "content", "ingest", `sha256-${bigLayer().digest.slice(7)}`, "data");
      let written = 0;
      for (let i = 0; i < 1000 && written < MiB; i++) {
        written = await stat(data).then((s) => s.size, () => 0);
        if (written < MiB) await sleep(20);
      }
      assert.ok(written >= MiB, `the daemon wrote ${written} bytes of the stalled layer into its ingest`);
      await crashing.kill();
      const lost = (await inFlight) as GrpcError;
      assert.equal(lost.code, Code.UNAVAILABLE, "the caller sees the daemon go away");

      assert.deepEqual(await mismatchedBlobs(crashing.root), [], "every committed blob matches its name after kill -9");
      assert.ok((await ingestsOf(crashing.root)).includes(`sha256-${bigLayer().digest.slice(7)}`), "the partial download is kept as an ingest");

      await crashing.restart();
      const before = proxy.requests.length;
      const pulled = await crashing.cli(["pull", image]);
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.match(pulled.stdout, /resuming at/, "berth pull says it resumed");
      const resumed = proxy.requests.slice(before).filter((r) => r.method === "GET" && r.path.endsWith(`/blobs/${bigLayer().digest}`));
      assert.equal(resumed.length, 1, "one GET after the restart");
      const from = rangeStart(resumed[0]!.headers.range);
      assert.ok(from !== undefined && from > 0, `the GET after the restart resumes: Range "${resumed[0]!.headers.range}"`);

      const st = await crashing.client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image } });
      assert.equal(st.image?.id, big.config.digest);
      assert.deepEqual(await mismatchedBlobs(crashing.root), []);
      assert.deepEqual(await ingestsOf(crashing.root), []);
    } finally {
      await crashing?.stop();
      await proxy.stop();
    }
  });

  test("a registry that answers 500 to everything fails the pull UNAVAILABLE with URL and status, and the daemon carries on", async () => {
    const image = `${failingHost}/team/app:${TAG}`;
    await rejectsWith(daemon.client.imageCall("PullImage", { image: { image } }), Code.UNAVAILABLE, `http://${failingHost}/v2/team/app/manifests/${TAG}`, /500 Internal Server Error/);
    const v = await daemon.client.runtimeCall<{ runtimeName: string }>("Version", {});
    assert.equal(v.runtimeName, "berth");
    const { images } = await daemon.client.imageCall<{ images: Image[] }>("ListImages", {});
    assert.ok(
      images.some((i) => i.id === small.config.digest),
      "the image pulled before is still listed",
    );
    assert.ok(!images.some((i) => i.repoTags.includes(image)));
  });

  describe("layers that try to write outside their snapshot", () => {
    const cases: Array<{ name: string; entries: Array<{ header: TarHeader; body?: string }>; entry: string }> = [
      { name: "dotdot", entry: "../escape", entries: [{ header: { name: "ok" }, body: "fine\n" }, { header: { name: "../escape" }, body: "escaped\n" }] },
      {
        name: "symlink",
        entry: "evil/pwned",
        entries: [
          { header: { name: "evil", type: "symlink", linkname: "" } },
          { header: { name: "evil/pwned" }, body: "pwned\n" },
        ],
      },
      { name: "hardlink-abs", entry: "passwd", entries: [{ header: { name: "passwd", type: "link", linkname: "/etc/passwd" } }] },
      { name: "hardlink-dotdot", entry: "passwd", entries: [{ header: { name: "passwd", type: "link", linkname: "../../../../../../../../etc/passwd" } }] },
    ];

    for (const c of cases) {
      test(`a layer with "${c.entry}" (${c.name}) fails DATA_LOSS naming the entry and leaves nothing behind`, async () => {
        const entries = c.entries.map((e) => (e.header.type === "symlink" ? { ...e, header: { ...e.header, linkname: sentinel } } : e));
        const layout = join(work, "malicious", c.name);
        const built = await rawImageLayout(layout, [await tarOf(entries)]);
        const repo = `berth-test/malicious-${c.name}`;
        await pushLayout(layout, TAG, registry.host, repo);
        const image = `${registry.host}/${repo}:${TAG}`;
        const passwdBefore = await stat("/etc/passwd");

        await rejectsWith(daemon.client.imageCall("PullImage", { image: { image } }), Code.DATA_LOSS, `"${c.entry}"`, image, built.layers[0]!.digest);

        assert.deepEqual(await readdir(sentinel), [], "nothing was written through the symlink");
        const passwdAfter = await stat("/etc/passwd");
        assert.equal(passwdAfter.nlink, passwdBefore.nlink, "/etc/passwd gained no hard link");
        assert.equal(passwdAfter.ino, passwdBefore.ino);
        const snaps = await snapshotsOf(daemon.root);
        assert.ok(!snaps.some((s) => s.key === built.diffIds[0]), "no snapshot is committed for the refused layer");
        assert.ok(!snaps.some((s) => s.kind !== "committed"), `no half-made snapshot is left: ${JSON.stringify(snaps.filter((s) => s.kind !== "committed"))}`);
        const st = await daemon.client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image } });
        assert.equal(st.image, null, "no image record for it");

        const earlier = await daemon.client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image: ref(registry.host, "small") } });
        assert.equal(earlier.image?.id, small.config.digest, "the image pulled before is still there");
        const smallSnap = snaps.find((s) => s.key === small.diffIds[0]);
        assert.ok(smallSnap, "its layer is still committed");
        assert.equal(await readFile(join(smallSnap.dir, "fs", "etc", "hello"), "utf8"), "hello\n");
        const v = await daemon.client.runtimeCall<{ runtimeName: string }>("Version", {});
        assert.equal(v.runtimeName, "berth");
      });
    }
  });

  test("a refused layer stops the pull's other downloads, keeping their ingests to resume later", async () => {
    const image = ref(stallProxy.host, "refused-early");
    await rejectsWith(daemon.client.imageCall("PullImage", { image: { image } }), Code.DATA_LOSS, '"../escape"', image);
    // The daemon hangs up on the stalled transfer rather than leaving it running after its answer
    // (left alone, it would sit there until the 30 s idle timeout, then retry).
    for (let i = 0; i < 250 && stallProxy.stalled() > 0; i++) await sleep(20);
    assert.equal(stallProxy.stalled(), 0, "no transfer of the failed pull is left open");
    if (stallProxy.cuts() === 1) {
      assert.ok((await ingestsOf(daemon.root)).includes(`sha256-${refusedEarlyStalled.digest.slice(7)}`), "the stopped download is kept as an ingest");
    }
    const st = await daemon.client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image } });
    assert.equal(st.image, null);
  });

  test("two concurrent pulls of one uncached image get the same image and fetch each layer blob once", async () => {
    const image = ref(countingProxy.host, "concurrent");
    const [a, b] = await Promise.all([
      daemon.client.imageCall<{ imageRef: string }>("PullImage", { image: { image } }),
      daemon.client.imageCall<{ imageRef: string }>("PullImage", { image: { image } }),
    ]);
    assert.equal(a.imageRef, concurrent.config.digest);
    assert.equal(b.imageRef, a.imageRef);
    for (const layer of concurrent.layers) assert.equal(blobGets(countingProxy, layer.digest).length, 1, `layer ${layer.digest} was fetched once`);
    assert.equal(blobGets(countingProxy, concurrent.config.digest).length, 1, "the config was fetched once");
  });

  test("a full disk fails the pull RESOURCE_EXHAUSTED naming where, removes the partial download, and keeps what fit", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-full-disk-"));
    const root = join(dir, "root");
    let mounted = false;
    let full: TestDaemon | undefined;
    try {
      await mkdir(root);
      await run("mount", ["-t", "tmpfs", "-o", "size=3m", "berth-test-full", root]);
      mounted = true;
      full = await startDaemon({ dir, insecureRegistries: [registry.host] });
      const fits = ref(registry.host, "small");
      await full.client.imageCall("PullImage", { image: { image: fits } });
      const image = ref(registry.host, "big");
      await rejectsWith(full.client.imageCall("PullImage", { image: { image } }), Code.RESOURCE_EXHAUSTED, /no space left/i, root, image);

      assert.deepEqual(await ingestsOf(root), [], "the partial download is gone");
      assert.ok(!(await snapshotsOf(root)).some((s) => s.kind !== "committed"), "no half-made snapshot is left");
      const { images } = await full.client.imageCall<{ images: Image[] }>("ListImages", {});
      assert.deepEqual(
        images.map((i) => i.id),
        [small.config.digest],
        "the image that fit is still listed, the one that did not is not",
      );
      const again = await full.client.imageCall<{ imageRef: string }>("PullImage", { image: { image: fits } });
      assert.equal(again.imageRef, small.config.digest);
      const v = await full.client.runtimeCall<{ runtimeName: string }>("Version", {});
      assert.equal(v.runtimeName, "berth");
    } finally {
      await full?.stop();
      if (mounted) await run("umount", [root]).catch(() => run("umount", ["-l", root]));
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("berth push writes a manifest and config that validate against the OCI image-spec schemas", async () => {
    const target = `${registry.host}/pushed/small:copy`;
    const pushed = await daemon.cli(["push", ref(registry.host, "small"), target]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const { stdout: raw } = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${target}`]);
    validateManifest(JSON.parse(raw));
    assert.equal(sha256(Buffer.from(raw)), small.manifest.digest, "the manifest is pushed byte for byte");
    const { stdout: config } = await run("skopeo", ["inspect", "--config", "--raw", "--tls-verify=false", `docker://${target}`]);
    validateConfig(JSON.parse(config));
  });

  test("berth image import of a docker-save archive normalises its RepoTags and synthesises a valid manifest", async () => {
    const layerTar = await tarOf([
      { header: { name: "etc/", type: "directory", mode: 0o755 } },
      { header: { name: "etc/from-docker" }, body: "docker save\n" },
    ]);
    const configDoc = {
      architecture: "amd64",
      os: "linux",
      created: "2024-01-01T00:00:00Z",
      config: { Cmd: ["/bin/sh"], Env: ["PATH=/bin"] },
      rootfs: { type: "layers", diff_ids: [sha256(layerTar)] },
      history: [{ created: "2024-01-01T00:00:00Z", created_by: "test" }],
    };
    const configBytes = Buffer.from(JSON.stringify(configDoc));
    const configName = `${sha256(configBytes).slice(7)}.json`;
    const repoTags = ["example.com/team/app:1.0", "plainname:v2"];
    const archive = await tarOf([
      { header: { name: "manifest.json" }, body: JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: ["0123abcd/layer.tar"] }]) },
      { header: { name: configName }, body: configBytes },
      { header: { name: "0123abcd/", type: "directory", mode: 0o755 } },
      { header: { name: "0123abcd/layer.tar" }, body: layerTar },
      { header: { name: "0123abcd/VERSION" }, body: "1.0" },
    ]);
    const file = join(work, "docker-save.tar");
    await writeFile(file, archive);

    const res = await daemon.cli(["image", "import", file]);
    assert.equal(res.code, 0, res.stderr);
    const st = await daemon.client.imageCall<{ image: Image | null; info: Record<string, string> }>("ImageStatus", { image: { image: "plainname:v2" }, verbose: true });
    assert.ok(st.image, "the imported image is found by its short name");
    assert.deepEqual(st.image.repoTags, ["example.com/team/app:1.0", "docker.io/library/plainname:v2"]);
    assert.equal(st.image.id, sha256(configBytes));
    const info = JSON.parse(st.info.info!) as { manifest: Descriptor };
    const path = join(daemon.root, "content", "blobs", "sha256", info.manifest.digest.slice(7));
    const manifestBytes = await readFile(path);
    assert.equal(sha256(manifestBytes), info.manifest.digest);
    validateManifest(JSON.parse(manifestBytes.toString("utf8")));
  });
});
