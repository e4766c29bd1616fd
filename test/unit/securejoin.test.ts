// secureJoin and mkdirAllInRoot on real directories with real symlinks: absolute links restart
// at the root, ".." stops there, loops end in ELOOP, and nothing is ever created outside.
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { FailedPreconditionError, InvalidArgumentError } from "../../runtime/errors";
import { MAX_SYMLINKS, mkdirAllInRoot, secureJoin } from "../../runtime/oci/securejoin";

let base: string;
let root: string;
let outside: string;

before(() => {
  base = mkdtempSync(join(tmpdir(), "berth-securejoin-"));
  root = join(base, "root");
  outside = join(base, "outside");
  mkdirSync(join(root, "etc"), { recursive: true });
  mkdirSync(join(root, "usr/lib"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  writeFileSync(join(outside, "secret"), "host\n");
  symlinkSync("/etc", join(root, "etc-abs"));
  symlinkSync(outside, join(root, "to-outside"));
  symlinkSync("../../../../../../etc", join(root, "usr/lib/up"));
  symlinkSync("lib", join(root, "usr/lib64"));
  symlinkSync("loop-b", join(root, "loop-a"));
  symlinkSync("/loop-a", join(root, "loop-b"));
  symlinkSync("/self", join(root, "self"));
  symlinkSync("/etc/passwd/x", join(root, "through-file"));
  symlinkSync("/nowhere/deep", join(root, "dangling"));
});

after(() => rmSync(base, { recursive: true, force: true }));

describe("secureJoin", () => {
  test("a plain path is joined, whether it exists or not", () => {
    assert.equal(secureJoin(root, "/etc/passwd"), join(root, "etc/passwd"));
    assert.equal(secureJoin(root, "/not/there"), join(root, "not/there"));
    assert.equal(secureJoin(root, "relative/x"), join(root, "relative/x"));
    assert.equal(secureJoin(root, "/"), root);
    assert.equal(secureJoin(root, ""), root);
    assert.equal(secureJoin(`${root}/`, "//etc//./passwd"), join(root, "etc/passwd"));
  });

  test("an absolute link target starts over at the root", () => {
    assert.equal(secureJoin(root, "/etc-abs/passwd"), join(root, "etc/passwd"));
  });

  test("a link to a host path outside is re-rooted inside", () => {
    assert.equal(secureJoin(root, "/to-outside/secret"), join(root, outside, "secret"));
  });

  test('".." is clamped at the root, in the path and in link targets', () => {
    assert.equal(secureJoin(root, "../../../etc/passwd"), join(root, "etc/passwd"));
    assert.equal(secureJoin(root, "/usr/lib/../../../../etc"), join(root, "etc"));
    assert.equal(secureJoin(root, "/usr/lib/up/passwd"), join(root, "etc/passwd"));
  });

  test("a relative link target is read from the link's directory", () => {
    assert.equal(secureJoin(root, "/usr/lib64/x"), join(root, "usr/lib/x"));
  });

  test("a dangling link resolves to its target, to be created there", () => {
    assert.equal(secureJoin(root, "/dangling/more"), join(root, "nowhere/deep/more"));
  });

  test("a regular file in the middle is taken as a missing directory", () => {
    assert.equal(secureJoin(root, "/through-file"), join(root, "etc/passwd/x"));
  });

  test("a loop fails with ELOOP", () => {
    for (const p of ["/loop-a", "/loop-b/x", "/self"]) {
      assert.throws(
        () => secureJoin(root, p),
        (err: unknown) => {
          assert.ok(err instanceof InvalidArgumentError);
          assert.match(err.message, /ELOOP/);
          assert.ok(err.message.includes(p));
          assert.equal((err.cause as { code?: string }).code, "ELOOP");
          return true;
        },
      );
    }
  });

  test(`a chain of ${MAX_SYMLINKS} links resolves; one more is a loop`, () => {
    const dir = join(base, "chain");
    mkdirSync(dir);
    for (let i = 0; i <= MAX_SYMLINKS; i++) symlinkSync(`l${i + 1}`, join(dir, `l${i}`));
    mkdirSync(join(dir, `l${MAX_SYMLINKS + 1}`));
    assert.equal(secureJoin(dir, "/l1"), join(dir, `l${MAX_SYMLINKS + 1}`));
    assert.throws(() => secureJoin(dir, "/l0"), /ELOOP/);
  });

  test("the root must be absolute and free of ..", () => {
    assert.throws(() => secureJoin("relative/root", "/x"), InvalidArgumentError);
    assert.throws(() => secureJoin(`${root}/../root`, "/x"), InvalidArgumentError);
  });

  test("with / as the root it resolves as the kernel would", () => {
    assert.equal(secureJoin("/", join(root, "etc-abs")), "/etc");
    assert.equal(secureJoin("/", "/../../tmp"), "/tmp");
  });
});

describe("mkdirAllInRoot", () => {
  test("creates the missing components with the mode and returns the host path", () => {
    const made = mkdirAllInRoot(root, "/var/lib/thing", 0o750);
    assert.equal(made, join(root, "var/lib/thing"));
    assert.ok(lstatSync(made).isDirectory());
    assert.equal(lstatSync(made).mode & 0o777, 0o750 & ~process.umask());
  });

  test("existing directories are fine", () => {
    assert.equal(mkdirAllInRoot(root, "/etc", 0o755), join(root, "etc"));
  });

  test("a link pointing out of the root is followed inside it", () => {
    const made = mkdirAllInRoot(root, "/to-outside/created", 0o755);
    assert.equal(made, join(root, outside, "created"));
    assert.ok(lstatSync(made).isDirectory());
    assert.equal(existsSync(join(outside, "created")), false);
    const viaAbs = mkdirAllInRoot(root, "/etc-abs/sub", 0o755);
    assert.equal(viaAbs, join(root, "etc/sub"));
  });

  test("a file in the way is refused, naming it", () => {
    assert.throws(
      () => mkdirAllInRoot(root, "/etc/passwd/sub", 0o755),
      (err: unknown) => err instanceof FailedPreconditionError && err.message.includes(join(root, "etc/passwd")) && /not a directory/.test(err.message),
    );
  });
});
