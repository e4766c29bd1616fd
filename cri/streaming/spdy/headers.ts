// SPDY/3 header blocks: name/value pairs with 32-bit lengths, compressed by zlib primed with the
// SPDY/3 dictionary. A SPDY connection has ONE zlib stream per direction: every block is
// compressed in the context of all the blocks before it and closed with a sync flush, so the
// peer can decode it at once yet needs every earlier block to do so. That is why this module
// keeps a stateful deflater and inflater per session (zlib.deflateSync would start a new
// zlib stream each time, which a Go peer cannot read past its first block).
import { createHash } from "node:crypto";
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from "node:zlib";

/** Headers as a caller gives them: a list value is sent as one NUL-joined value. */
export type HeaderInput = Record<string, string | readonly string[]>;
/** Headers as decoded: lower-case names, several values kept joined by NUL. */
export type HeaderMap = Record<string, string>;

// The SPDY/3 dictionary (spec section 2.6.10.1): 65 length-prefixed words, then raw text.
const DICTIONARY_WORDS = [
  "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
  "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
  "content-base", "content-encoding", "content-language", "content-length", "content-location",
  "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
  "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
  "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
  "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
  "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
  "public", "set-cookie", "keep-alive", "origin",
];
const DICTIONARY_TAIL =
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505" +
  "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request" +
  "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented" +
  "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 " +
  "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif," +
  "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=" +
  "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/**
 * Length and SHA-256 of the dictionary bytes in Go's spdy package (golang.org/x/net/spdy and
 * moby/spdystream, spdy/dictionary.go), which every Kubernetes client uses. Its zlib DICTID
 * (Adler-32) is 0xe3c6a7c2. A byte off and a Go peer's inflate fails on the first header block.
 */
export const SPDY3_DICTIONARY_LENGTH = 1423;
export const SPDY3_DICTIONARY_SHA256 = "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02";

function buildDictionary(): Buffer {
  const parts: Buffer[] = [];
  for (const w of DICTIONARY_WORDS) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    parts.push(len, Buffer.from(w, "latin1"));
  }
  parts.push(Buffer.from(DICTIONARY_TAIL, "latin1"));
  const dict = Buffer.concat(parts);
  // Checked at load so a mistyped word can never reach the wire.
  const sha = createHash("sha256").update(dict).digest("hex");
  if (dict.length !== SPDY3_DICTIONARY_LENGTH || sha !== SPDY3_DICTIONARY_SHA256) {
    throw new Error(`SPDY/3 dictionary is corrupt (${dict.length} bytes, sha256 ${sha})`);
  }
  return dict;
}

/** The SPDY/3 zlib dictionary. Treat as read-only. */
export const SPDY3_DICTIONARY: Buffer = buildDictionary();

/** A header block or header set that breaks the SPDY/3 rules: a stream error (PROTOCOL_ERROR). */
export class SpdyHeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The zlib stream of a direction failed: its context is lost, so the session is. */
export class SpdyCompressionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

// Plain assignment would turn a header named "__proto__" into a prototype change.
function setHeader(h: HeaderMap, name: string, value: string): void {
  Object.defineProperty(h, name, { value, enumerable: true, writable: true, configurable: true });
}

function checkValue(name: string, v: string): void {
  if (v.startsWith("\0") || v.endsWith("\0") || v.includes("\0\0")) {
    throw new SpdyHeaderError(`header ${JSON.stringify(name)} has an empty value among several`);
  }
}

/**
 * The headers as they go on the wire: names lower-cased (names that then collide are merged,
 * since SPDY forbids duplicate names), list values joined by NUL. Throws SpdyHeaderError for an
 * empty name or an empty entry in a list.
 */
export function normalizeHeaders(input: HeaderInput): HeaderMap {
  const out: HeaderMap = {};
  for (const [rawName, raw] of Object.entries(input)) {
    const name = rawName.toLowerCase();
    if (name.length === 0) throw new SpdyHeaderError("empty header name");
    if (name.includes("\0")) throw new SpdyHeaderError(`header name ${JSON.stringify(name)} holds a NUL`);
    const value = typeof raw === "string" ? raw : raw.join("\0");
    if (typeof raw !== "string" && raw.length === 0) throw new SpdyHeaderError(`header ${JSON.stringify(name)} has no value`);
    checkValue(name, value);
    const prev = Object.hasOwn(out, name) ? out[name] : undefined;
    if (prev === undefined || prev === "") setHeader(out, name, value);
    else if (value !== "") setHeader(out, name, `${prev}\0${value}`);
  }
  return out;
}

/** The uncompressed block: a 32-bit count, then 32-bit length + bytes for each name and value. */
export function encodeHeaderBlock(input: HeaderInput): Buffer {
  const h = normalizeHeaders(input);
  const names = Object.keys(h);
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(names.length);
  parts.push(count);
  for (const name of names) {
    for (const s of [name, h[name]]) {
      const bytes = Buffer.from(s, "utf8");
      const len = Buffer.alloc(4);
      len.writeUInt32BE(bytes.length);
      parts.push(len, bytes);
    }
  }
  return Buffer.concat(parts);
}

