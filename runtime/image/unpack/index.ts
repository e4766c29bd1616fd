// Applies one image layer (a tar, maybe compressed) to the empty upper directory of a new
// snapshot. The sha256 of the uncompressed tar (the DiffID) is computed while it streams.
//   decompress.ts  media type → decompressor (or the first bytes, for Docker's types)
//   tar-reader.ts  tar headers and framing, entries and their data handed on as they arrive
//   raw-pax.ts     PAX records as bytes (binary xattrs)
//   safe-path.ts   where an entry may write: lexical cleaning, no symlink parents here or below
//   writer.ts      the entries themselves: files, directories, links, devices, whiteouts, xattrs
// A layer never writes outside `dir`.
//
// One loop drives it all: each chunk of the uncompressed tar is hashed, then parsed and written
// before the next is read. Decompression runs ahead of it (gunzip on the thread pool), so the
// loop only waits for input when the writing is faster than the inflating.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { BerthError, DataLossError } from "../../errors";
import { decompressed } from "./decompress";
import { TarReader } from "./tar-reader";
import { LayerWriter } from "./writer";

export interface ApplyLayerOptions {
  stream: Readable;
  mediaType: string;
  /** Empty upper directory of the new active snapshot. */
  dir: string;
  /** Committed layers below, topmost first. */
  lowerDirs: string[];
}

export interface AppliedLayer {
  /** "sha256:<hex>" of the uncompressed tar. */
  diffId: string;
  /** Bytes of the uncompressed tar. */
  bytes: number;
}

function isSystemError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException)?.syscall === "string";
}

export async function applyLayer(opts: ApplyLayerOptions): Promise<AppliedLayer> {
  const { mediaType } = opts;
  const { kind, plain } = await decompressed(opts.stream, mediaType);
  const hash = createHash("sha256");
  let bytes = 0;
  const writer = new LayerWriter(opts.dir, opts.lowerDirs);
  const reader = new TarReader(writer);

  // Reading fails on the input (a read error, bytes that do not inflate), unpacking on the tar
  // (not a tar archive) or on the writer (a refused entry, ENOSPC) while an entry is written.
  let stage: "read" | "unpack" | "finish" = "read";
  try {
    for await (const chunk of plain) {
      const buf = chunk as Buffer;
      hash.update(buf);
      bytes += buf.length;
      stage = "unpack";
      await reader.push(buf);
      stage = "read";
    }
    reader.end();
    stage = "finish";
    writer.finish();
  } catch (err) {
    await writer.abort();
    plain.destroy();
    opts.stream.destroy();
    // The writer's own refusals and file-system errors (ENOSPC) pass through as they are, and so
    // do the content store's (a missing blob, a read error); anything else is bytes that are not
    // the tar they claim to be.
    if (stage === "unpack" && isSystemError(err) && reader.current !== undefined) {
      (err as Error).message = `layer entry "${reader.current}": ${(err as Error).message}`;
    }
    if (err instanceof BerthError || isSystemError(err)) throw err;
    const what = kind === "none" ? "a tar archive" : `a ${kind}-compressed tar archive`;
    throw new DataLossError(`layer data (${mediaType || "no media type"}) is not ${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  return { diffId: `sha256:${hash.digest("hex")}`, bytes };
}
