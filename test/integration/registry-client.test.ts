// DistributionClient against Debian's docker-registry (plain, htpasswd, token auth, TLS), with
// skopeo as the independent oracle on both sides of a push, and small in-test servers for what a
// real registry will not do on request (5xx, 429, cross-host redirects, dying connections).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { Code, DataLossError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, UnauthenticatedError, UnavailableError } from "../../runtime/errors";
import { formatReference, parseReference } from "../../runtime/image/reference";
import { DistributionClient } from "../../runtime/image/registry/client";
import { endpointsOf, type RegistriesConfig, resolveHostConfig } from "../../runtime/image/registry/hosts";
import { type Descriptor, MediaType, type RegistryAuth } from "../../runtime/image/types";
import { startCutProxy } from "../support/cut-proxy";
import { freePort, startRegistry, type TestRegistry } from "../support/registry";

const run = promisify(execFile);
const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };

// ---- images made here: a config blob, gzip layers of tars, an OCI manifest ----

interface Blob {
  desc: Descriptor;
  data: Buffer;
}
interface TestImage {
  config: Blob;
  layers: Blob[];
  manifest: Blob;
}

const sha256 = (data: Uint8Array) => `sha256:${createHash("sha256").update(data).digest("hex")}`;
const blob = (mediaType: string, data: Buffer): Blob => ({ desc: { mediaType, digest: sha256(data), size: data.length }, data });

async function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function makeImage(files: Record<string, string | Buffer>, architecture = "amd64"): Promise<TestImage> {
  const tarBytes = await tarOf(files);
  const layer = blob(MediaType.OCILayerGzip, gzipSync(tarBytes));
  const config = blob(
    MediaType.OCIConfig,
    Buffer.from(JSON.stringify({ architecture, os: "linux", config: { Cmd: ["sh"] }, rootfs: { type: "layers", diff_ids: [sha256(tarBytes)] } })),
  );
  const manifest = blob(MediaType.OCIManifest, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCIManifest, config: config.desc, layers: [layer.desc] })));
  return { config, layers: [layer], manifest };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function pushWith(client: DistributionClient, reference: string, img: TestImage): Promise<string> {
  const ref = parseReference(reference);
  for (const b of [img.config, ...img.layers]) await client.pushBlob(ref, b.desc, () => Readable.from([b.data]));
  return client.pushManifest(ref, img.manifest.desc.mediaType, img.manifest.data);
}

async function writeLayout(dir: string, img: TestImage, tag: string): Promise<void> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  for (const b of [img.config, ...img.layers, img.manifest]) await writeFile(join(dir, "blobs", "sha256", b.desc.digest.slice(7)), b.data);
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const entry = { ...img.manifest.desc, annotations: { "org.opencontainers.image.ref.name": tag } };
  await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
}

async function skopeo(args: string[]): Promise<string> {
  try {
    return (await run("skopeo", args, { maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`skopeo ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`);
  }
}

function plainClient(host: string, opts: { auth?: RegistryAuth; config?: RegistriesConfig } = {}): DistributionClient {
  const hosts = resolveHostConfig(host, opts.config ?? { insecureRegistries: [host] });
  return new DistributionClient({ hosts, auth: opts.auth, userAgent: "berth-test", retry: FAST_RETRY });
}

// ---- tiny HTTP servers for behaviour a real registry will not produce on request ----

interface TinyServer {
  host: string;
  url: string;
  hits: Array<{ method: string; path: string; headers: IncomingMessage["headers"] }>;
  stop(): Promise<void>;
}

async function tinyServer(handler: (req: IncomingMessage, res: ServerResponse, hit: number) => void): Promise<TinyServer> {
  const hits: TinyServer["hits"] = [];
  const server = createServer((req, res) => {
    hits.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers });
    handler(req, res, hits.length);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    hits,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function answerManifest(req: IncomingMessage, res: ServerResponse, manifest: Blob): void {
  res.writeHead(200, { "content-type": manifest.desc.mediaType, "content-length": manifest.data.length, "docker-content-digest": manifest.desc.digest });
  res.end(req.method === "HEAD" ? undefined : manifest.data);
}

const registryError = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ errors: [{ code, message }] }));
};

