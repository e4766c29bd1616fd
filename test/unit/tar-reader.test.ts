// The unpacker's tar reader against tar-stream, which it replaced: on archives GNU tar writes in
// each of its formats, on tar-stream's own, and on broken ones, both must see the same entries
// (headers and data) and fail with the same message, whatever sizes the bytes arrive in.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lchown, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { type TarHeader, TarReader } from "../../runtime/image/unpack/tar-reader";
import { lsetxattr, mknod, S_IFIFO } from "../../runtime/linux/file-calls";

interface Seen {
  name: string;
  type: string | null;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  pax: Record<string, string> | null;
  data: string;
}

interface Outcome {
  entries: Seen[];
  error?: string;
}

function seen(h: TarHeader | tar.Header, data: Buffer[]): Seen {
  return {
    name: h.name,
    type: h.type ?? null,
    mode: h.mode ?? 0,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    size: h.size ?? 0,
    mtime: h.mtime?.getTime() ?? 0,
    linkname: h.linkname ?? null,
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
    pax: (h.pax as Record<string, string> | null | undefined) ?? null,
    data: createHash("sha256").update(Buffer.concat(data)).digest("hex"),
  };
}

function chunked(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

async function viaTarStream(chunks: Buffer[]): Promise<Outcome> {
  const extract = tar.extract();
  const entries: Seen[] = [];
  let error: string | undefined;
  extract.on("error", (err) => {
    error ??= err.message;
  });
  const consuming = (async () => {
    for await (const entry of extract) {
      const parts: Buffer[] = [];
      for await (const d of entry) parts.push(d as Buffer);
      entries.push(seen(entry.header, parts));
    }
  })().catch((err: Error) => {
    error ??= err.message;
  });
  for (const c of chunks) {
    if (extract.destroyed) break;
    if (!extract.write(c)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          extract.off("drain", done);
          extract.off("close", done);
          resolve();
        };
        extract.on("drain", done);
        extract.on("close", done);
      });
    }
  }
  if (!extract.destroyed) extract.end(undefined);
  await consuming;
  return { entries, ...(error !== undefined ? { error } : {}) };
}

async function viaReader(chunks: Buffer[], xattrs?: Map<string, Map<string, Buffer>>): Promise<Outcome> {
  const entries: Seen[] = [];
  const reader = new TarReader({
    entry(h, x) {
      const parts: Buffer[] = [];
      xattrs?.set(h.name, x);
      return {
        write(piece) {
          parts.push(Buffer.from(piece));
        },
        end() {
          entries.push(seen(h, parts));
        },
      };
    },
  });
  try {
    for (const c of chunks) await reader.push(c);
    reader.end();
    return { entries };
  } catch (err) {
    return { entries, error: (err as Error).message };
  }
}

const hasTar = spawnSync("tar", ["--version"]).stdout?.toString().includes("GNU tar") ?? false;
const CHUNKS = [1, 100, 511, 512, 513, 4097, 1 << 20];

async function agree(name: string, archive: Buffer): Promise<Outcome> {
  let first: Outcome | undefined;
  for (const size of CHUNKS) {
    // One byte at a time is slow through tar-stream; small archives are enough to cover it.
    if (size === 1 && archive.length > 64 * 1024) continue;
    const chunks = chunked(archive, size);
    const [want, got] = [await viaTarStream(chunks), await viaReader(chunks)];
    assert.deepEqual(got, want, `${name} in chunks of ${size}`);
    first ??= got;
  }
  return first!;
}

