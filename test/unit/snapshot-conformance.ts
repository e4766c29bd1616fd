// Behaviour every Snapshotter must show, whatever its storage: run it from an implementation's
// own test file with runSnapshotterConformance(name, dir => new Impl(dir)). Each test gets a
// fresh directory, removed afterwards even when the test fails.
import assert from "node:assert/strict";
import { link, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Code } from "../../runtime/errors";
import { type Mount, type Snapshotter, UNPACKING_LABEL } from "../../runtime/snapshot/types";

export interface ConformanceHooks {
  /**
   * Leave in `dir` what a kill -9 in the middle of making a snapshot leaves behind (files but no
   * committed metadata), and return a check that answers true once it is gone.
   */
  simulateHalfMade?(dir: string): Promise<() => Promise<boolean>>;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "berth-snap-conf-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function rejectsWith(p: Promise<unknown>, code: Code, mentions?: string): Promise<void> {
  await assert.rejects(p, (err: Error & { code?: unknown }) => {
    assert.equal(err.code, code, `expected gRPC code ${code}, got ${String(err.code)}: ${err.message}`);
    if (mentions) assert.ok(err.message.includes(mentions), `"${err.message}" should mention "${mentions}"`);
    return true;
  });
}

/** A committed snapshot whose layer holds one file named after it. */
async function layer(s: Snapshotter, name: string, parent?: string): Promise<void> {
  const key = `${name}-active`;
  await s.prepare(key, parent);
  await writeFile(join(await s.upperDir(key), `marker-${name}`), name);
  await s.commit(name, key);
}

function isReadOnly(mounts: Mount[]): boolean {
  return mounts.every((m) => m.options.includes("ro") || (m.type === "overlay" && !m.options.some((o) => o.startsWith("upperdir="))));
}