// ---- the tests ----

describe("registry endpoints", () => {
  test("docker.io is reached at registry-1.docker.io, whatever alias the config uses", () => {
    const cfg = resolveHostConfig("docker.io", { registries: [{ host: "index.docker.io", mirrors: [{ url: "https://mirror.example/" }] }] });
    assert.deepEqual(
      endpointsOf(cfg).map((e) => e.url),
      ["https://mirror.example", "https://registry-1.docker.io"],
    );
  });

  test("a host with no config is https, localhost and 127.0.0.1 included", () => {
    for (const host of ["registry.example", "localhost:5000", "127.0.0.1:5000"]) {
      assert.deepEqual(
        endpointsOf(resolveHostConfig(host, {})).map((e) => e.url),
        [`https://${host}`],
      );
    }
  });

  test("--insecure-registry HOST:PORT allows plain http for exactly that host and port; a CIDR covers its addresses", () => {
    const cfg = { insecureRegistries: ["127.0.0.1:5000", "http://reg.example:8080", "10.0.0.0/8"] };
    assert.equal(endpointsOf(resolveHostConfig("127.0.0.1:5000", cfg))[0]?.url, "http://127.0.0.1:5000");
    assert.equal(endpointsOf(resolveHostConfig("127.0.0.1:5001", cfg))[0]?.url, "https://127.0.0.1:5001");
    assert.equal(endpointsOf(resolveHostConfig("reg.example:8080", cfg))[0]?.url, "http://reg.example:8080");
    assert.equal(endpointsOf(resolveHostConfig("10.1.2.3:5000", cfg))[0]?.url, "http://10.1.2.3:5000");
    assert.equal(endpointsOf(resolveHostConfig("11.1.2.3:5000", cfg))[0]?.url, "https://11.1.2.3:5000");
  });

  test("mirrors come first in their order, then the host itself unless skipped", () => {
    const registries = [
      {
        host: "reg.example",
        caFile: "/etc/reg.pem",
        mirrors: [{ url: "http://m1.example:5000", pathPrefix: "/cache/" }, { url: "https://m2.example", insecureSkipVerify: true }],
      },
    ];
    const eps = endpointsOf(resolveHostConfig("reg.example", { registries }));
    assert.deepEqual(eps, [
      { url: "http://m1.example:5000", pathPrefix: "cache" },
      { url: "https://m2.example", insecureSkipVerify: true },
      { url: "https://reg.example", caFile: "/etc/reg.pem" },
    ]);
    const skipped = endpointsOf(resolveHostConfig("reg.example", { registries: [{ ...registries[0]!, skipSelf: true }] }));
    assert.equal(skipped.length, 2);
    assert.throws(() => resolveHostConfig("reg.example", { registries: [{ host: "reg.example", mirrors: [{ url: "ftp://x" }] }] }), InvalidArgumentError);
  });
});

