// Registry credentials and mirrors through a real `berth serve`: basic auth (CRI AuthConfig in
// both forms, a docker config.json, `berth pull --creds`), token auth, and a host served only by
// its mirrors, one of them down.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type BuiltImage, busyboxRootfs, writeImageToLayout } from "../../runtime/image/build";
import { Code } from "../../runtime/errors";
import { startDaemon, type TestDaemon } from "../support/daemon";
import { freePort, startRegistry, type TestRegistry } from "../support/registry";
import { BUSYBOX_CONFIG, pushLayout } from "../support/test-images";

const TAG = "v1";
const REPO = "berth-test/busybox";
const USER = { username: "puller", password: "pa55word" };
const TOKEN_USER = { username: "berth", password: "s3cret" };
/** The host of the mirrored registry: it does not exist, only its mirrors do. */
const MIRRORED = "registry.example.test";
/** A host whose only mirror is down. */
const OFFLINE = "offline.example.test";

type Image = { id: string; repoTags: string[]; repoDigests: string[] };
type GrpcError = { code: number; message: string };

/** assert.rejects with a gRPC code and strings/patterns the message must hold; returns the message. */
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

describe("registry auth and mirrors through the daemon", () => {
  let work: string;
  let busybox: BuiltImage;
  let basic: TestRegistry;
  let token: TestRegistry;
  let plain: TestRegistry;
  let closedPort: number;
  /** Knows nothing but the insecure hosts: credentials come with each request. */
  let daemon: TestDaemon;
  /** Runs with a --config file: docker config.json credentials and mirrors. */
  let configured: TestDaemon;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "berth-auth-mirrors-"));
    const layout = join(work, "busybox");
    busybox = await writeImageToLayout(layout, { layers: [{ entries: busyboxRootfs() }], config: BUSYBOX_CONFIG }, { tag: TAG });
    // Each is assigned as soon as it runs, so `after` stops it even if another fails to start.
    await Promise.all([startRegistry({ htpasswd: USER }).then((r) => (basic = r)), startRegistry({ token: { ...TOKEN_USER } }).then((r) => (token = r)), startRegistry().then((r) => (plain = r))]);
    await Promise.all([pushLayout(layout, TAG, basic.host, REPO, USER), pushLayout(layout, TAG, token.host, REPO, TOKEN_USER), pushLayout(layout, TAG, plain.host, REPO)]);
    // Nothing listens there: connections are refused.
    closedPort = await freePort();
    const dockerConfig = join(work, "docker-config.json");
    await writeFile(dockerConfig, JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from(`${USER.username}:${USER.password}`).toString("base64") } } }));
    await Promise.all([
      startDaemon({ insecureRegistries: [basic.host, token.host] }).then((d) => (daemon = d)),
      startDaemon({
        config: {
          insecureRegistries: [basic.host],
          images: { dockerConfig },
          registries: [
            { host: MIRRORED, mirrors: [{ url: `http://127.0.0.1:${closedPort}` }, { url: plain.url }], skipSelf: true },
            { host: OFFLINE, mirrors: [{ url: `http://127.0.0.1:${closedPort}` }], skipSelf: true },
          ],
        },
      }).then((d) => (configured = d)),
    ]);
  });

  after(async () => {
    await Promise.all([daemon?.stop(), configured?.stop()]);
    await Promise.all([basic?.stop(), token?.stop(), plain?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  const ref = (r: TestRegistry) => `${r.host}/${REPO}:${TAG}`;

  /** Pulls, checks the image, and removes it so the next pull has to authenticate again. */
  async function pullAndRemove(d: TestDaemon, image: string, auth?: object): Promise<void> {
    const { imageRef } = await d.client.imageCall<{ imageRef: string }>("PullImage", { image: { image }, ...(auth ? { auth } : {}) });
    assert.equal(imageRef, busybox.config.digest);
    const st = await d.client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image } });
    assert.deepEqual(st.image?.repoTags, [image]);
    await d.client.imageCall("RemoveImage", { image: { image } });
  }

  describe("basic auth", () => {
    test("a pull without credentials is UNAUTHENTICATED and names the registry", async () => {
      await rejectsWith(daemon.client.imageCall("PullImage", { image: { image: ref(basic) } }), Code.UNAUTHENTICATED, `registry ${basic.host}`, /no credentials/);
    });

    test("a wrong password is UNAUTHENTICATED and names the user that was refused", async () => {
      await rejectsWith(daemon.client.imageCall("PullImage", { image: { image: ref(basic) }, auth: { username: USER.username, password: "wrong" } }), Code.UNAUTHENTICATED, basic.host, `user "${USER.username}"`);
    });

    test("CRI AuthConfig username and password pull the image", async () => {
      await pullAndRemove(daemon, ref(basic), { username: USER.username, password: USER.password });
    });

    test("CRI AuthConfig auth (base64 of user:password) pulls the image", async () => {
      await pullAndRemove(daemon, ref(basic), { auth: Buffer.from(`${USER.username}:${USER.password}`).toString("base64") });
    });

    test("credentials from the docker config.json named by images.dockerConfig pull without AuthConfig", async () => {
      await pullAndRemove(configured, ref(basic));
    });

    test("berth pull --creds user:password pulls; without it the CLI says the registry wants credentials", async () => {
      const denied = await daemon.cli(["pull", ref(basic)]);
      assert.equal(denied.code, 1);
      assert.ok(denied.stderr.includes(basic.host), denied.stderr);
      const pulled = await daemon.cli(["pull", "--creds", `${USER.username}:${USER.password}`, ref(basic)]);
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.ok(pulled.stdout.includes(`Image is up to date for ${busybox.config.digest}`), pulled.stdout);
      await daemon.client.imageCall("RemoveImage", { image: { image: ref(basic) } });
    });
  });

  describe("token auth", () => {
    test("CRI AuthConfig credentials get a pull token for the repository and the pull succeeds", async () => {
      const issuer = token.tokenIssuer!;
      const before = issuer.requests.length;
      await pullAndRemove(daemon, ref(token), { username: TOKEN_USER.username, password: TOKEN_USER.password });
      const asked = issuer.requests.slice(before);
      assert.ok(
        asked.some((r) => r.account === TOKEN_USER.username && r.granted && r.scopes.includes(`repository:${REPO}:pull`)),
        `the token server granted ${TOKEN_USER.username} repository:${REPO}:pull: ${JSON.stringify(asked)}`,
      );
    });

    test("without credentials the pull is UNAUTHENTICATED naming the registry", async () => {
      await rejectsWith(daemon.client.imageCall("PullImage", { image: { image: ref(token) } }), Code.UNAUTHENTICATED, token.host);
    });

    test("credentials the token server refuses are UNAUTHENTICATED naming the user and the token server", async () => {
      await rejectsWith(
        daemon.client.imageCall("PullImage", { image: { image: ref(token) }, auth: { username: TOKEN_USER.username, password: "wrong" } }),
        Code.UNAUTHENTICATED,
        token.host,
        `user "${TOKEN_USER.username}"`,
        /token server/,
      );
    });
  });

  describe("mirrors", () => {
    test("a host served only by mirrors (skipSelf) is pulled from the second mirror when the first is down", async () => {
      const image = `${MIRRORED}/${REPO}:${TAG}`;
      const { imageRef } = await configured.client.imageCall<{ imageRef: string }>("PullImage", { image: { image } });
      assert.equal(imageRef, busybox.config.digest);
      const st = await configured.client.imageCall<{ image: Image | null }>("ImageStatus", { image: { image } });
      assert.deepEqual(st.image?.repoTags, [image], "the image is known by the mirrored host's name, not the mirror's");
      assert.deepEqual(st.image?.repoDigests, [`${MIRRORED}/${REPO}@${busybox.manifest.digest}`]);
    });

    test("with only a mirror that is down and skipSelf, the pull is UNAVAILABLE naming the image and the endpoint", async () => {
      const image = `${OFFLINE}/${REPO}:${TAG}`;
      await rejectsWith(configured.client.imageCall("PullImage", { image: { image } }), Code.UNAVAILABLE, image, `http://127.0.0.1:${closedPort}`, /ECONNREFUSED/);
    });
  });
});
