// tar-stream decodes PAX values as UTF-8, which mangles binary xattrs (security.capability), so
// PAX records are also read raw from the byte stream, keyed by where each entry's data starts.

function pad512(n: number): number {
  return (512 - (n % 512)) % 512;
}

function tarNumber(h: Buffer, off: number, len: number): number {
  if (h[off]! & 0x80) {
    // base-256, as GNU tar writes sizes past 8 GiB
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + h[i]!;
    return v;
  }
  const s = h.toString("latin1", off, off + len).replace(/^[\0 ]+/, "").split(/[\0 ]/)[0];
  return s ? Number.parseInt(s, 8) : 0;
}

function parsePaxRecords(buf: Buffer, into: Map<string, Buffer>): void {
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) return;
    const len = Number.parseInt(buf.toString("latin1", i, sp), 10);
    if (!(len > 0) || i + len > buf.length) return;
    const rec = buf.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq > 0) into.set(rec.subarray(0, eq).toString("utf8"), Buffer.from(rec.subarray(eq + 1)));
    i += len;
  }
}

/**
 * Follows the tar framing alongside tar-stream to keep each entry's PAX records as bytes. The
 * framing rules mirror tar-stream's (what counts as data, pax size overrides), so both agree on
 * where every entry's data starts.
 */
export class RawPax {
  private pos = 0;
  private readonly header = Buffer.alloc(512);
  private headerFill = 0;
  private skip = 0;
  private collect: { global: boolean; size: number; parts: Buffer[]; got: number } | undefined;
  private pending = new Map<string, Buffer>();
  private global = new Map<string, Buffer>();
  private readonly byDataOffset = new Map<number, Map<string, Buffer>>();

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const left = chunk.length - off;
      if (this.skip > 0) {
        const n = Math.min(this.skip, left);
        this.skip -= n;
        off += n;
        this.pos += n;
      } else if (this.collect) {
        const c = this.collect;
        const n = Math.min(c.size - c.got, left);
        c.parts.push(chunk.subarray(off, off + n));
        c.got += n;
        off += n;
        this.pos += n;
        if (c.got === c.size) {
          parsePaxRecords(Buffer.concat(c.parts), c.global ? this.global : this.pending);
          this.collect = undefined;
          this.skip = pad512(c.size);
        }
      } else {
        const n = Math.min(512 - this.headerFill, left);
        chunk.copy(this.header, this.headerFill, off, off + n);
        this.headerFill += n;
        off += n;
        this.pos += n;
        if (this.headerFill === 512) {
          this.headerFill = 0;
          this.onHeader(this.header);
        }
      }
    }
  }

  private onHeader(h: Buffer): void {
    if (h.every((b) => b === 0)) return;
    const flag = String.fromCharCode(h[156]!);
    const size = tarNumber(h, 124, 12);
    if (flag === "x" || flag === "g") {
      this.collect = { global: flag === "g", size, parts: [], got: 0 };
      if (size === 0) this.collect = undefined;
      return;
    }
    if (flag === "L" || flag === "K" || flag === "N") {
      this.skip = size + pad512(size);
      return;
    }
    const records = new Map([...this.global, ...this.pending]);
    this.pending = new Map();
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of records) {
      if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice("SCHILY.xattr.".length), v);
      else if (k.startsWith("LIBARCHIVE.xattr.")) xattrs.set(decodeURIComponent(k.slice("LIBARCHIVE.xattr.".length)), Buffer.from(v.toString("latin1"), "base64"));
    }
    if (xattrs.size > 0) this.byDataOffset.set(this.pos, xattrs);
    const nul = h.subarray(0, 100).indexOf(0);
    const nameEnd = nul < 0 ? 100 : nul;
    const nameEndsInSlash = nameEnd > 0 && h[nameEnd - 1] === 0x2f;
    const isDir = flag === "5" || ((flag === "\0" || flag === "0") && nameEndsInSlash);
    const paxSize = records.get("size");
    const dataSize = isDir ? 0 : paxSize ? Number.parseInt(paxSize.toString("latin1"), 10) : size;
    this.skip = dataSize + pad512(dataSize);
  }

  /** The xattrs of the entry whose data starts at `offset` (tar-stream's header.byteOffset). */
  take(offset: number | undefined): Map<string, Buffer> {
    if (offset === undefined) return new Map();
    const x = this.byDataOffset.get(offset) ?? new Map<string, Buffer>();
    this.byDataOffset.delete(offset);
    return x;
  }
}
