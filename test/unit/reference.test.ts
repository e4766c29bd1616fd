import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, InvalidArgumentError } from "../../runtime/errors";
import { familiarName, familiarString, formatReference, parseReference, repositoryName } from "../../runtime/image/reference";

const D = `sha256:${"a".repeat(64)}`;

// Input → full form, the cases distribution/reference's normalize tests and Docker's CLI agree on.
const NORMALISED: Array<[string, string]> = [
  ["busybox", "docker.io/library/busybox:latest"],
  ["busybox:1.36", "docker.io/library/busybox:1.36"],
  ["library/busybox", "docker.io/library/busybox:latest"],
  ["docker.io/busybox", "docker.io/library/busybox:latest"],
  ["docker.io/library/busybox", "docker.io/library/busybox:latest"],
  ["index.docker.io/busybox", "docker.io/library/busybox:latest"],
  ["index.docker.io/dmcgowan/myapp", "docker.io/dmcgowan/myapp:latest"],
  ["dmcgowan/myapp", "docker.io/dmcgowan/myapp:latest"],
  ["dmcgowan/myapp/sub:v1", "docker.io/dmcgowan/myapp/sub:v1"],
  ["docker.io/library/foo/bar", "docker.io/library/foo/bar:latest"],
  ["localhost/x", "localhost/x:latest"],
  ["localhost:5000/x", "localhost:5000/x:latest"],
  ["localhost", "docker.io/library/localhost:latest"],
  ["localhost:5000", "docker.io/library/localhost:5000"],
  ["127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t"],
  ["example.com/foo", "example.com/foo:latest"],
  ["example.com:8080/foo/bar:v2.0-rc_1", "example.com:8080/foo/bar:v2.0-rc_1"],
  ["Example.com/foo", "Example.com/foo:latest"],
  ["[::1]:5000/foo", "[::1]:5000/foo:latest"],
  ["a.b/c__d/e--f/g.h", "a.b/c__d/e--f/g.h:latest"],
  [`busybox@${D}`, `docker.io/library/busybox@${D}`],
  [`busybox:1.36@${D}`, `docker.io/library/busybox:1.36@${D}`],
  [`127.0.0.1:5000/a@${D}`, `127.0.0.1:5000/a@${D}`],
  [`localhost:5000/x:t@${D}`, `localhost:5000/x:t@${D}`],
];

describe("image references", () => {
  for (const [input, full] of NORMALISED) {
    test(`"${input}" normalises to ${full}`, () => {
      assert.equal(formatReference(parseReference(input)), full);
    });
  }

  test("a reference splits into domain, path, tag and digest", () => {
    assert.deepEqual(parseReference("busybox"), { domain: "docker.io", path: "library/busybox", tag: "latest" });
    assert.deepEqual(parseReference("127.0.0.1:5000/a/b:t"), { domain: "127.0.0.1:5000", path: "a/b", tag: "t" });
    assert.deepEqual(parseReference(`x@${D}`), { domain: "docker.io", path: "library/x", digest: D });
    assert.deepEqual(parseReference(`x:t@${D}`), { domain: "docker.io", path: "library/x", tag: "t", digest: D });
    assert.deepEqual(parseReference("localhost/x"), { domain: "localhost", path: "x", tag: "latest" });
  });

  test("a digest reference gets no default tag", () => {
    assert.equal(parseReference(`busybox@${D}`).tag, undefined);
  });

  test("repositoryName drops tag and digest; familiar names drop docker.io and library/", () => {
    const ref = parseReference(`busybox:1@${D}`);
    assert.equal(repositoryName(ref), "docker.io/library/busybox");
    assert.equal(familiarName(ref), "busybox");
    assert.equal(familiarString(ref), `busybox:1@${D}`);
    assert.equal(familiarName(parseReference("dmcgowan/myapp")), "dmcgowan/myapp");
    assert.equal(familiarName(parseReference("docker.io/library/foo/bar")), "library/foo/bar");
    assert.equal(familiarName(parseReference("127.0.0.1:5000/a/b")), "127.0.0.1:5000/a/b");
  });

  test("normalising is idempotent", () => {
    for (const [input] of NORMALISED) {
      const once = formatReference(parseReference(input));
      assert.equal(formatReference(parseReference(once)), once);
    }
  });

  const REJECTED: Array<[string, RegExp]> = [
    ["", /empty/],
    ["   ", /empty/],
    ["Busybox", /lowercase/],
    ["docker/Docker", /lowercase/],
    ["docker.io/docker/Docker", /lowercase/],
    ["Uppercase:tag", /lowercase/],
    ["-docker", /path component/],
    ["-docker/docker", /path component/],
    ["docker///docker", /empty component/],
    ["docker.io/docker///docker", /empty component/],
    ["foo/", /empty component/],
    ["https://github.com/docker/docker", /registry host|empty component/],
    ["busybox:", /tag/],
    ["busybox:-x", /tag/],
    [`busybox:${"t".repeat(129)}`, /tag/],
    [":tag", /empty/],
    ["busybox@", /not a digest/],
    ["busybox@sha256:abc", /64 lower-case hex/],
    [`busybox@sha256:${"A".repeat(64)}`, /64 lower-case hex/],
    [`busybox@md5:${"a".repeat(32)}`, /not supported/],
    [`busybox@${D}@${D}`, /digest/],
    ["a".repeat(64), /image ID/],
    [`a/${"b".repeat(255)}`, /longer than 255/],
    ["exa_mple.com:x/foo", /registry host/],
    ["foo_bar.baz/x", /registry host/],
  ];
  for (const [input, why] of REJECTED) {
    test(`"${input.length > 40 ? `${input.slice(0, 40)}…` : input}" is rejected, naming the reference`, () => {
      assert.throws(
        () => parseReference(input),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.equal(err.code, Code.INVALID_ARGUMENT);
          assert.ok(err.message.includes(`"${input}"`), err.message);
          assert.match(err.message, why);
          return true;
        },
      );
    });
  }
});