/**
 * Parses an uncompressed block. Lenient where a Go peer is sloppy (upper-case names are
 * lower-cased, a repeated name is merged); strict where the bytes cannot be trusted (lengths past
 * the end, empty names, empty values among several, trailing bytes): SpdyHeaderError.
 */
export function decodeHeaderBlock(block: Buffer): HeaderMap {
  if (block.length < 4) throw new SpdyHeaderError(`header block of ${block.length} bytes has no pair count`);
  const count = block.readUInt32BE(0);
  let off = 4;
  const next = (what: string): string => {
    if (off + 4 > block.length) throw new SpdyHeaderError(`header block ends inside a ${what} length`);
    const len = block.readUInt32BE(off);
    off += 4;
    if (len > block.length - off) throw new SpdyHeaderError(`header ${what} of ${len} bytes runs past the block`);
    const s = block.toString("utf8", off, off + len);
    off += len;
    return s;
  };
  const out: HeaderMap = {};
  for (let i = 0; i < count; i++) {
    const name = next("name").toLowerCase();
    if (name.length === 0) throw new SpdyHeaderError("empty header name");
    const value = next("value");
    checkValue(name, value);
    const prev = Object.hasOwn(out, name) ? out[name] : undefined;
    setHeader(out, name, prev === undefined || prev === "" ? value : value === "" ? prev : `${prev}\0${value}`);
  }
  if (off !== block.length) throw new SpdyHeaderError(`${block.length - off} bytes after the last header`);
  return out;
}

interface Job {
  resolve(out: Buffer): void;
  reject(err: Error): void;
}

/**
 * One direction's zlib stream, used a block at a time: each block is written and then flushed
 * with Z_SYNC_FLUSH, and its output is everything zlib produced between the previous flush and
 * this one. Node's zlib runs blocks in write order, so results come back in submission order.
 */
class SyncFlushedZlib {
  private readonly jobs: Job[] = [];
  private out: Buffer[] = [];
  private outBytes = 0;
  private failed: Error | undefined;

  constructor(
    private readonly z: Deflate | Inflate,
    private readonly what: string,
    private readonly maxOutput: number,
  ) {
    z.on("data", (chunk: Buffer) => {
      this.out.push(chunk);
      this.outBytes += chunk.length;
      if (this.outBytes > this.maxOutput) {
        this.fail(new SpdyCompressionError(`${this.what} output exceeds ${this.maxOutput} bytes`));
      }
    });
    // zlib reports a corrupt stream through 'error'; unheard it would crash the process.
    z.on("error", (err: Error) => this.fail(new SpdyCompressionError(`${this.what} failed: ${err.message}`, { cause: err })));
  }

  run(input: Buffer): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<Buffer>((resolve, reject) => {
      this.jobs.push({ resolve, reject });
      if (input.length > 0) this.z.write(input);
      this.z.flush(constants.Z_SYNC_FLUSH, () => this.finish());
    });
  }

  close(): void {
    this.fail(new SpdyCompressionError(`${this.what} closed`));
  }

  private finish(): void {
    if (this.failed) return; // fail() already settled every job
    // Output normally reaches 'data' before the flush callback; anything left buffered on the
    // readable side is pulled now (read() re-emits it as 'data', collected above).
    while (this.z.readableLength > 0 && this.z.read() !== null) {}
    if (this.failed) return;
    const job = this.jobs.shift();
    if (!job) return;
    const result = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    job.resolve(result);
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.out = [];
    this.outBytes = 0;
    for (const job of this.jobs.splice(0)) job.reject(err);
    this.z.destroy();
  }
}

/** The sending direction's compressor. deflate() results resolve in call order. */
export class HeaderDeflater {
  private readonly zs: SyncFlushedZlib;
  constructor() {
    this.zs = new SyncFlushedZlib(createDeflate({ dictionary: SPDY3_DICTIONARY }), "header deflate", Number.MAX_SAFE_INTEGER);
  }
  /** The compressed form of one uncompressed header block, in this direction's context. */
  deflate(block: Buffer): Promise<Buffer> {
    return this.zs.run(block);
  }
  close(): void {
    this.zs.close();
  }
}

/** Default ceiling on one inflated header block: a few bytes of deflate can claim megabytes. */
export const DEFAULT_MAX_HEADER_BLOCK = 1024 * 1024;

/** The receiving direction's decompressor. inflate() results resolve in call order. */
export class HeaderInflater {
  private readonly zs: SyncFlushedZlib;
  constructor(maxBlock: number = DEFAULT_MAX_HEADER_BLOCK) {
    this.zs = new SyncFlushedZlib(createInflate({ dictionary: SPDY3_DICTIONARY }), "header inflate", maxBlock);
  }
  /** The uncompressed block; rejects with SpdyCompressionError when the bytes are not the peer's zlib stream. */
  inflate(compressed: Buffer): Promise<Buffer> {
    return this.zs.run(compressed);
  }
  close(): void {
    this.zs.close();
  }
}