export function runSnapshotterConformance(name: string, makeSnapshotter: (dir: string) => Snapshotter, hooks: ConformanceHooks = {}): void {
  describe(`snapshotter conformance: ${name}`, () => {
    test("prepare makes an active snapshot with its labels, and mounts() answers what prepare returned", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        const mounts = await s.prepare("c1", undefined, { team: "a" });
        assert.ok(mounts.length > 0);
        assert.deepEqual(await s.mounts("c1"), mounts);
        const info = await s.stat("c1");
        assert.equal(info?.kind, "active");
        assert.equal(info?.parent, undefined);
        assert.deepEqual(info?.labels, { team: "a" });
        assert.equal(typeof info?.createdAt, "number");
        assert.ok(!isReadOnly(mounts), "an active snapshot mounts writable");
        assert.ok((await stat(await s.upperDir("c1"))).isDirectory());
        assert.deepEqual(await readdir(await s.upperDir("c1")), [], "a new snapshot starts empty");
        assert.equal(await s.stat("nope"), undefined);
      }));

    test("a taken key is ALREADY_EXISTS for prepare, view and commit, whatever kind holds it", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        await layer(s, "base");
        await s.prepare("busy", "base");
        await s.view("look", "base");
        for (const key of ["base", "busy", "look"]) {
          await rejectsWith(s.prepare(key), Code.ALREADY_EXISTS, key);
          await rejectsWith(s.view(key, "base"), Code.ALREADY_EXISTS, key);
        }
        await s.prepare("next", "base");
        await rejectsWith(s.commit("base", "next"), Code.ALREADY_EXISTS, "base");
        assert.equal((await s.stat("next"))?.kind, "active", "a refused commit leaves the snapshot active");
      }));

    test("concurrent prepares of one key: exactly one wins, the other is ALREADY_EXISTS", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        const results = await Promise.allSettled([s.prepare("same"), s.prepare("same"), s.prepare("same")]);
        assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
        for (const r of results) if (r.status === "rejected") assert.equal((r.reason as { code: unknown }).code, Code.ALREADY_EXISTS);
        assert.equal((await s.list()).filter((i) => i.key === "same").length, 1);
      }));

    test("a missing parent is NOT_FOUND and an uncommitted parent FAILED_PRECONDITION", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        await rejectsWith(s.prepare("c", "ghost"), Code.NOT_FOUND, "ghost");
        await rejectsWith(s.view("v", "ghost"), Code.NOT_FOUND, "ghost");
        await s.prepare("open");
        await rejectsWith(s.prepare("c", "open"), Code.FAILED_PRECONDITION, "open");
        assert.equal(await s.stat("c"), undefined, "nothing is left of a refused prepare");
      }));

    test("commit freezes an active snapshot under its new name; the active key is gone", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        await s.prepare("work", undefined, { [UNPACKING_LABEL]: "x" });
        await writeFile(join(await s.upperDir("work"), "f"), "data");
        await s.commit("layer1", "work", { origin: "test" });
        assert.equal(await s.stat("work"), undefined);
        const info = await s.stat("layer1");
        assert.equal(info?.kind, "committed");
        assert.deepEqual(info?.labels, { origin: "test" }, "a committed snapshot carries the labels given to commit");
        await rejectsWith(s.upperDir("layer1"), Code.FAILED_PRECONDITION, "layer1");
        await rejectsWith(s.commit("again", "layer1"), Code.FAILED_PRECONDITION, "layer1");
        await rejectsWith(s.commit("x", "work"), Code.NOT_FOUND, "work");
        // The committed layer's files are what the next snapshot sees below it.
        await s.prepare("child", "layer1");
        const [lower] = await s.lowerDirs("child");
        assert.equal(await readFile(join(lower!, "f"), "utf8"), "data");
      }));

    test("views are read-only and cannot be committed or written", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        await layer(s, "l1");
        await layer(s, "l2", "l1");
        for (const [key, parent] of [["v0", undefined], ["v1", "l1"], ["v2", "l2"]] as const) {
          const mounts = await s.view(key, parent);
          assert.ok(isReadOnly(mounts), `view ${key} mounts read-only: ${JSON.stringify(mounts)}`);
          assert.equal((await s.stat(key))?.kind, "view");
          assert.equal((await s.stat(key))?.parent, parent);
          await rejectsWith(s.commit(`${key}-c`, key), Code.FAILED_PRECONDITION, key);
          await rejectsWith(s.upperDir(key), Code.FAILED_PRECONDITION, key);
        }
      }));

    test("lowerDirs lists the committed chain below a snapshot, topmost first", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        await layer(s, "a");
        await layer(s, "b", "a");
        await layer(s, "c", "b");
        await s.prepare("top", "c");
        const lowers = await s.lowerDirs("top");
        assert.equal(lowers.length, 3);
        const markers = await Promise.all(lowers.map(async (d) => (await readdir(d)).filter((n) => n.startsWith("marker-"))));
        assert.deepEqual(markers, [["marker-c"], ["marker-b"], ["marker-a"]]);
        assert.deepEqual(await s.lowerDirs("a"), []);
        assert.equal((await s.stat("c"))?.parent, "b");
      }));

    test("remove is FAILED_PRECONDITION while children exist, then frees the key", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        await layer(s, "base");
        await layer(s, "mid", "base");
        await s.prepare("ctr", "mid");
        await rejectsWith(s.remove("base"), Code.FAILED_PRECONDITION, "mid");
        await rejectsWith(s.remove("mid"), Code.FAILED_PRECONDITION, "ctr");
        await s.remove("ctr");
        await s.remove("mid");
        await s.remove("base");
        assert.deepEqual(await s.list(), []);
        await rejectsWith(s.remove("base"), Code.NOT_FOUND, "base");
        await rejectsWith(s.mounts("base"), Code.NOT_FOUND, "base");
        await s.prepare("base");
        assert.equal((await s.stat("base"))?.kind, "active", "a removed key can be used again");
      }));

    test("list reports every snapshot with kind and parent", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        await layer(s, "l1");
        await s.prepare("rw", "l1");
        await s.view("ro", "l1");
        const got = (await s.list()).map((i) => [i.key, i.kind, i.parent ?? ""]).sort();
        assert.deepEqual(got, [
          ["l1", "committed", ""],
          ["ro", "view", "l1"],
          ["rw", "active", "l1"],
        ]);
      }));

    test("usage counts the bytes of regular files once per inode, and inodes", () =>
      withDir(async (dir) => {
        const s = makeSnapshotter(dir);
        await s.prepare("u");
        const up = await s.upperDir("u");
        const empty = await s.usage("u");
        assert.equal(empty.bytes, 0);
        await writeFile(join(up, "a"), Buffer.alloc(1000, 1));
        await writeFile(join(up, "b"), Buffer.alloc(24, 2));
        await link(join(up, "a"), join(up, "a-again"));
        const used = await s.usage("u");
        assert.equal(used.bytes, 1024, "a hard link is not counted twice");
        assert.equal(used.inodes - empty.inodes, 2);
        await rejectsWith(s.usage("ghost"), Code.NOT_FOUND, "ghost");
      }));

    test("state survives a restart: a new instance on the same directory sees the same snapshots", () =>
      withDir(async (dir) => {
        const s1 = makeSnapshotter(dir);
        await layer(s1, "l1");
        await s1.prepare("ctr", "l1", { pod: "p" });
        const s2 = makeSnapshotter(dir);
        const sort = (xs: Awaited<ReturnType<Snapshotter["list"]>>) => xs.sort((a, b) => a.key.localeCompare(b.key));
        assert.deepEqual(sort(await s2.list()), sort(await s1.list()));
        assert.deepEqual(await s2.mounts("ctr"), await s1.mounts("ctr"));
      }));

    test("cleanup after a crash removes an unpack that never committed and half-made files, and nothing else", () =>
      withDir(async (dir) => {
        const before = makeSnapshotter(dir);
        await layer(before, "l1");
        await before.prepare("extract-1", "l1", { [UNPACKING_LABEL]: "sha256:abc" });
        await writeFile(join(await before.upperDir("extract-1"), "half"), "x");
        await before.prepare("ctr", "l1");
        // The process that is unpacking does not lose its work to its own cleanup.
        assert.deepEqual(await before.cleanup(), []);
        assert.equal((await before.stat("extract-1"))?.kind, "active");
        const gone = await hooks.simulateHalfMade?.(dir);

        const after = makeSnapshotter(dir);
        assert.deepEqual(await after.cleanup(), ["extract-1"]);
        assert.equal(await after.stat("extract-1"), undefined);
        assert.equal((await after.stat("ctr"))?.kind, "active", "a container's snapshot is not half-made");
        assert.equal((await after.stat("l1"))?.kind, "committed");
        if (gone) assert.ok(await gone(), "the half-made leftovers are gone");
        assert.deepEqual(await after.cleanup(), [], "cleanup is idempotent");
        // The parent of the removed unpack is free to go once nothing else uses it.
        await after.remove("ctr");
        await after.remove("l1");
      }));
  });
}
