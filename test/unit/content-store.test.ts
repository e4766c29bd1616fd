import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Code } from "../../runtime/errors";
import { FileContentStore } from "../../runtime/image/content/store";

function digestOf(data: Uint8Array, alg: "sha256" | "sha512" = "sha256"): string {
  return `${alg}:${createHash(alg).update(data).digest("hex")}`;
}

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "berth-content-"));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

function hasCode(code: Code, ...mentions: string[]) {
  return (err: Error & { code?: unknown }) => {
    assert.equal(err.code, code, err.message);
    for (const m of mentions) assert.ok(err.message.includes(m), `"${err.message}" should mention ${m}`);
    return true;
  };
}

async function settledYet(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return settled;
}

describe("FileContentStore", () => {
  test("put stores a read-only blob under its digest that info, read, readStream, list and delete see", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      const data = Buffer.from("hello, berth");
      const d = digestOf(data);
      const info = await store.put(data, d);
      assert.equal(info.digest, d);
      assert.equal(info.size, data.length);
      const path = join(root, "content", "blobs", "sha256", d.slice(7));
      assert.equal(store.blobPath(d), path);
      assert.equal((await stat(path)).mode & 0o777, 0o444);
      assert.deepEqual(await store.read(d), data);
      const chunks: Buffer[] = [];
      for await (const c of store.readStream(d)) chunks.push(c as Buffer);
      assert.deepEqual(Buffer.concat(chunks), data);
      assert.deepEqual((await store.list()).map((i) => i.digest), [d]);
      assert.deepEqual(await store.put(data), info, "putting the same bytes again is a no-op");
      await store.delete(d);
      assert.equal(await store.info(d), undefined);
      await assert.rejects(store.read(d), hasCode(Code.NOT_FOUND, d));
      await assert.rejects(store.delete(d), hasCode(Code.NOT_FOUND, d));
      await assert.rejects(
        (async () => {
          for await (const _ of store.readStream(d));
        })(),
        hasCode(Code.NOT_FOUND, d),
      );
    }));

  test("an ingest directory a crash left after its blob was committed is removed when the store opens; a partial one is kept", () =>
    withRoot(async (root) => {
      const data = Buffer.from("committed before the crash");
      const d = digestOf(data);
      await new FileContentStore(root).put(data, d);
      // The crash: commit renamed data/ into blobs/ but did not get to remove the ingest directory.
      const finished = join(root, "content", "ingest", `sha256-${d.slice(7)}`);
      await mkdir(finished, { recursive: true });
      await writeFile(join(finished, "ref"), JSON.stringify({ digest: d, size: data.length, startedAt: 0 }));
      const partialData = randomBytes(100);
      const partial = await new FileContentStore(root).ingest({ digest: digestOf(partialData), size: 100 });
      await partial.write(partialData.subarray(0, 40));
      await partial.close();
      const reopened = new FileContentStore(root);
      await reopened.put(Buffer.from("any write opens the store"));
      assert.deepEqual(await readdir(join(root, "content", "ingest")), [`sha256-${digestOf(partialData).slice(7)}`]);
      assert.deepEqual(await reopened.read(d), data);
    }));

  test("a sha512 digest is verified with sha512", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      const data = randomBytes(3000);
      const d = digestOf(data, "sha512");
      await store.put(data, d);
      assert.deepEqual(await store.read(d), data);
      assert.ok(store.blobPath(d).includes(join("blobs", "sha512")));
    }));

  test("digests that are not sha256/sha512 hex are refused before they name a file", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      for (const bad of ["sha256:../../etc/passwd", "md5:abc", "sha256:ABC", `sha256:${"a".repeat(63)}`]) {
        assert.throws(() => store.blobPath(bad), hasCode(Code.INVALID_ARGUMENT, bad));
        await assert.rejects(store.ingest({ digest: bad, size: 1 }), hasCode(Code.INVALID_ARGUMENT));
      }
    }));

  test("an ingest written in chunks becomes a blob only at commit, and leaves no ingest behind", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      const data = randomBytes(200_000);
      const d = digestOf(data);
      const ing = await store.ingest({ digest: d, size: data.length });
      assert.equal(ing.offset, 0);
      for (let off = 0; off < data.length; off += 65_536) await ing.write(data.subarray(off, off + 65_536));
      assert.equal(ing.offset, data.length);
      assert.equal(await store.info(d), undefined, "not visible before commit");
      const info = await ing.commit();
      assert.equal(info.size, data.length);
      assert.deepEqual(await store.read(d), data);
      assert.deepEqual(await readdir(join(root, "content", "ingest")), []);
      await assert.rejects(ing.write(Buffer.from("x")), hasCode(Code.FAILED_PRECONDITION));
    }));

  test("a digest mismatch discards the ingest with DATA_LOSS naming expected and actual digests", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      const good = randomBytes(1000);
      const bad = Buffer.from(good);
      bad[500] ^= 0xff;
      const d = digestOf(good);
      const ing = await store.ingest({ digest: d, size: good.length });
      await ing.write(bad);
      await assert.rejects(ing.commit(), hasCode(Code.DATA_LOSS, d, digestOf(bad)));
      assert.equal(await store.info(d), undefined, "a bad digest never becomes a blob");
      assert.deepEqual(await readdir(join(root, "content", "ingest")), []);
      await ing.close();
      const again = await store.ingest({ digest: d, size: good.length });
      assert.equal(again.offset, 0, "the next try starts from scratch");
      await again.close();
      await assert.rejects(store.put(bad, d), hasCode(Code.DATA_LOSS, d));
    }));

  test("more bytes than the descriptor's size are refused and discarded", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      const data = randomBytes(100);
      const d = digestOf(data);
      const ing = await store.ingest({ digest: d, size: 99 });
      await assert.rejects(ing.write(data), hasCode(Code.DATA_LOSS, d, "99"));
      assert.deepEqual(await readdir(join(root, "content", "ingest")), []);
    }));

  test("commit before every byte is written keeps the ingest to resume", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      const data = randomBytes(100);
      const d = digestOf(data);
      const ing = await store.ingest({ digest: d, size: 100 });
      await ing.write(data.subarray(0, 40));
      await assert.rejects(ing.commit(), hasCode(Code.FAILED_PRECONDITION, "40"));
      const again = await store.ingest({ digest: d, size: 100 });
      assert.equal(again.offset, 40);
      await again.write(data.subarray(40));
      await again.commit();
    }));

  test("an ingest closed half-way resumes in a new process at the bytes on disk", () =>
    withRoot(async (root) => {
      const data = randomBytes(300_000);
      const d = digestOf(data);
      const first = await new FileContentStore(root).ingest({ digest: d, size: data.length });
      await first.write(data.subarray(0, 123_457));
      await first.close();

      const store = new FileContentStore(root);
      const resumed = await store.ingest({ digest: d, size: data.length });
      assert.equal(resumed.offset, 123_457);
      await resumed.write(data.subarray(123_457));
      await resumed.commit();
      assert.deepEqual(await store.read(d), data);
    }));

  test("after a crash, leftover ingest bytes resume; too many are dropped; wrong ones never become a blob", () =>
    withRoot(async (root) => {
      const data = randomBytes(5000);
      const d = digestOf(data);
      const dir = join(root, "content", "ingest", `sha256-${d.slice(7)}`);
      const leave = async (bytes: Buffer) => {
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, "ref"), JSON.stringify({ digest: d, size: data.length, startedAt: 1 }));
        await writeFile(join(dir, "data"), bytes);
      };

      // What a kill -9 in the middle of a download leaves.
      await leave(data.subarray(0, 2048));
      let store = new FileContentStore(root);
      let ing = await store.ingest({ digest: d, size: data.length });
      assert.equal(ing.offset, 2048);
      await ing.close();

      await leave(Buffer.concat([data, Buffer.from("trailing junk")]));
      store = new FileContentStore(root);
      ing = await store.ingest({ digest: d, size: data.length });
      assert.equal(ing.offset, 0, "more bytes than the blob has cannot be a prefix of it");
      await ing.close();

      const wrong = Buffer.from(data);
      wrong[10] ^= 1;
      await leave(wrong.subarray(0, 4000));
      store = new FileContentStore(root);
      ing = await store.ingest({ digest: d, size: data.length });
      await ing.write(data.subarray(4000));
      await assert.rejects(ing.commit(), hasCode(Code.DATA_LOSS, d));
      assert.equal(await store.info(d), undefined);

      // A leftover for another size (the descriptor changed) is not resumed either.
      await leave(data.subarray(0, 100));
      await writeFile(join(dir, "ref"), JSON.stringify({ digest: d, size: 42, startedAt: 1 }));
      ing = await new FileContentStore(root).ingest({ digest: d, size: data.length });
      assert.equal(ing.offset, 0);
      await ing.close();
    }));

  test("a second ingest of the same digest waits for the first, then finds the blob ALREADY_EXISTS", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      const data = randomBytes(10_000);
      const d = digestOf(data);
      const first = await store.ingest({ digest: d, size: data.length });
      const second = store.ingest({ digest: d, size: data.length });
      await first.write(data.subarray(0, 5000));
      assert.equal(await settledYet(second), false, "the second writer waits while the first is open");
      await first.write(data.subarray(5000));
      await first.commit();
      await assert.rejects(second, hasCode(Code.ALREADY_EXISTS, d));
      assert.deepEqual(await store.read(d), data);
    }));

  test("a second ingest of the same digest takes over where a closed first one stopped", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      const data = randomBytes(10_000);
      const d = digestOf(data);
      const first = await store.ingest({ digest: d, size: data.length });
      const second = store.ingest({ digest: d, size: data.length });
      await first.write(data.subarray(0, 7000));
      await first.close();
      const ing = await second;
      assert.equal(ing.offset, 7000);
      await ing.write(data.subarray(7000));
      await ing.commit();
      // Concurrent puts of the same bytes both succeed with the same blob.
      const other = randomBytes(50_000);
      const infos = await Promise.all([store.put(other), store.put(other), store.put(other)]);
      assert.equal(new Set(infos.map((i) => i.digest)).size, 1);
      assert.deepEqual(await store.read(digestOf(other)), other);
    }));

  test("usage counts bytes and inodes of blobs and ingests", () =>
    withRoot(async (root) => {
      const store = new FileContentStore(root);
      const empty = await store.usage();
      await store.put(Buffer.alloc(1000, 1));
      const data = Buffer.alloc(500, 2);
      const ing = await store.ingest({ digest: digestOf(data), size: data.length });
      await ing.write(data.subarray(0, 300));
      await ing.close();
      const used = await store.usage();
      const refBytes = (await readFile(join(root, "content", "ingest", `sha256-${digestOf(data).slice(7)}`, "ref"))).length;
      assert.equal(used.bytes - empty.bytes, 1000 + 300 + refBytes);
      // the blob, the ingest directory, its data and ref files
      assert.equal(used.inodes - empty.inodes, 4);
    }));

  test("a full disk propagates ENOSPC as it is and leaves no partial file", async () => {
    const root = await mkdtemp(join(tmpdir(), "berth-content-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", root]);
    try {
      const store = new FileContentStore(root);
      const data = randomBytes(1024 * 1024);
      const ing = await store.ingest({ digest: digestOf(data), size: data.length });
      let err: NodeJS.ErrnoException | undefined;
      try {
        for (let off = 0; off < data.length; off += 64 * 1024) await ing.write(data.subarray(off, off + 64 * 1024));
      } catch (e) {
        err = e as NodeJS.ErrnoException;
      }
      assert.equal(err?.code, "ENOSPC");
      assert.deepEqual(await readdir(join(root, "content", "ingest")), []);
      await ing.close();
      await store.put(Buffer.from("small"));
    } finally {
      try {
        execFileSync("umount", [root]);
      } catch {
        execFileSync("umount", ["-l", root]);
      }
      await rm(root, { recursive: true, force: true });
    }
  });
});
