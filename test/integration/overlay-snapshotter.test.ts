// OverlaySnapshotter against the conformance suite, then mounted for real with mount(8): what a
// container would see of a layer chain with whiteouts and opaque directories.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "../../runtime/errors";
import { chainIds } from "../../runtime/image/chain";
import { lsetxattr, mknod, S_IFCHR } from "../../runtime/linux/file-calls";
import { OverlaySnapshotter } from "../../runtime/snapshot/overlay";
import type { Mount } from "../../runtime/snapshot/types";
import { runSnapshotterConformance } from "../unit/snapshot-conformance";

runSnapshotterConformance("overlay", (dir) => new OverlaySnapshotter(dir), {
  async simulateHalfMade(dir) {
    // A numbered directory with files but no meta.json: prepare() killed before its last step.
    const half = join(dir, "snapshots", "900");
    await mkdir(join(half, "fs", "etc"), { recursive: true });
    await writeFile(join(half, "fs", "etc", "partial"), "x");
    return async () => !(await stat(half).then(() => true, () => false));
  },
});

function mountAll(mounts: Mount[], target: string): void {
  for (const m of mounts) execFileSync("mount", ["-t", m.type, "-o", m.options.join(","), m.source, target]);
}

function unmount(target: string): void {
  try {
    execFileSync("umount", [target], { stdio: "ignore" });
  } catch {
    execFileSync("umount", ["-l", target], { stdio: "ignore" });
  }
}

/** Every path below `root` with a short description of what it is, sorted. */
async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      const rel = relative(root, path);
      if (e.isDirectory()) {
        out.push(`${rel}/`);
        await walk(path);
      } else if (e.isFile()) out.push(`${rel}=${await readFile(path, "utf8")}`);
      else out.push(`${rel}?`);
    }
  };
  await walk(root);
  return out.sort();
}

function isWhiteout(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isCharacterDevice() && s.rdev === 0,
    () => false,
  );
}

