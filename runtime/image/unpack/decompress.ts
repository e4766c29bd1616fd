// Layer decompression: the media type says how a layer is compressed, or (for Docker's media
// types and archives without one) its first bytes do.
import { pipeline, Readable, Transform } from "node:stream";
import { createGunzip } from "node:zlib";
import { Decompress } from "fzstd";
import { UnimplementedError } from "../../errors";

export type Compression = "none" | "gzip" | "zstd";

function compressionOf(mediaType: string): Compression | "sniff" {
  // OCI media types say what they are; Docker's "tar.gzip" types (and archives without a media
  // type) are known to carry plain tar or zstd too, so their first bytes decide.
  if (mediaType.startsWith("application/vnd.oci.image.layer.")) {
    if (mediaType.endsWith("+gzip")) return "gzip";
    if (mediaType.endsWith("+zstd")) return "zstd";
    if (mediaType.endsWith(".tar")) return "none";
    throw new UnimplementedError(`layer media type ${mediaType} is not supported: berth unpacks tar, tar+gzip and tar+zstd layers`);
  }
  return "sniff";
}

function sniff(head: Buffer, mediaType: string): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  if (head.subarray(0, 3).toString("latin1") === "BZh" || (head[0] === 0xfd && head.subarray(1, 5).toString("latin1") === "7zXZ")) {
    throw new UnimplementedError(`layer (${mediaType || "no media type"}) is bzip2 or xz compressed; berth unpacks plain, gzip and zstd layers`);
  }
  return "none";
}

/** Reads the first `n` bytes and hands back a stream that still yields every byte. */
async function peek(src: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const parts: Buffer[] = [];
  let have = 0;
  let ended = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const b = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
    parts.push(b);
    have += b.length;
  }
  const head = Buffer.concat(parts);
  async function* all(): AsyncGenerator<Buffer> {
    try {
      if (head.length > 0) yield head;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield typeof r.value === "string" ? Buffer.from(r.value) : r.value;
      }
    } finally {
      await it.return?.();
    }
  }
  return { head: Buffer.concat([head, Buffer.alloc(Math.max(0, 8 - head.length))]), stream: Readable.from(all(), { objectMode: false }) };
}

function zstdDecompressor(): Transform {
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        dec.push(chunk);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb) {
      try {
        dec.push(new Uint8Array(0), true);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  // Each block fzstd hands over is a new array of its own, so it is wrapped, not copied.
  const dec = new Decompress((data) => {
    out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  return out;
}

/** Output chunk of gunzip: its default (16 KiB) means a thread-pool round trip per 16 KiB. */
const GUNZIP_CHUNK = 256 * 1024;

function decompress(kind: Compression, src: Readable): Readable {
  if (kind === "none") return src;
  const dec = kind === "gzip" ? createGunzip({ chunkSize: GUNZIP_CHUNK }) : zstdDecompressor();
  // Errors reach the reader through `dec`, which pipeline destroys with them.
  return pipeline(src, dec, () => {});
}

/**
 * The uncompressed tar of a layer, and how it was compressed. UNIMPLEMENTED for compressions
 * berth does not unpack (bzip2, xz, unknown OCI media types).
 */
export async function decompressed(src: Readable, mediaType: string): Promise<{ kind: Compression; plain: Readable }> {
  const declared = compressionOf(mediaType);
  if (declared !== "sniff") return { kind: declared, plain: decompress(declared, src) };
  const { head, stream: raw } = await peek(src, 6);
  const kind = sniff(head, mediaType);
  return { kind, plain: decompress(kind, raw) };
}
