// A push-driven tar reader: bytes go in as they arrive, entries and their data come out through
// calls on an EntryHandler, synchronously unless the handler returns a promise. It replaces
// tar-stream's extractor here: that one hands out a stream per entry, and its stream and
// promise machinery cost ~35 µs an entry here, more than writing a small file does (~25 µs
// with synchronous calls). Pieces of data are subarrays of the chunks pushed in, never copies.
//
// Headers decode as tar-stream decodes them (the unpacker behaved that way before, and
// test/unit/tar-reader.test.ts holds the two side by side): ustar and GNU magic only (v7 headers
// are refused), the ustar prefix joined to the name, the checksum checked, a block whose bytes
// outside the checksum are all zero skipped, base-256 numbers, a regular file named with a
// trailing "/" taken as a directory, a directory's size ignored (its next header follows). GNU long
// names (L, N) and link names (K) apply to the next entry. PAX header fields: an `x` block
// applies to the next entry only, a later one replacing it, merged over the `g` block in force
// when it was read; a `g` block alone changes no field. Extended attributes are gathered from
// every `g` block so far and every `x` block since the last entry, values kept as bytes. A
// stream that stops inside a header, data or padding is an error; between entries it is not.
import { paxText, parsePaxRecords, xattrsOf } from "./raw-pax";