describe("TarReader reads archives as tar-stream does", { skip: !hasTar && "GNU tar is missing" }, () => {
  let tmp: string;
  let src: string;
  const long = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(60)}`;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "berth-tar-reader-"));
    src = join(tmp, "src");
    await mkdir(join(src, "dir", "sub"), { recursive: true });
    for (const [i, size] of [0, 1, 511, 512, 513, 10_000, 70_000].entries()) await writeFile(join(src, "dir", `f${i}`), Buffer.alloc(size, i + 1));
    await writeFile(join(src, "café ünïcode"), "utf-8 name");
    await symlink("dir/f1", join(src, "rel-link"));
    await symlink(`/${"t".repeat(120)}`, join(src, "long-target"));
    await link(join(src, "dir", "f2"), join(src, "hard"));
    mknod(join(src, "fifo"), S_IFIFO | 0o644);
    await mkdir(join(src, long), { recursive: true });
    await writeFile(join(src, long, "deep"), "deep");
    await writeFile(join(src, "n".repeat(120)), "one long component");
    await writeFile(join(src, "big-ids"), "ids");
    await lchown(join(src, "big-ids"), 3_000_000, 3_000_001);
    await writeFile(join(src, "late"), "after 2255");
    await utimes(join(src, "late"), 9_000_000_000, 9_000_000_000);
    lsetxattr(join(src, "dir", "f1"), "user.text", Buffer.from("plain"));
    lsetxattr(join(src, "dir", "f2"), "user.binary", Buffer.from([0x80, 0xff, 0x00, 0xc3]));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  function gnuTar(...args: string[]): Buffer {
    // ustar and v7 cannot hold every file: tar warns, leaves those out and exits non-zero.
    const r = spawnSync("tar", ["--sort=name", "-cf", "-", ...args, "-C", src, "."], { maxBuffer: 64 * 1024 * 1024 });
    assert.ok(r.stdout.length > 0, r.stderr.toString());
    return r.stdout;
  }

  for (const format of ["gnu", "oldgnu", "posix", "ustar"]) {
    test(`GNU tar --format=${format}`, async () => {
      const got = await agree(format, gnuTar(`--format=${format}`));
      assert.equal(got.error, undefined);
      assert.ok(got.entries.length >= 10, `${got.entries.length} entries`);
    });
  }

  test("v7 headers are refused by both", async () => {
    const got = await agree("v7", gnuTar("--format=v7"));
    assert.match(got.error ?? "", /unknown format/);
  });

  test("PAX: global and per-entry headers, xattrs kept as bytes", async () => {
    const archive = gnuTar("--format=posix", "--xattrs", "--xattrs-include=user.*", "--pax-option=comment=global,comment:=local");
    const got = await agree("pax", archive);
    assert.equal(got.error, undefined);
    assert.ok(got.entries.some((e) => e.pax?.comment === "local"));
    const xattrs = new Map<string, Map<string, Buffer>>();
    await viaReader(chunked(archive, 700), xattrs);
    assert.deepEqual(xattrs.get("./dir/f2")?.get("user.binary"), Buffer.from([0x80, 0xff, 0x00, 0xc3]));
    assert.deepEqual(xattrs.get("./dir/f1")?.get("user.text"), Buffer.from("plain"));
  });

  test("archives tar-stream packs", async () => {
    const pack = tar.pack();
    const parts: Buffer[] = [];
    const collected = (async () => {
      for await (const c of pack) parts.push(c as Buffer);
    })();
    pack.entry({ name: `${"p".repeat(200)}/file`, mtime: new Date(1_600_000_000_000), pax: { "SCHILY.xattr.user.x": "y" } }, "pax path");
    pack.entry({ name: "dir/", type: "directory", mode: 0o755 });
    pack.entry({ name: "dev", type: "character-device", devmajor: 1, devminor: 3 });
    pack.entry({ name: "link", type: "symlink", linkname: "l".repeat(150) });
    pack.finalize();
    await collected;
    const got = await agree("tar-stream", Buffer.concat(parts));
    assert.equal(got.entries.length, 4);
  });

  test("broken archives fail the same way", async () => {
    const good = gnuTar("--format=posix", "--pax-option=comment:=x");
    // Cut inside a header, inside data, inside padding, inside a PAX block, and at the end-of-archive blocks.
    for (const cut of [100, 512 + 3, 1536 + 10, 2048 - 1, good.length - 1024, good.length - 7]) {
      await agree(`cut at ${cut}`, good.subarray(0, cut));
    }
    const badSum = Buffer.from(good);
    badSum[1024 + 5] = badSum[1024 + 5]! ^ 0xff;
    await agree("bad checksum", badSum);
    assert.match((await viaReader([gzipSync(good)])).error ?? "", /Invalid tar header/);
    await agree("not a tar", Buffer.alloc(2048, 7));
    await agree("empty", Buffer.alloc(0));
    await agree("zero blocks only", Buffer.alloc(10_240));
    // Empty blocks between entries are passed over.
    await agree("zeros inside", Buffer.concat([good.subarray(0, 3072), Buffer.alloc(1024), good.subarray(3072)]));
  });

  test("numbers past the octal fields' range decode (GNU base-256)", async () => {
    const got = await agree("gnu ids", gnuTar("--format=gnu"));
    const big = got.entries.find((e) => e.name.endsWith("big-ids"));
    assert.deepEqual([big?.uid, big?.gid], [3_000_000, 3_000_001]);
    assert.equal(got.entries.find((e) => e.name.endsWith("late"))?.mtime, 9_000_000_000_000, "an mtime past 8^11 s");
  });
});
