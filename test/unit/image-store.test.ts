import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ImageStore } from "../../runtime/image/store";
import type { ImageRecord } from "../../runtime/image/types";

const hex = (c: string) => c.repeat(64);

function image(idChar: string, tags: string[], digests: string[] = []): ImageRecord {
  const d = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${hex(idChar)}`, size: 1 };
  return {
    id: `sha256:${hex(idChar)}`,
    repoTags: tags,
    repoDigests: digests,
    manifest: d,
    config: d,
    layers: [],
    diffIds: [],
    chainIds: [],
    size: 1,
    runConfig: {},
    platform: { os: "linux", architecture: "amd64" },
    createdAt: Date.now(),
    pinned: false,
  };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-image-store-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("images are found by short name, full name, repo digest, full ID and unique ID prefix", async () => {
  const store = new ImageStore(join(dir, "a"));
  await store.load();
  await store.put(image("a", ["docker.io/library/busybox:latest"], [`docker.io/library/busybox@sha256:${hex("d")}`]));
  await store.put(image("b", ["docker.io/library/alpine:3"]));
  assert.equal(store.find("busybox")?.id, `sha256:${hex("a")}`);
  assert.equal(store.find("docker.io/library/busybox:latest")?.id, `sha256:${hex("a")}`);
  assert.equal(store.find(`busybox@sha256:${hex("d")}`)?.id, `sha256:${hex("a")}`);
  assert.equal(store.find(`sha256:${hex("b")}`)?.id, `sha256:${hex("b")}`);
  assert.equal(store.find("bbbb")?.id, `sha256:${hex("b")}`);
  assert.equal(store.find("alpine")?.id, undefined, "alpine means alpine:latest, which is not there");
  assert.equal(store.find("Not A Ref"), undefined);
});

test("a tag names one image: pulling it for another image moves it", async () => {
  const store = new ImageStore(join(dir, "b"));
  await store.load();
  await store.put(image("a", ["docker.io/library/app:1"]));
  await store.put(image("b", ["docker.io/library/app:1"]));
  assert.deepEqual(store.byId(`sha256:${hex("a")}`)?.repoTags, []);
  assert.equal(store.find("app:1")?.id, `sha256:${hex("b")}`);
});

test("removing the last tag removes the image; removing one of two keeps it; the file survives a reload", async () => {
  const store = new ImageStore(join(dir, "c"));
  await store.load();
  await store.put(image("a", ["docker.io/library/x:1", "docker.io/library/x:2"]));
  assert.equal(await store.removeReference(store.find("x:1")!, "x:1"), undefined);
  assert.deepEqual(store.find("x:2")?.repoTags, ["docker.io/library/x:2"]);
  const gone = await store.removeReference(store.find("x:2")!, "x:2");
  assert.equal(gone?.id, `sha256:${hex("a")}`);
  await store.put(image("b", ["docker.io/library/y:1"]));
  const reloaded = new ImageStore(join(dir, "c"));
  await reloaded.load();
  assert.deepEqual(
    reloaded.list().map((i) => i.id),
    [`sha256:${hex("b")}`],
  );
  assert.match(await readFile(join(dir, "c", "images.json"), "utf8"), /"version": 1/);
});
