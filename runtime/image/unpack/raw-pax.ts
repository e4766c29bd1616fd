// PAX extended header records, read as bytes. Values are mostly text (path, mtime), but xattrs
// are binary (security.capability), and decoding them as UTF-8 would mangle them; so records
// stay bytes, and only the keys the tar header fields take are decoded.

const EMPTY = new Map<string, Buffer>();

/** Adds the records of one PAX header block to `into`. A malformed record ends the list. */
export function parsePaxRecords(buf: Buffer, into: Map<string, Buffer>): void {
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

/** Records as text, for the header fields they override (path, linkpath, size, mtime, uid, …). */
export function paxText(records: Map<string, Buffer>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of records) out[k] = v.toString("utf8");
  return out;
}

/** The extended attributes that SCHILY.xattr.* (GNU tar, Go) and LIBARCHIVE.xattr.* records carry. */
export function xattrsOf(global: Map<string, Buffer>, local: Map<string, Buffer>): Map<string, Buffer> {
  if (global.size === 0 && local.size === 0) return EMPTY;
  const xattrs = new Map<string, Buffer>();
  for (const records of [global, local]) {
    for (const [k, v] of records) {
      if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice("SCHILY.xattr.".length), v);
      else if (k.startsWith("LIBARCHIVE.xattr.")) xattrs.set(decodeURIComponent(k.slice("LIBARCHIVE.xattr.".length)), Buffer.from(v.toString("latin1"), "base64"));
    }
  }
  return xattrs.size > 0 ? xattrs : EMPTY;
}
