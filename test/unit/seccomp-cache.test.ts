import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type CompiledFilter, cachedFilter } from "../../runtime/oci/seccomp-cache";

const work = mkdtempSync(join(tmpdir(), "berth-seccomp-cache-"));
after(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(work, `c${++n}`, "@seccomp");

const PROFILE = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] };
/** A compile that counts its calls and gives a recognisable two-instruction program. */
function counting(tag = 1) {
  const calls = { n: 0 };
  const compile = async (): Promise<CompiledFilter> => {
    calls.n++;
    return { program: Buffer.from([6, 0, 0, 0, 0, 0, 0xff, 0x7f, 6, 0, 0, 0, tag, 0, 0, 0]), flags: 0 };
  };
  return { calls, compile };
}

test("without the build's compiler identity every call compiles and nothing is written", async () => {
  const dir = freshDir();
  const { calls, compile } = counting();
  await cachedFilter(dir, undefined, PROFILE, compile);
  await cachedFilter(dir, undefined, PROFILE, compile);
  assert.equal(calls.n, 2);
  assert.throws(() => readdirSync(dir), { code: "ENOENT" });
});

test("the first call compiles and keeps the filter (root-only); the next ones read it, byte for byte", async () => {
  const dir = freshDir();
  const { calls, compile } = counting();
  const first = await cachedFilter(dir, "c1", PROFILE, compile);
  const second = await cachedFilter(dir, "c1", PROFILE, compile);
  assert.equal(calls.n, 1);
  assert.deepEqual(second, first);
  const [entry] = readdirSync(dir);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, entry!)).mode & 0o777, 0o600);
});

test("another compiler, another profile or a reordered profile is never served an entry made for something else", async () => {
  const dir = freshDir();
  const a = counting(1);
  await cachedFilter(dir, "c1", PROFILE, a.compile);
  const b = counting(2);
  assert.equal((await cachedFilter(dir, "c2", PROFILE, b.compile)).program[12], 2, "a new compiler compiles");
  const c = counting(3);
  assert.equal((await cachedFilter(dir, "c1", { ...PROFILE, defaultErrnoRet: 1 }, c.compile)).program[12], 3, "another profile compiles");
  const d = counting(4);
  const reordered = { syscalls: PROFILE.syscalls, defaultAction: PROFILE.defaultAction };
  assert.equal((await cachedFilter(dir, "c1", reordered, d.compile)).program[12], 4, "the same profile written in another order is a miss, not a guess");
  assert.equal(readdirSync(dir).length, 4);
});

test("an entry that does not hold what it claims, or no well-formed program, is recompiled and replaced", async () => {
  const dir = freshDir();
  await cachedFilter(dir, "c1", PROFILE, counting().compile);
  const file = join(dir, readdirSync(dir)[0]!);
  const good = JSON.parse(readFileSync(file, "utf8"));
  const bad = [
    { ...good, profile: JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW" }) },
    { ...good, compiler: "other" },
    { ...good, program: Buffer.from([1, 2, 3]).toString("base64") },
    { ...good, program: "" },
    { ...good, flags: -1 },
    "not json {",
  ];
  for (const b of bad) {
    writeFileSync(file, typeof b === "string" ? b : JSON.stringify(b));
    const again = counting(9);
    assert.equal((await cachedFilter(dir, "c1", PROFILE, again.compile)).program[12], 9, JSON.stringify(b).slice(0, 80));
    assert.equal(again.calls.n, 1);
    assert.equal(JSON.parse(readFileSync(file, "utf8")).program, Buffer.from([6, 0, 0, 0, 0, 0, 0xff, 0x7f, 6, 0, 0, 0, 9, 0, 0, 0]).toString("base64"), "replaced");
  }
});

test("a cache that cannot be written only costs the compile", async () => {
  const parent = join(work, "not-a-dir");
  writeFileSync(parent, "");
  const { calls, compile } = counting();
  const r = await cachedFilter(join(parent, "@seccomp"), "c1", PROFILE, compile);
  assert.equal(calls.n, 1);
  assert.equal(r.program.length, 16);
});
