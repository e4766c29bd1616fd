import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { InvalidArgumentError } from "../../runtime/errors";
import { basicAuthorization, credentialsOf, loadDockerConfigAuth, parseChallenges } from "../../runtime/image/registry/auth";

describe("WWW-Authenticate challenges", () => {
  test("a Bearer challenge gives realm, service and scope", () => {
    const header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"';
    assert.deepEqual(parseChallenges(header), [
      { scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/busybox:pull" } },
    ]);
  });

  test("a quoted value keeps its commas, spaces and escaped quotes", () => {
    const [c] = parseChallenges('Bearer realm="https://a/token?x=1,y=2", scope="repository:a:pull,push repository:b:pull", error="say \\"hi\\""');
    assert.equal(c?.params.realm, "https://a/token?x=1,y=2");
    assert.equal(c?.params.scope, "repository:a:pull,push repository:b:pull");
    assert.equal(c?.params.error, 'say "hi"');
  });

  test("scheme and parameter names are case-insensitive, unquoted values are tokens", () => {
    assert.deepEqual(parseChallenges("BASIC Realm=berth-test , Charset=UTF-8"), [{ scheme: "basic", params: { realm: "berth-test", charset: "UTF-8" } }]);
  });

  test("several challenges in one header, and in several headers, are all found in order", () => {
    const one = parseChallenges('Basic realm="r1", Bearer realm="https://t/token",service="s", Negotiate');
    assert.deepEqual(
      one.map((c) => c.scheme),
      ["basic", "bearer", "negotiate"],
    );
    assert.deepEqual(one[1]?.params, { realm: "https://t/token", service: "s" });
    const many = parseChallenges(['Basic realm="x"', 'Bearer realm="https://y"']);
    assert.deepEqual(
      many.map((c) => [c.scheme, c.params.realm]),
      [
        ["basic", "x"],
        ["bearer", "https://y"],
      ],
    );
  });

  test("a token68 credential is kept whole and does not swallow the next challenge", () => {
    const cs = parseChallenges('Negotiate abc123==, Basic realm="r"');
    assert.equal(cs[0]?.scheme, "negotiate");
    assert.equal(cs[0]?.params[""], "abc123==");
    assert.deepEqual(cs[1], { scheme: "basic", params: { realm: "r" } });
  });

  test("no header, or garbage, gives no challenge to answer", () => {
    assert.deepEqual(parseChallenges(undefined), []);
    assert.deepEqual(parseChallenges(""), []);
    assert.deepEqual(parseChallenges(" , ,"), []);
  });
});

describe("credentials", () => {
  test("username/password win; otherwise the base64 auth field is split at its first colon", () => {
    assert.deepEqual(credentialsOf({ username: "u", password: "p", auth: "eDp5" }), { username: "u", password: "p" });
    assert.deepEqual(credentialsOf({ auth: Buffer.from("me:pa:ss").toString("base64") }), { username: "me", password: "pa:ss" });
    assert.equal(credentialsOf({ identityToken: "t" }), undefined);
    assert.equal(credentialsOf(undefined), undefined);
    assert.throws(() => credentialsOf({ auth: Buffer.from("nocolon").toString("base64") }), InvalidArgumentError);
  });

  test("the basic header is base64 of user:password", () => {
    assert.equal(basicAuthorization({ username: "aladdin", password: "opensesame" }), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
  });
});

describe("docker config.json", () => {
  let dir: string;
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-auth-test-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const write = async (name: string, value: unknown) => {
    const path = join(dir, name);
    await writeFile(path, typeof value === "string" ? value : JSON.stringify(value));
    return path;
  };

  test("an entry keyed by host gives its auth; one keyed by URL matches its host", async () => {
    const path = await write("config.json", {
      auths: {
        "127.0.0.1:5000": { auth: b64("alice:pw1") },
        "https://registry.example.com/v2/": { auth: b64("bob:pw2") },
        "https://index.docker.io/v1/": { auth: b64("hub:pw3") },
      },
    });
    assert.deepEqual(credentialsOf(await loadDockerConfigAuth(path, "127.0.0.1:5000")), { username: "alice", password: "pw1" });
    assert.deepEqual(credentialsOf(await loadDockerConfigAuth(path, "registry.example.com")), { username: "bob", password: "pw2" });
    assert.deepEqual(credentialsOf(await loadDockerConfigAuth(path, "docker.io")), { username: "hub", password: "pw3" }, "docker.io finds Docker's index.docker.io key");
    assert.equal(await loadDockerConfigAuth(path, "127.0.0.1:5001"), undefined, "another port is another registry");
  });

  test("an exact host key wins over a URL key for the same host", async () => {
    const path = await write("both.json", { auths: { "https://r.example/v1/": { auth: b64("url:1") }, "r.example": { auth: b64("host:2") } } });
    assert.deepEqual(credentialsOf(await loadDockerConfigAuth(path, "r.example")), { username: "host", password: "2" });
  });

  test("identity and registry tokens are carried over", async () => {
    const path = await write("tokens.json", { auths: { "r.example": { identitytoken: "idt", registrytoken: "rt" } } });
    assert.deepEqual(await loadDockerConfigAuth(path, "r.example"), { identityToken: "idt", registryToken: "rt" });
  });

  test("a missing file, an empty entry (credential store) or no entry gives no credentials", async () => {
    assert.equal(await loadDockerConfigAuth(join(dir, "absent.json"), "r.example"), undefined);
    const path = await write("store.json", { auths: { "r.example": {} }, credsStore: "desktop" });
    assert.equal(await loadDockerConfigAuth(path, "r.example"), undefined);
    const none = await write("none.json", {});
    assert.equal(await loadDockerConfigAuth(none, "r.example"), undefined);
  });

  test("a broken file or auth field is an error naming the file", async () => {
    const broken = await write("broken.json", "{ not json");
    await assert.rejects(loadDockerConfigAuth(broken, "r.example"), (err: Error) => err instanceof InvalidArgumentError && err.message.includes(broken));
    const badAuth = await write("badauth.json", { auths: { "r.example": { auth: b64("nocolon") } } });
    await assert.rejects(loadDockerConfigAuth(badAuth, "r.example"), (err: Error) => err instanceof InvalidArgumentError && err.message.includes(badAuth) && err.message.includes("r.example"));
  });
});
