import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DEFAULT_CONFIG, loadConfigFile, mergeConfig } from "../../cli/config";

test("a config file with an unknown or mistyped field is refused naming the field", async () => {
  const dir = await mkdtemp(join(tmpdir(), "berth-config-"));
  try {
    const f = join(dir, "c.yaml");
    await writeFile(f, "registries:\n  - host: registry.k8s.io\n    mirrors: [{ url: 'ftp://x' }]\nrooot: /x\n");
    await assert.rejects(loadConfigFile(f), (e: Error) => e.message.includes(f) && /rooot/.test(e.message) && /\/registries\/0\/mirrors\/0\/url/.test(e.message));
    await writeFile(f, "root: [unclosed\n");
    await assert.rejects(loadConfigFile(f), /not valid YAML/);
    await writeFile(f, "insecureRegistries: ['127.0.0.1:5000']\nimages: { maxConcurrentDownloads: 5 }\n");
    const cfg = mergeConfig(DEFAULT_CONFIG, await loadConfigFile(f), { insecureRegistries: ["10.0.0.1:5000"], state: "/tmp/s" });
    assert.deepEqual(cfg.insecureRegistries, ["127.0.0.1:5000", "10.0.0.1:5000"]);
    assert.equal(cfg.images.maxConcurrentDownloads, 5);
    assert.equal(cfg.images.blobAttempts, DEFAULT_CONFIG.images.blobAttempts);
    assert.equal(cfg.socket, "/tmp/s/berth.sock", "the socket follows --state");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
