// The CRI ImageService over berth's socket, against a real registry filled by skopeo.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Code } from "../../runtime/errors";
import { startDaemon, type TestDaemon } from "../support/daemon";
import { startRegistry } from "../support/registry";
import { buildTestImages, pushLayout, type TestImages } from "../support/test-images";

const run = promisify(execFile);

type Image = { id: string; repoTags: string[]; repoDigests: string[]; size: string; uid: { value: string } | null; username: string };

describe("CRI ImageService", () => {
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let daemon: TestDaemon;
  let images: TestImages;
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "berth-cri-images-"));
    registry = await startRegistry();
    images = await buildTestImages(join(work, "layouts"));
    for (const img of Object.values(images)) await pushLayout(img.layout, img.tag, registry.host, img.repo);
    daemon = await startDaemon({ insecureRegistries: [registry.host] });
  });

  after(async () => {
    await daemon?.stop();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const ref = (img: { repo: string; tag: string }) => `${registry.host}/${img.repo}:${img.tag}`;

  test("Version names berth and CRI v1; an RPC berth does not offer answers UNIMPLEMENTED and the daemon lives on", async () => {
    const v = await daemon.client.runtimeCall<{ runtimeName: string; runtimeApiVersion: string }>("Version", {});
    assert.equal(v.runtimeName, "berth");
    assert.equal(v.runtimeApiVersion, "v1");
    await assert.rejects(daemon.client.runtimeCall("CheckpointContainer", { containerId: "x" }), (e: { code: number }) => e.code === Code.UNIMPLEMENTED);
    const s = await daemon.client.runtimeCall<{ status: { conditions: Array<{ type: string; status: boolean }> } }>("Status", {});
    assert.ok(s.status.conditions.some((c) => c.type === "RuntimeReady" && c.status));
  });

  test("PullImage pulls what skopeo pushed, and ListImages shows it as crictl would", async () => {
    const { imageRef } = await daemon.client.imageCall<{ imageRef: string }>("PullImage", { image: { image: ref(images.busybox) } });
    assert.match(imageRef, /^sha256:[0-9a-f]{64}$/);
    const { images: list } = await daemon.client.imageCall<{ images: Image[] }>("ListImages", {});
    const img = list.find((i) => i.id === imageRef);
    assert.ok(img, "the pulled image is listed");
    assert.deepEqual(img.repoTags, [ref(images.busybox)]);
    assert.equal(img.repoDigests[0], `${registry.host}/${images.busybox.repo}@${images.busybox.manifestDigest}`);
    assert.ok(Number(img.size) > 100_000);
    const filtered = await daemon.client.imageCall<{ images: Image[] }>("ListImages", { filter: { image: { image: ref(images.busybox) } } });
    assert.equal(filtered.images.length, 1);
  });

  test("an image's USER comes back as uid (numeric) and its config in verbose ImageStatus", async () => {
    await daemon.client.imageCall("PullImage", { image: { image: ref(images.userWorkdir) } });
    const st = await daemon.client.imageCall<{ image: Image; info: Record<string, string> }>("ImageStatus", { image: { image: ref(images.userWorkdir) }, verbose: true });
    assert.equal(st.image.uid?.value, "1000");
    const info = JSON.parse(st.info.info!);
    assert.equal(info.imageConfig.WorkingDir, "/home/app");
    assert.equal(info.imageConfig.StopSignal, "SIGQUIT");
  });

  test("a multi-arch index pulls the linux/amd64 image", async () => {
    await daemon.client.imageCall("PullImage", { image: { image: ref(images.multiarch) } });
    const st = await daemon.client.imageCall<{ image: Image; info: Record<string, string> }>("ImageStatus", { image: { image: ref(images.multiarch) }, verbose: true });
    assert.equal(JSON.parse(st.info.info!).platform.architecture, "amd64");
    // Its amd64 image is busybox itself (same config, same ID): one image, both names.
    assert.ok(st.image.repoDigests.includes(`${registry.host}/${images.multiarch.repo}@${images.multiarch.manifestDigest}`), "the repo digest is the index's");
  });

  test("ImageStatus of an absent image is empty, RemoveImage of one succeeds (idempotent)", async () => {
    const st = await daemon.client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image: `${registry.host}/nothing:here` } });
    assert.equal(st.image, null);
    await daemon.client.imageCall("RemoveImage", { image: { image: `${registry.host}/nothing:here` } });
  });

  test("requests with missing or malformed fields answer INVALID_ARGUMENT with a message", async () => {
    for (const [rpc, req] of [
      ["PullImage", {}],
      ["PullImage", { image: { image: "" } }],
      ["ImageStatus", {}],
      ["RemoveImage", { image: {} }],
    ] as const) {
      await assert.rejects(daemon.client.imageCall(rpc, req), (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /image\.image is required/.test(e.message), rpc);
    }
    await assert.rejects(daemon.client.imageCall("PullImage", { image: { image: "Not/Valid:Ref" } }), (e: { code: number; message: string }) => e.code === Code.INVALID_ARGUMENT && /Not\/Valid/.test(e.message));
  });

  test("a tag the registry does not have answers NOT_FOUND naming it", async () => {
    await assert.rejects(daemon.client.imageCall("PullImage", { image: { image: `${registry.host}/busybox:missing` } }), (e: { code: number; message: string }) => e.code === Code.NOT_FOUND && /missing/.test(e.message));
  });

  test("removing an image frees its content but keeps the layers another image still uses", async () => {
    await daemon.client.imageCall("PullImage", { image: { image: ref(images.layered) } });
    const before = await daemon.client.imageCall<{ imageFilesystems: Array<{ usedBytes: { value: string } }> }>("ImageFsInfo", {});
    await daemon.client.imageCall("RemoveImage", { image: { image: ref(images.layered) } });
    const st = await daemon.client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image: ref(images.layered) } });
    assert.equal(st.image, null);
    const after = await daemon.client.imageCall<{ imageFilesystems: Array<{ usedBytes: { value: string } }> }>("ImageFsInfo", {});
    assert.ok(Number(after.imageFilesystems[0]!.usedBytes.value) < Number(before.imageFilesystems[0]!.usedBytes.value));
    // busybox shares the layered image's base layer: it must still be whole.
    const blobs = await readdir(join(daemon.root, "content", "blobs", "sha256"));
    const bb = await daemon.client.imageCall<{ info: Record<string, string> }>("ImageStatus", { image: { image: ref(images.busybox) }, verbose: true });
    const layers = JSON.parse(bb.info.info!).layers as Array<{ digest: string }>;
    for (const l of layers) assert.ok(blobs.includes(l.digest.slice(7)), `busybox's layer ${l.digest} is still there`);
    const again = await daemon.client.imageCall<{ imageRef: string }>("PullImage", { image: { image: ref(images.busybox) } });
    assert.match(again.imageRef, /^sha256:/);
  });

  test("two concurrent pulls of one image both answer with the same image", async () => {
    await daemon.client.imageCall("RemoveImage", { image: { image: ref(images.busybox) } });
    const [a, b] = await Promise.all([
      daemon.client.imageCall<{ imageRef: string }>("PullImage", { image: { image: ref(images.busybox) } }),
      daemon.client.imageCall<{ imageRef: string }>("PullImage", { image: { image: ref(images.busybox) } }),
    ]);
    assert.equal(a.imageRef, b.imageRef);
  });

  test("berth pull, images, rmi on the command line", async () => {
    const pulled = await daemon.cli(["pull", ref(images.userWorkdir)]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, /Image is up to date for sha256:/);
    const listed = await daemon.cli(["images"]);
    assert.match(listed.stdout, /^IMAGE\s+TAG\s+IMAGE ID\s+SIZE/m);
    assert.ok(listed.stdout.includes(`${registry.host}/${images.userWorkdir.repo}`));
    const json = JSON.parse((await daemon.cli(["images", "-o", "json"])).stdout) as { images: Image[] };
    assert.ok(json.images.some((i) => i.repoTags.includes(ref(images.userWorkdir))));
    const rmi = await daemon.cli(["rmi", ref(images.userWorkdir)]);
    assert.equal(rmi.code, 0, rmi.stderr);
    const gone = await daemon.cli(["rmi", ref(images.userWorkdir)]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no such image/);
  });

  test("berth push sends an image that skopeo then reads with the same manifest digest", async () => {
    const pushed = await daemon.cli(["push", ref(images.busybox), `${registry.host}/pushed/busybox:copy`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const { stdout } = await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/pushed/busybox:copy`]);
    assert.equal(JSON.parse(stdout).Digest, images.busybox.manifestDigest);
  });

  test("berth image import loads an OCI layout with no registry involved", async () => {
    const res = await daemon.cli(["image", "import", "--name", "local/imported:v1", images.busybox.layout]);
    assert.equal(res.code, 0, res.stderr);
    const st = await daemon.client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image: "local/imported:v1" } });
    assert.ok(st.image);
    assert.ok(st.image.repoTags.includes("docker.io/local/imported:v1"));
    assert.equal(st.image.id, images.busybox.id);
  });
});