describe("DistributionClient against docker-registry", () => {
  let registry: TestRegistry;
  let work: string;
  let image: TestImage;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "berth-registry-client-"));
    registry = await startRegistry();
    image = await makeImage({ "hello.txt": "hello from berth\n", "etc/os-release": "ID=berth-test\n" });
  });
  after(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test("an image DistributionClient pushes is read back by skopeo, manifest byte for byte", async () => {
    const client = plainClient(registry.host);
    const digest = await pushWith(client, `${registry.host}/berth-test/pushed:v1`, image);
    assert.equal(digest, image.manifest.desc.digest);

    const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/berth-test/pushed:v1`]);
    assert.equal(raw.trimEnd(), image.manifest.data.toString());

    const layout = join(work, "skopeo-pulled");
    await skopeo(["copy", "--quiet", "--src-tls-verify=false", `docker://${registry.host}/berth-test/pushed:v1`, `oci:${layout}:v1`]);
    const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: Descriptor[] };
    assert.equal(index.manifests[0]?.digest, image.manifest.desc.digest);
    const layerFile = join(layout, "blobs", "sha256", image.layers[0]!.desc.digest.slice(7));
    assert.equal(sha256(await readFile(layerFile)), image.layers[0]!.desc.digest);
  });

  test("pushing a blob the registry already has does not upload it again", async () => {
    const client = plainClient(registry.host);
    const ref = parseReference(`${registry.host}/berth-test/pushed:v1`);
    await client.pushBlob(ref, image.layers[0]!.desc, () => {
      throw new Error("the blob should not be read: the registry has it");
    });
  });

  test("an image skopeo pushes resolves, and its manifest and blobs come back with matching digests", async () => {
    const img = await makeImage({ "from-skopeo.txt": "pushed by skopeo\n" });
    const layout = join(work, "to-push");
    await writeLayout(layout, img, "v1");
    await skopeo(["copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", `oci:${layout}:v1`, `docker://${registry.host}/berth-test/from-skopeo:v1`]);

    const client = plainClient(registry.host);
    const resolved = await client.resolve(parseReference(`${registry.host}/berth-test/from-skopeo:v1`));
    assert.equal(resolved.digest, img.manifest.desc.digest);
    assert.deepEqual(resolved.descriptor, img.manifest.desc);
    assert.equal(resolved.endpoint.url, registry.url);

    const m = await client.fetchManifest(resolved, resolved.digest);
    assert.equal(m.mediaType, MediaType.OCIManifest);
    assert.equal(sha256(m.data), img.manifest.desc.digest);
    for (const b of [img.config, ...img.layers]) {
      const got = await client.fetchBlob(resolved, b.desc);
      assert.equal(got.offset, 0);
      assert.equal(sha256(await readAll(got.body)), b.desc.digest);
    }
  });

  test("a reference with a digest resolves to that digest, and a wrong one is NOT_FOUND", async () => {
    const client = plainClient(registry.host);
    const byDigest = await client.resolve(parseReference(`${registry.host}/berth-test/pushed@${image.manifest.desc.digest}`));
    assert.equal(byDigest.digest, image.manifest.desc.digest);
    assert.equal(byDigest.descriptor.mediaType, MediaType.OCIManifest);
    const absent = `sha256:${"0".repeat(64)}`;
    await assert.rejects(client.resolve(parseReference(`${registry.host}/berth-test/pushed@${absent}`)), NotFoundError);
  });

  test("a tag pointing at an OCI index resolves to the index's descriptor", async () => {
    const client = plainClient(registry.host);
    const arm = await makeImage({ "arch.txt": "arm64\n" }, "arm64");
    const repo = `${registry.host}/berth-test/multi`;
    await pushWith(client, `${repo}@${image.manifest.desc.digest}`, image);
    await pushWith(client, `${repo}@${arm.manifest.desc.digest}`, arm);
    const index = blob(
      MediaType.OCIIndex,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OCIIndex,
          manifests: [
            { ...image.manifest.desc, platform: { os: "linux", architecture: "amd64" } },
            { ...arm.manifest.desc, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
          ],
        }),
      ),
    );
    assert.equal(await client.pushManifest(parseReference(`${repo}:multi`), MediaType.OCIIndex, index.data), index.desc.digest);

    const resolved = await client.resolve(parseReference(`${repo}:multi`));
    assert.deepEqual(resolved.descriptor, index.desc);
    const fetched = await client.fetchManifest(resolved, resolved.digest);
    assert.equal(fetched.mediaType, MediaType.OCIIndex);
    assert.deepEqual(fetched.data, index.data);
    const raw = await skopeo(["inspect", "--raw", "--tls-verify=false", `docker://${repo}:multi`]);
    assert.equal(raw.trimEnd(), index.data.toString());
  });

  test("a missing tag and a missing blob are NOT_FOUND with messages naming what was asked", async () => {
    const client = plainClient(registry.host);
    const ref = parseReference(`${registry.host}/berth-test/pushed:no-such-tag`);
    await assert.rejects(client.resolve(ref), (err: Error) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.code, Code.NOT_FOUND);
      assert.ok(err.message.includes(formatReference(ref)), err.message);
      assert.match(err.message, /404.*MANIFEST_UNKNOWN/);
      return true;
    });
    const resolved = await client.resolve(parseReference(`${registry.host}/berth-test/pushed:v1`));
    const missing: Descriptor = { mediaType: MediaType.OCILayerGzip, digest: sha256(Buffer.from("never pushed")), size: 12 };
    await assert.rejects(client.fetchBlob(resolved, missing), (err: Error) => {
      assert.ok(err instanceof NotFoundError);
      assert.ok(err.message.includes(missing.digest) && err.message.includes(`${registry.host}/berth-test/pushed`), err.message);
      assert.match(err.message, /BLOB_UNKNOWN/);
      return true;
    });
  });

  test("a manifest whose bytes do not match the digest asked for is DATA_LOSS", async () => {
    // A registry that serves the same bytes whatever digest is asked for.
    const lying = await tinyServer((req, res) => answerManifest(req, res, image.manifest));
    try {
      const wrong = `sha256:${"1".repeat(64)}`;
      const resolved = { ref: parseReference(`${lying.host}/x:t`), digest: wrong, descriptor: { ...image.manifest.desc, digest: wrong }, endpoint: { url: lying.url } };
      await assert.rejects(plainClient(lying.host).fetchManifest(resolved, wrong), (err: Error) => {
        assert.ok(err instanceof DataLossError, String(err));
        assert.ok(err.message.includes(wrong) && err.message.includes(image.manifest.desc.digest), err.message);
        return true;
      });
    } finally {
      await lying.stop();
    }
  });

  test("a mirror that is down or lacks the image is skipped for the next endpoint", async () => {
    const closed = await freePort();
    const empty = await tinyServer((_req, res) => registryError(res, 404, "MANIFEST_UNKNOWN", "manifest unknown"));
    try {
      const client = plainClient(registry.host, {
        config: { registries: [{ host: registry.host, mirrors: [{ url: `http://127.0.0.1:${closed}` }, { url: empty.url }] }], insecureRegistries: [registry.host] },
      });
      const resolved = await client.resolve(parseReference(`${registry.host}/berth-test/pushed:v1`));
      assert.equal(resolved.endpoint.url, registry.url);
      assert.equal(resolved.digest, image.manifest.desc.digest);
      assert.ok(empty.hits.length > 0, "the second mirror was asked");
    } finally {
      await empty.stop();
    }
  });

  test("a mirror serves a host's images under its path prefix", async () => {
    await pushWith(plainClient(registry.host), `${registry.host}/hub-cache/berth-test/pushed:v1`, image);
    const hosts = resolveHostConfig("upstream.invalid", { registries: [{ host: "upstream.invalid", mirrors: [{ url: registry.url, pathPrefix: "hub-cache" }] }] });
    const client = new DistributionClient({ hosts, userAgent: "berth-test", retry: FAST_RETRY });
    const resolved = await client.resolve(parseReference("upstream.invalid/berth-test/pushed:v1"));
    assert.equal(resolved.endpoint.url, registry.url);
    const layer = await client.fetchBlob(resolved, image.layers[0]!.desc);
    assert.equal(sha256(await readAll(layer.body)), image.layers[0]!.desc.digest);
  });

  test("a blob download cut after N bytes resumes with Range: bytes=N- and gets offset N", async () => {
    const big = await makeImage({ "random.bin": randomBytes(512 * 1024) });
    await pushWith(plainClient(registry.host), `${registry.host}/berth-test/big:v1`, big);
    const layer = big.layers[0]!;
    const proxy = await startCutProxy(registry.host, { pathIncludes: `/blobs/${layer.desc.digest}`, afterBytes: 100_000 });
    try {
      const client = plainClient(proxy.host);
      const resolved = await client.resolve(parseReference(`${proxy.host}/berth-test/big:v1`));
      const first = await client.fetchBlob(resolved, layer.desc);
      assert.equal(first.offset, 0);
      const head: Buffer[] = [];
      await assert.rejects(async () => {
        for await (const c of first.body) head.push(c as Buffer);
      });
      const n = Buffer.concat(head).length;
      assert.ok(n > 0 && n < layer.desc.size, `the cut left ${n} of ${layer.desc.size} bytes`);
      assert.equal(proxy.cuts(), 1);

      const second = await client.fetchBlob(resolved, layer.desc, { offset: n });
      assert.equal(second.offset, n);
      const tail = await readAll(second.body);
      assert.equal(sha256(Buffer.concat([...head, tail])), layer.desc.digest);
      const blobGets = proxy.requests.filter((r) => r.method === "GET" && r.path.endsWith(`/blobs/${layer.desc.digest}`));
      assert.equal(blobGets.length, 2);
      assert.equal(blobGets[0]!.headers.range, undefined);
      assert.equal(blobGets[1]!.headers.range, `bytes=${n}-`);
    } finally {
      await proxy.stop();
    }
  });
});