/** A tar entry's header (tar-stream's shape: the writer was written against it). */
export interface TarHeader {
  name: string;
  type: string | null;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data (a PAX size record overrides the header's). */
  size: number;
  mtime: Date;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  /** The PAX records of the entry's own extended header (and the global one), as text. */
  pax: Record<string, string> | null;
}

/** Where an entry's data goes. Either call may return a promise, and the reader then waits for it. */
export interface EntryData {
  write(piece: Buffer): void | Promise<void>;
  end(): void | Promise<void>;
}

export interface EntryHandler {
  /** A new entry; returns where its data goes, or undefined to pass over the data. */
  entry(h: TarHeader, xattrs: Map<string, Buffer>): EntryData | undefined | Promise<EntryData | undefined>;
}

/** The bytes are not a tar archive (or not all of one). */
export class TarFormatError extends Error {}

/** tar-stream's limit on GNU long names and PAX blocks: they are held in memory whole. */
const MAX_HEADER_SIZE = 4 * 1024 * 1024;

const TYPES: Record<number, string> = {
  0: "file",
  1: "link",
  2: "symlink",
  3: "character-device",
  4: "block-device",
  5: "directory",
  6: "fifo",
  7: "contiguous-file",
};

/** Type flags of the headers that describe the next entry rather than being one. */
const PAX_LOCAL = 0x78; // x
const PAX_GLOBAL = 0x67; // g
const GNU_LONG_LINK = 0x4b; // K
const GNU_LONG_NAME = 0x4c; // L
const GNU_LONG_NAME_OLD = 0x4e; // N

function pad512(n: number): number {
  return (512 - (n % 512)) % 512;
}

/** Text up to the first NUL within [off, off+len). */
function str(h: Buffer, off: number, len: number): string {
  let end = h.indexOf(0, off);
  if (end < 0 || end > off + len) end = off + len;
  return h.toString("utf8", off, end);
}

/** An octal field (leading spaces and NULs allowed, ended by a space or NUL), or base-256 when the top bit is set. */
function num(h: Buffer, off: number, len: number): number {
  const first = h[off]!;
  if (first & 0x80) {
    // GNU base-256: 0x80 positive, 0xff two's complement negative.
    if (first !== 0x80 && first !== 0xff) return Number.NaN;
    const positive = first === 0x80;
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + (positive ? h[i]! : 0xff - h[i]!);
    return positive ? v : -v;
  }
  let i = off;
  const end = off + len;
  while (i < end && h[i] === 0x20) i++;
  let stop = h.indexOf(0x20, i);
  if (stop < 0 || stop > end) stop = end;
  while (i < stop && h[i] === 0) i++;
  if (i === stop) return 0;
  return Number.parseInt(h.toString("latin1", i, stop), 8);
}

function checksum(h: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += h[i]!;
  for (let i = 156; i < 512; i++) sum += h[i]!;
  return sum;
}

function isUstar(h: Buffer): boolean {
  return h[257] === 0x75 && h[258] === 0x73 && h[259] === 0x74 && h[260] === 0x61 && h[261] === 0x72 && h[262] === 0;
}

function isGnu(h: Buffer): boolean {
  return h[257] === 0x75 && h[258] === 0x73 && h[259] === 0x74 && h[260] === 0x61 && h[261] === 0x72 && h[262] === 0x20 && h[263] === 0x20 && h[264] === 0;
}

interface Decoded {
  /** The type flag byte as it is: metadata headers are told apart by it. */
  flag: number;
  header: TarHeader;
}

/** One 512-byte header, or undefined for an empty block. */
function decodeHeader(h: Buffer): Decoded | undefined {
  const sum = checksum(h);
  if (sum === 8 * 0x20) return undefined;
  if (sum !== num(h, 148, 8)) throw new TarFormatError("Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?");
  let name = str(h, 0, 100);
  if (isUstar(h)) {
    if (h[345] !== 0) name = `${str(h, 345, 155)}/${name}`;
  } else if (!isGnu(h)) {
    throw new TarFormatError("Invalid tar header: unknown format.");
  }
  let type = h[156] === 0 ? 0 : h[156]! - 0x30;
  // Old tars mark directories with a trailing slash only.
  if (type === 0 && name.endsWith("/")) type = 5;
  return {
    flag: h[156]!,
    header: {
      name,
      type: TYPES[type] ?? null,
      mode: num(h, 100, 8),
      uid: num(h, 108, 8),
      gid: num(h, 116, 8),
      size: num(h, 124, 12),
      mtime: new Date(1000 * num(h, 136, 12)),
      linkname: h[157] === 0 ? null : str(h, 157, 100),
      devmajor: num(h, 329, 8),
      devminor: num(h, 337, 8),
      pax: null,
    },
  };
}

const NO_RECORDS = new Map<string, Buffer>();

export class TarReader {
  /** What the next bytes are. */
  private state: "header" | "data" | "skip" | "meta" = "header";
  /** Bytes left of the current data, padding or metadata block. */
  private missing = 0;
  private readonly headerBuf = Buffer.alloc(512);
  private headerFill = 0;
  private data: EntryData | undefined;
  /** Padding after the current entry's data, skipped once the data is written. */
  private dataPad = 0;
  /** A GNU long name or PAX block being collected. */
  private meta: { flag: number; parts: Buffer[]; size: number } | undefined;
  private gnuLongName: string | undefined;
  private gnuLongLink: string | undefined;
  /** The last `x` block's records as text (with the global ones then in force), for the header fields. */
  private paxLocal: Record<string, string> | undefined;
  /** The records of every `x` block since the last entry, for xattrs. */
  private paxLocalAll = NO_RECORDS;
  private paxGlobal: Map<string, Buffer> | undefined;
  private paxGlobalAll = NO_RECORDS;
  /** Name of the entry being written, for error messages. */
  current: string | undefined;

  constructor(private readonly handler: EntryHandler) {}

  /** Takes the next bytes of the archive. Resolves (when it returns a promise) once they are handled. */
  async push(chunk: Buffer): Promise<void> {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      switch (this.state) {
        case "header": {
          let h: Buffer;
          if (this.headerFill === 0 && len - off >= 512) {
            h = chunk.subarray(off, off + 512);
            off += 512;
          } else {
            const n = Math.min(512 - this.headerFill, len - off);
            chunk.copy(this.headerBuf, this.headerFill, off, off + n);
            this.headerFill += n;
            off += n;
            if (this.headerFill < 512) break;
            this.headerFill = 0;
            h = this.headerBuf;
          }
          const started = this.onHeader(h);
          if (started) await started;
          break;
        }
        case "data": {
          const n = Math.min(this.missing, len - off);
          this.missing -= n;
          const piece = chunk.subarray(off, off + n);
          off += n;
          const written = this.data!.write(piece);
          if (written) await written;
          if (this.missing === 0) {
            const ended = this.endData();
            if (ended) await ended;
          }
          break;
        }
        case "skip": {
          const n = Math.min(this.missing, len - off);
          this.missing -= n;
          off += n;
          if (this.missing === 0) this.state = "header";
          break;
        }
        case "meta": {
          const m = this.meta!;
          const n = Math.min(this.missing, len - off);
          m.parts.push(chunk.subarray(off, off + n));
          this.missing -= n;
          off += n;
          if (this.missing === 0) this.onMeta(m);
          break;
        }
      }
    }
  }