describe("overlay snapshots mounted for real", () => {
  let dir: string;
  const mounted: string[] = [];
  // Diff IDs of three made-up layers; their chain IDs key the committed snapshots.
  const diffIds = ["one", "two", "three"].map((s) => `sha256:${execFileSync("sha256sum", { input: s }).toString().slice(0, 64)}`);
  const [c1, c2, c3] = chainIds(diffIds) as [string, string, string];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-overlay-"));
  });
  after(async () => {
    for (const m of mounted.reverse()) unmount(m);
    await rm(dir, { recursive: true, force: true });
  });

  async function mountpoint(name: string): Promise<string> {
    const p = join(dir, "mnt", name);
    await mkdir(p, { recursive: true });
    return p;
  }

  async function mountAt(mounts: Mount[], name: string): Promise<string> {
    const target = await mountpoint(name);
    mountAll(mounts, target);
    mounted.push(target);
    return target;
  }

  async function release(target: string): Promise<void> {
    unmount(target);
    mounted.splice(mounted.indexOf(target), 1);
  }

  test("chain IDs follow the image spec: sha256 of the previous chain ID, a space, the diff ID", () => {
    assert.equal(c1, diffIds[0]);
    const sha = (s: string) => `sha256:${execFileSync("sha256sum", { input: s }).toString().slice(0, 64)}`;
    assert.equal(c2, sha(`${c1} ${diffIds[1]}`));
    assert.equal(c3, sha(`${c2} ${diffIds[2]}`));
  });

  test("three layers with a whiteout and an opaque directory mount as exactly the expected tree", async () => {
    const s = new OverlaySnapshotter(dir);

    await s.prepare("x1");
    const u1 = await s.upperDir("x1");
    await mkdir(join(u1, "a"));
    await writeFile(join(u1, "a", "file1"), "one");
    await writeFile(join(u1, "a", "keep"), "keep");
    await mkdir(join(u1, "d"));
    await writeFile(join(u1, "d", "x"), "x");
    await writeFile(join(u1, "d", "y"), "y");
    await writeFile(join(u1, "top"), "v1");
    await s.commit(c1, "x1");

    await s.prepare("x2", c1);
    const u2 = await s.upperDir("x2");
    await mkdir(join(u2, "a"));
    mknod(join(u2, "a", "file1"), S_IFCHR, 0, 0);
    await mkdir(join(u2, "d"));
    lsetxattr(join(u2, "d"), "trusted.overlay.opaque", Buffer.from("y"));
    await writeFile(join(u2, "d", "new"), "new");
    await s.commit(c2, "x2");

    await s.prepare("x3", c2);
    const u3 = await s.upperDir("x3");
    await mkdir(join(u3, "c"));
    await writeFile(join(u3, "c", "z"), "z");
    await writeFile(join(u3, "top"), "v3");
    await s.commit(c3, "x3");

    const viewMounts = await s.view("look", c3);
    assert.deepEqual(viewMounts, [{ type: "overlay", source: "overlay", options: [`lowerdir=${(await s.lowerDirs("look")).join(":")}`] }]);
    const view = await mountAt(viewMounts, "view");
    const expected = ["a/", "a/keep=keep", "c/", "c/z=z", "d/", "d/new=new", "top=v3"];
    assert.deepEqual(await tree(view), expected);
    await assert.rejects(writeFile(join(view, "nope"), "x"), { code: "EROFS" });
    await release(view);

    // A container's writable snapshot on the same chain: changes land in its own upper dir only.
    const rwMounts = await s.prepare("ctr", c3);
    const [rw] = rwMounts;
    assert.equal(rw?.type, "overlay");
    const ctrUpper = await s.upperDir("ctr");
    assert.deepEqual(rw?.options, ["index=off", `workdir=${join(ctrUpper, "..", "work")}`, `upperdir=${ctrUpper}`, `lowerdir=${[u3, u2, u1].join(":")}`]);
    const root = await mountAt(rwMounts, "ctr");
    assert.deepEqual(await tree(root), expected);
    await writeFile(join(root, "written"), "w");
    await rm(join(root, "a", "keep"));
    await release(root);
    const upper = ctrUpper;
    assert.equal(await readFile(join(upper, "written"), "utf8"), "w");
    assert.ok(await isWhiteout(join(upper, "a", "keep")), "deleting a lower file leaves a whiteout in the upper dir");
    assert.equal(await readFile(join(u1, "a", "keep"), "utf8"), "keep", "committed layers are untouched");

    // The same snapshot mounted twice in a row (a container restart) works: no index to trip over.
    const again = await mountAt(await s.mounts("ctr"), "ctr-again");
    assert.deepEqual(await tree(again), ["a/", "c/", "c/z=z", "d/", "d/new=new", "top=v3", "written=w"]);
    await release(again);
  });

  test("a view of one layer is a read-only bind mount of it, an active without parent a writable one", async () => {
    const s = new OverlaySnapshotter(join(dir, "single"));
    const rwMounts = await s.prepare("solo");
    assert.deepEqual(rwMounts, [{ type: "bind", source: await s.upperDir("solo"), options: ["rbind", "rw"] }]);
    const rw = await mountAt(rwMounts, "solo");
    await writeFile(join(rw, "f"), "solo");
    await release(rw);
    await s.commit("L", "solo");

    const roMounts = await s.view("peek", "L");
    assert.deepEqual(roMounts, [{ type: "bind", source: (await s.lowerDirs("peek"))[0], options: ["rbind", "ro"] }]);
    const ro = await mountAt(roMounts, "peek");
    assert.equal(await readFile(join(ro, "f"), "utf8"), "solo");
    await assert.rejects(writeFile(join(ro, "g"), "x"), { code: "EROFS" });
    await release(ro);
  });

  test("a chain too long for one page of mount options is refused before anything is made", async () => {
    // A long root makes every lowerdir long, so a short chain already passes the 4095-byte limit.
    const s = new OverlaySnapshotter(join(dir, "r".repeat(200)));
    let parent: string | undefined;
    let refused: unknown;
    for (let i = 0; i < 40 && !refused; i++) {
      try {
        await s.prepare(`a${i}`, parent);
      } catch (err) {
        refused = err;
        break;
      }
      await s.commit(`l${i}`, `a${i}`);
      parent = `l${i}`;
    }
    assert.ok(refused, "the chain outgrew the mount options limit within 40 layers");
    assert.equal((refused as { code: unknown }).code, Code.FAILED_PRECONDITION);
    assert.match((refused as Error).message, /4095/);
    const keys = (await s.list()).map((i) => i.key);
    assert.ok(keys.every((k) => k.startsWith("l")), "the refused prepare left no snapshot");
    assert.deepEqual(await s.cleanup(), []);
  });
});
