import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizePlatform, parsePlatform, selectManifest } from "../../runtime/image/platform";
import type { Descriptor } from "../../runtime/image/types";

const d = (arch: string, variant?: string): Descriptor => ({
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: `sha256:${arch.padEnd(64, "0").slice(0, 64).replace(/[^0-9a-f]/g, "a")}`,
  size: 1,
  platform: { os: "linux", architecture: arch, ...(variant ? { variant } : {}) },
});

test("platform names normalise as containerd's do (x86_64 → amd64, aarch64 → arm64/v8)", () => {
  assert.deepEqual(normalizePlatform({ os: "Linux", architecture: "x86_64" }), { os: "linux", architecture: "amd64", variant: undefined });
  assert.equal(normalizePlatform({ os: "linux", architecture: "aarch64" }).variant, "v8");
  assert.deepEqual(parsePlatform("linux/arm/7"), { os: "linux", architecture: "arm", variant: "v7" });
});

test("an index resolves to the manifest of the wanted platform", () => {
  const index = [d("arm64", "v8"), d("amd64"), d("arm", "v7")];
  assert.equal(selectManifest(index, { os: "linux", architecture: "amd64" }, "x").platform?.architecture, "amd64");
  assert.equal(selectManifest(index, { os: "linux", architecture: "arm64" }, "x").platform?.architecture, "arm64");
});

test("an index without the wanted platform is NOT_FOUND naming what it offers", () => {
  assert.throws(
    () => selectManifest([d("arm64", "v8")], { os: "linux", architecture: "amd64" }, "docker.io/library/x:1"),
    (err: Error & { code?: number }) => err.code === 5 && /linux\/amd64/.test(err.message) && /linux\/arm64\/v8/.test(err.message),
  );
});
