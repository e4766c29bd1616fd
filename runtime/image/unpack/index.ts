// Applies one image layer (a tar, maybe compressed) to the empty upper directory of a new
// snapshot. The sha256 of the uncompressed tar (the DiffID) is computed while it streams.
//   decompress.ts  media type → decompressor (or the first bytes, for Docker's types)
//   raw-pax.ts     PAX records as bytes (binary xattrs)
//   safe-path.ts   where an entry may write: lexical cleaning, no symlink parents here or below
//   writer.ts      the entries themselves: files, directories, links, devices, whiteouts, xattrs
// A layer never writes outside `dir`.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import tar from "tar-stream";
import { BerthError, DataLossError } from "../../errors";
import { decompressed } from "./decompress";
import { RawPax } from "./raw-pax";
import { type EntryHeader, LayerWriter } from "./writer";

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

/** The tar parser stopped, for a reason reported through its "error" event. */
class ParserStopped extends Error {}

/** Writes `chunk` into the tar parser, waiting while it is full. */
function feed(extract: tar.Extract, chunk: Buffer): Promise<void> | undefined {
  if (extract.destroyed) return Promise.reject(new ParserStopped());
  if (extract.write(chunk)) return undefined;
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      extract.off("drain", onDrain);
      extract.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new ParserStopped());
    extract.on("drain", onDrain);
    extract.on("close", onClose);
  });
}

export async function applyLayer(opts: ApplyLayerOptions): Promise<AppliedLayer> {
  const { mediaType } = opts;
  const { kind, plain } = await decompressed(opts.stream, mediaType);
  const hash = createHash("sha256");
  let bytes = 0;
  const pax = new RawPax();
  const extract = tar.extract();
  const writer = new LayerWriter(opts.dir, opts.lowerDirs);

  // Three places can fail, and a failure in one shows up as a stopped stream in the others;
  // each keeps its first error so the one that started it is reported.
  let readError: unknown;
  let parseError: unknown;
  let writeError: unknown;
  extract.on("error", (err) => {
    parseError ??= err;
  });
  const reading = (async () => {
    try {
      for await (const chunk of plain) {
        const buf = chunk as Buffer;
        hash.update(buf);
        bytes += buf.length;
        pax.push(buf);
        await feed(extract, buf);
      }
      extract.end(undefined);
    } catch (err) {
      if (!(err instanceof ParserStopped)) readError = err;
      extract.destroy(err as Error);
    }
  })();

  try {
    for await (const entry of extract) {
      const h = entry.header as unknown as EntryHeader;
      try {
        await writer.apply(h, entry, pax.take(h.byteOffset));
        // Whatever data an entry had that was not written (a whiteout's, say) is passed over.
        for await (const _ of entry);
      } catch (err) {
        if (isSystemError(err)) (err as Error).message = `layer entry "${h.name}": ${(err as Error).message}`;
        writeError = err;
        throw err;
      }
    }
    await reading;
    if (readError) throw readError;
    await writer.finish();
  } catch (err) {
    plain.destroy();
    opts.stream.destroy();
    extract.destroy();
    await reading;
    // The writer's own refusals and file-system errors (ENOSPC) pass through as they are, and so
    // do the content store's (a missing blob, a read error); anything else is bytes that are not
    // the tar they claim to be.
    if (writeError instanceof BerthError || isSystemError(writeError)) throw writeError;
    const cause = readError ?? parseError ?? err;
    if (cause instanceof BerthError || isSystemError(cause)) throw cause;
    const what = kind === "none" ? "a tar archive" : `a ${kind}-compressed tar archive`;
    throw new DataLossError(`layer data (${mediaType || "no media type"}) is not ${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
  return { diffId: `sha256:${hash.digest("hex")}`, bytes };
}