  /** The archive ended: throws if it stopped inside a header, data or padding. */
  end(): void {
    if (this.state !== "header" || this.headerFill > 0) throw new TarFormatError("Unexpected end of data");
  }

  private skip(n: number): void {
    this.missing = n;
    this.state = n > 0 ? "skip" : "header";
  }

  private onHeader(block: Buffer): Promise<void> | undefined {
    const d = decodeHeader(block);
    if (!d) return undefined;
    const { flag, header } = d;
    if (flag === PAX_LOCAL || flag === PAX_GLOBAL || flag === GNU_LONG_NAME || flag === GNU_LONG_NAME_OLD || flag === GNU_LONG_LINK) {
      if (!(header.size >= 0)) throw new TarFormatError("Invalid header");
      if (header.size > MAX_HEADER_SIZE) throw new TarFormatError("Header exceeds max size");
      this.meta = { flag, parts: [], size: header.size };
      this.missing = header.size;
      this.state = "meta";
      if (header.size === 0) this.onMeta(this.meta);
      return undefined;
    }
    if (this.gnuLongName !== undefined) header.name = this.gnuLongName;
    if (this.gnuLongLink !== undefined) header.linkname = this.gnuLongLink;
    const pax = this.paxLocal;
    if (pax) {
      if (pax.path) header.name = pax.path;
      if (pax.linkpath) header.linkname = pax.linkpath;
      if (pax.size) header.size = Number.parseInt(pax.size, 10);
      header.pax = pax;
    }
    const xattrs = xattrsOf(this.paxGlobalAll, this.paxLocalAll);
    this.gnuLongName = this.gnuLongLink = this.paxLocal = undefined;
    this.paxLocalAll = NO_RECORDS;
    if (!(header.size >= 0)) throw new TarFormatError("Invalid header");
    // A directory's data is never read as data: the next header follows its own.
    const size = header.type === "directory" ? 0 : header.size;
    this.current = header.name;
    const sink = this.handler.entry(header, xattrs);
    if (sink instanceof Promise) return sink.then((s) => this.startData(s, size));
    return this.startData(sink, size);
  }

  private startData(sink: EntryData | undefined, size: number): Promise<void> | undefined {
    if (!sink) {
      this.skip(size + pad512(size));
      return undefined;
    }
    this.data = sink;
    this.missing = size;
    this.state = "data";
    this.dataPad = pad512(size);
    if (size === 0) return this.endData();
    return undefined;
  }

  private endData(): Promise<void> | undefined {
    const sink = this.data!;
    this.data = undefined;
    this.skip(this.dataPad);
    const ended = sink.end();
    return ended instanceof Promise ? ended : undefined;
  }

  private onMeta(m: { flag: number; parts: Buffer[]; size: number }): void {
    const buf = m.parts.length === 1 ? m.parts[0]! : Buffer.concat(m.parts);
    this.meta = undefined;
    this.skip(pad512(m.size));
    switch (m.flag) {
      case GNU_LONG_NAME:
      case GNU_LONG_NAME_OLD:
        this.gnuLongName = str(buf, 0, buf.length);
        break;
      case GNU_LONG_LINK:
        this.gnuLongLink = str(buf, 0, buf.length);
        break;
      case PAX_LOCAL: {
        const local = new Map<string, Buffer>();
        parsePaxRecords(buf, local);
        this.paxLocal = paxText(this.paxGlobal ? new Map([...this.paxGlobal, ...local]) : local);
        if (this.paxLocalAll === NO_RECORDS) this.paxLocalAll = new Map();
        parsePaxRecords(buf, this.paxLocalAll);
        break;
      }
      case PAX_GLOBAL: {
        this.paxGlobal = new Map();
        parsePaxRecords(buf, this.paxGlobal);
        if (this.paxGlobalAll === NO_RECORDS) this.paxGlobalAll = new Map();
        parsePaxRecords(buf, this.paxGlobalAll);
        break;
      }
    }
  }
}