describe("DistributionClient with htpasswd basic auth", () => {
  const creds = { username: "berth", password: "correct horse" };
  let registry: TestRegistry;
  let image: TestImage;
  before(async () => {
    registry = await startRegistry({ htpasswd: creds });
    image = await makeImage({ "basic.txt": "basic auth\n" });
  });
  after(async () => {
    await registry?.stop();
  });

  test("without credentials a push and a resolve are UNAUTHENTICATED, naming the registry", async () => {
    const client = plainClient(registry.host);
    const ref = `${registry.host}/berth-test/basic:v1`;
    for (const attempt of [() => pushWith(client, ref, image), () => client.resolve(parseReference(ref))]) {
      await assert.rejects(attempt(), (err: Error) => {
        assert.ok(err instanceof UnauthenticatedError, String(err));
        assert.ok(err.message.includes(registry.host), err.message);
        assert.match(err.message, /no credentials/);
        return true;
      });
    }
  });

  test("wrong credentials are UNAUTHENTICATED, naming the user", async () => {
    const client = plainClient(registry.host, { auth: { username: "berth", password: "wrong" } });
    await assert.rejects(client.resolve(parseReference(`${registry.host}/berth-test/basic:v1`)), (err: Error) => err instanceof UnauthenticatedError && /user "berth"/.test(err.message) && err.message.includes(registry.host));
  });

  test("the right credentials push and pull, given as user/password or as the base64 auth field", async () => {
    const ref = `${registry.host}/berth-test/basic:v1`;
    assert.equal(await pushWith(plainClient(registry.host, { auth: creds }), ref, image), image.manifest.desc.digest);
    const client = plainClient(registry.host, { auth: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64") } });
    const resolved = await client.resolve(parseReference(ref));
    assert.equal(resolved.digest, image.manifest.desc.digest);
    const layer = await client.fetchBlob(resolved, image.layers[0]!.desc);
    assert.equal(sha256(await readAll(layer.body)), image.layers[0]!.desc.digest);
  });
});

describe("DistributionClient with token auth", () => {
  let registry: TestRegistry;
  let image: TestImage;
  const identityToken = "berth-identity-token";
  before(async () => {
    registry = await startRegistry({ token: { username: "berth", password: "s3cret", identityToken } });
    image = await makeImage({ "token.txt": "token auth\n" });
  });
  after(async () => {
    await registry?.stop();
  });

  test("the right credentials get a pull,push token, and the token is reused while it lasts", async () => {
    const issuer = registry.tokenIssuer!;
    const client = plainClient(registry.host, { auth: issuer.credentials });
    const ref = `${registry.host}/berth-test/token:v1`;
    assert.equal(await pushWith(client, ref, image), image.manifest.desc.digest);
    assert.ok(issuer.requests.some((r) => r.granted && r.scopes.includes("repository:berth-test/token:pull,push")));

    const resolved = await client.resolve(parseReference(ref));
    const afterFirst = issuer.requests.length;
    await client.resolve(parseReference(ref));
    const m = await client.fetchManifest(resolved, resolved.digest);
    assert.equal(sha256(m.data), image.manifest.desc.digest);
    const layer = await client.fetchBlob(resolved, image.layers[0]!.desc);
    assert.equal(sha256(await readAll(layer.body)), image.layers[0]!.desc.digest);
    assert.equal(issuer.requests.length, afterFirst, "no new token for the same scope");
  });

  test("without credentials the anonymous token grants nothing and the pull is UNAUTHENTICATED", async () => {
    const client = plainClient(registry.host);
    await assert.rejects(client.resolve(parseReference(`${registry.host}/berth-test/token:v1`)), (err: Error) => {
      assert.ok(err instanceof UnauthenticatedError, String(err));
      assert.ok(err.message.includes(registry.host), err.message);
      return true;
    });
  });

  test("credentials the token server refuses are UNAUTHENTICATED, naming the registry and the user", async () => {
    const client = plainClient(registry.host, { auth: { username: "berth", password: "nope" } });
    await assert.rejects(client.resolve(parseReference(`${registry.host}/berth-test/token:v1`)), (err: Error) => {
      assert.ok(err instanceof UnauthenticatedError, String(err));
      assert.ok(err.message.includes(registry.host) && err.message.includes('user "berth"'), err.message);
      assert.match(err.message, /incorrect username or password/);
      return true;
    });
  });

  test("an identity token is exchanged as an OAuth2 refresh token", async () => {
    const issuer = registry.tokenIssuer!;
    const client = plainClient(registry.host, { auth: { identityToken } });
    const resolved = await client.resolve(parseReference(`${registry.host}/berth-test/token:v1`));
    assert.equal(resolved.digest, image.manifest.desc.digest);
    assert.ok(issuer.requests.some((r) => r.method === "POST" && r.granted));
  });
});

describe("DistributionClient over TLS", () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry({ tls: true });
  });
  after(async () => {
    await registry?.stop();
  });

  test("a self-signed registry is refused until its CA is configured or verification is skipped", async () => {
    const img = await makeImage({ "tls.txt": "tls\n" });
    const ref = `${registry.host}/berth-test/tls:v1`;
    await assert.rejects(pushWith(plainClient(registry.host, { config: {} }), ref, img), (err: Error) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.ok(err.message.includes(registry.url), err.message);
      assert.match(err.message, /caFile/);
      return true;
    });
    const withCa = plainClient(registry.host, { config: { registries: [{ host: registry.host, caFile: registry.caFile! }] } });
    assert.equal(await pushWith(withCa, ref, img), img.manifest.desc.digest);
    const skipping = plainClient(registry.host, { config: { registries: [{ host: registry.host, insecureSkipVerify: true }] } });
    assert.equal((await skipping.resolve(parseReference(ref))).digest, img.manifest.desc.digest);
  });
});

