import assert from "node:assert/strict";
import { test } from "node:test";
import { Code } from "../../runtime/errors";
import { parseImageConfig, parseManifestOrIndex } from "../../runtime/image/manifest";

const digest = `sha256:${"a".repeat(64)}`;
const enc = (o: unknown) => Buffer.from(JSON.stringify(o));

test("a manifest and an index are told apart by media type or shape", () => {
  const m = parseManifestOrIndex(enc({ schemaVersion: 2, config: { mediaType: "x", digest, size: 2 }, layers: [] }), "application/vnd.oci.image.manifest.v1+json", "where");
  assert.equal(m.kind, "manifest");
  const i = parseManifestOrIndex(enc({ schemaVersion: 2, manifests: [] }), undefined, "where");
  assert.equal(i.kind, "index");
});

test("schema 1 manifests are refused with advice", () => {
  assert.throws(() => parseManifestOrIndex(enc({ schemaVersion: 1, fsLayers: [] }), undefined, "ref"), (e: Error & { code: number }) => e.code === Code.INVALID_ARGUMENT && /schema 1/.test(e.message));
});

test("untrusted manifests with bad JSON, bad digests or sizes name where they came from", () => {
  assert.throws(() => parseManifestOrIndex(Buffer.from("{nope"), undefined, "reg/x:1"), /reg\/x:1: not valid JSON/);
  assert.throws(() => parseManifestOrIndex(enc({ schemaVersion: 2, config: { mediaType: "x", digest: "md5:1", size: 1 }, layers: [] }), undefined, "reg/x:1"), /reg\/x:1: config: descriptor digest "md5:1"/);
  assert.throws(() => parseManifestOrIndex(enc({ schemaVersion: 2, config: { mediaType: "x", digest, size: -1 }, layers: [] }), undefined, "r"), /invalid size/);
});

test("an image config must list sha256 diff_ids", () => {
  assert.throws(() => parseImageConfig(enc({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: ["x"] } }), "cfg"), /cfg: diff_id "x"/);
  assert.equal(parseImageConfig(enc({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [digest] } }), "cfg").rootfs.diff_ids[0], digest);
});