describe("DistributionClient against a misbehaving server", () => {
  let manifest: Blob;
  before(async () => {
    manifest = (await makeImage({ "x.txt": "x\n" })).manifest;
  });

  test("two 500s then a 200 are retried to success", async () => {
    const srv = await tinyServer((req, res, hit) => (hit <= 2 ? registryError(res, 500, "UNKNOWN", "try again") : answerManifest(req, res, manifest)));
    try {
      const resolved = await plainClient(srv.host).resolve(parseReference(`${srv.host}/x:t`));
      assert.equal(resolved.digest, manifest.desc.digest);
      assert.equal(srv.hits.length, 3);
    } finally {
      await srv.stop();
    }
  });

  test("a server that always answers 500 ends in UNAVAILABLE naming the URL and the status, after the default 4 attempts", async () => {
    const srv = await tinyServer((_req, res) => registryError(res, 500, "UNKNOWN", "storage on fire"));
    try {
      await assert.rejects(plainClient(srv.host).resolve(parseReference(`${srv.host}/x:t`)), (err: Error) => {
        assert.ok(err instanceof UnavailableError, String(err));
        assert.ok(err.message.includes(`${srv.url}/v2/x/manifests/t`), err.message);
        assert.match(err.message, /500/);
        return true;
      });
      assert.equal(srv.hits.length, 4);
      const resolved = { ref: parseReference(`${srv.host}/x:t`), digest: manifest.desc.digest, descriptor: manifest.desc, endpoint: { url: srv.url } };
      await assert.rejects(plainClient(srv.host).fetchManifest(resolved, manifest.desc.digest), (err: Error) => err instanceof UnavailableError && /storage on fire/.test(err.message));
    } finally {
      await srv.stop();
    }
  });

  test("a 501 is not retried", async () => {
    const srv = await tinyServer((_req, res) => registryError(res, 501, "UNSUPPORTED", "no"));
    try {
      await assert.rejects(plainClient(srv.host).resolve(parseReference(`${srv.host}/x:t`)), UnavailableError);
      assert.deepEqual(
        srv.hits.map((h) => h.method),
        ["HEAD", "GET"],
        "HEAD, then GET for the error body, each once",
      );
    } finally {
      await srv.stop();
    }
  });

  test("a 429 waits for Retry-After, and one asking too long is RESOURCE_EXHAUSTED", async () => {
    const polite = await tinyServer((req, res, hit) => (hit === 1 ? registryError(res, 429, "TOOMANYREQUESTS", "slow down", { "retry-after": "0" }) : answerManifest(req, res, manifest)));
    const harsh = await tinyServer((_req, res) => registryError(res, 429, "TOOMANYREQUESTS", "come back tomorrow", { "retry-after": "86400" }));
    try {
      assert.equal((await plainClient(polite.host).resolve(parseReference(`${polite.host}/x:t`))).digest, manifest.desc.digest);
      assert.equal(polite.hits.length, 2);
      await assert.rejects(plainClient(harsh.host).resolve(parseReference(`${harsh.host}/x:t`)), (err: Error) => err instanceof ResourceExhaustedError && err.message.includes(harsh.url));
      assert.equal(harsh.hits.length, 1);
    } finally {
      await polite.stop();
      await harsh.stop();
    }
  });

  test("an upload Location relative to the registry is followed, its query kept and the digest appended", async () => {
    const data = Buffer.from("layer bytes");
    const desc: Descriptor = { mediaType: MediaType.OCILayerGzip, digest: sha256(data), size: data.length };
    let uploaded = Buffer.alloc(0);
    const srv = await tinyServer((req, res) => {
      if (req.method === "HEAD") return registryError(res, 404, "BLOB_UNKNOWN", "blob unknown");
      if (req.method === "POST") {
        res.writeHead(202, { location: "/v2/x/blobs/uploads/u-1?_state=a%2Bb%3D%3D" });
        return res.end();
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        uploaded = Buffer.concat(chunks);
        res.writeHead(201, { "docker-content-digest": desc.digest });
        res.end();
      });
    });
    try {
      await plainClient(srv.host).pushBlob(parseReference(`${srv.host}/x:t`), desc, () => Readable.from([data]));
      const put = srv.hits.find((h) => h.method === "PUT");
      assert.equal(put?.path, `/v2/x/blobs/uploads/u-1?_state=a%2Bb%3D%3D&digest=${encodeURIComponent(desc.digest)}`);
      assert.equal(put?.headers["content-length"], String(data.length));
      assert.deepEqual(uploaded, data);
    } finally {
      await srv.stop();
    }
  });

  test("a blob redirected to another host is fetched without the registry's credentials", async () => {
    const data = randomBytes(4096);
    const desc: Descriptor = { mediaType: MediaType.OCILayerGzip, digest: sha256(data), size: data.length };
    const storage = await tinyServer((_req, res) => {
      res.writeHead(200, { "content-length": data.length });
      res.end(data);
    });
    const reg = await tinyServer((req, res) => {
      if (!req.headers.authorization) return registryError(res, 401, "UNAUTHORIZED", "authentication required", { "www-authenticate": 'Basic realm="tiny"' });
      if (req.url?.includes("/blobs/")) {
        res.writeHead(307, { location: `${storage.url}/bucket/blob?sig=1` });
        return res.end();
      }
      answerManifest(req, res, manifest);
    });
    try {
      const client = plainClient(reg.host, { auth: { username: "u", password: "p" } });
      const resolved = await client.resolve(parseReference(`${reg.host}/x:t`));
      const got = await client.fetchBlob(resolved, desc);
      assert.deepEqual(await readAll(got.body), data);
      assert.equal(storage.hits.length, 1);
      assert.equal(storage.hits[0]!.headers.authorization, undefined);
      assert.ok(reg.hits.some((h) => h.path.includes("/blobs/") && h.headers.authorization?.startsWith("Basic ")));
    } finally {
      await storage.stop();
      await reg.stop();
    }
  });
});
