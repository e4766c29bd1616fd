// Content store on the local file system, laid out as containerd's:
//   <root>/content/blobs/<alg>/<hex>          committed blobs, read-only (0444)
//   <root>/content/ingest/<alg>-<hex>/data     bytes received so far
//   <root>/content/ingest/<alg>-<hex>/ref      what they should add up to ({digest, size})
// A blob only ever appears under its name by a rename after its size and digest were checked
// and its data fsynced, so after a crash every blob matches its name. An ingest survives a
// crash and resumes at the bytes on disk: Node cannot serialise a hash's state, so the bytes
// are read back and hashed again when the ingest is reopened.
//
// Concurrency: one writer per digest. `ingest()` waits while another Ingest of the same digest
// is open in this process; once it gets its turn and the blob was committed meanwhile, it throws
// AlreadyExistsError. Callers check `info()` first and treat ALREADY_EXISTS as done. Only one
// daemon owns a root, so there is no lock between processes.
import { createHash, type Hash } from "node:crypto";
import { constants as C, createReadStream, type Dirent } from "node:fs";
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { AlreadyExistsError, DataLossError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../../errors";
import { KeyedMutex } from "../../sync/keyed-mutex";
import { fsyncDir, writeJsonAtomic } from "../../store/atomic";
import type { ContentInfo, ContentStore, Descriptor, Ingest } from "../types";

type Algorithm = "sha256" | "sha512";
const DIGEST = /^(sha256):([a-f0-9]{64})$|^(sha512):([a-f0-9]{128})$/;

interface ParsedDigest {
  alg: Algorithm;
  hex: string;
  digest: string;
}

/** Digests name files here, so anything but a well-formed sha256/sha512 is refused before use. */
function parseDigest(digest: string): ParsedDigest {
  const m = DIGEST.exec(digest);
  if (!m) throw new InvalidArgumentError(`invalid digest "${digest}": berth stores sha256:<64 hex> and sha512:<128 hex> content`);
  const alg = (m[1] ?? m[3]) as Algorithm;
  return { alg, hex: (m[2] ?? m[4])!, digest };
}

/** Bytes per read of a blob stream. */
const READ_CHUNK = 1024 * 1024;

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === "ENOENT";
}

function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

interface IngestRef {
  digest: string;
  size: number;
  startedAt: number;
}

export class FileContentStore implements ContentStore {
  readonly dir: string;
  private readonly blobsDir: string;
  private readonly ingestDir: string;
  /** Per-digest turn-taking inside this process; a turn spans from `ingest()` to commit/close. */
  private readonly turns = new KeyedMutex();
  private ready: Promise<void> | undefined;

  /** `root` is berth's state directory (e.g. /var/lib/berth); content lives in `<root>/content`. */
  constructor(root: string) {
    this.dir = join(root, "content");
    this.blobsDir = join(this.dir, "blobs");
    this.ingestDir = join(this.dir, "ingest");
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      for (const alg of ["sha256", "sha512"]) await mkdir(join(this.blobsDir, alg), { recursive: true });
      await mkdir(this.ingestDir, { recursive: true });
      await this.removeFinishedIngests();
    })().catch((err) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /**
   * A crash between a commit's rename and its removal of the ingest directory leaves that
   * directory behind while the blob is whole under its name: nothing would ever resume it, so
   * it goes when the store opens.
   */
  private async removeFinishedIngests(): Promise<void> {
    for (const name of await readdir(this.ingestDir).catch(() => [] as string[])) {
      const m = /^(sha256|sha512)-([0-9a-f]+)$/.exec(name);
      if (!m) continue;
      if (await this.info(`${m[1]}:${m[2]}`).catch(() => undefined)) await rm(join(this.ingestDir, name), { recursive: true, force: true });
    }
  }

  blobPath(digest: string): string {
    const d = parseDigest(digest);
    return join(this.blobsDir, d.alg, d.hex);
  }

  async info(digest: string): Promise<ContentInfo | undefined> {
    const path = this.blobPath(digest);
    try {
      const st = await stat(path);
      return { digest, size: st.size, createdAt: Math.floor(st.mtimeMs) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(`blob ${digest} is not in the content store`, { cause: err });
      throw err;
    }
  }

  readStream(digest: string): Readable {
    const path = this.blobPath(digest);
    // Opened inside the stream so a missing blob surfaces as NotFoundError from the stream itself.
    async function* chunks(): AsyncGenerator<Buffer> {
      let fh: FileHandle;
      try {
        fh = await open(path, C.O_RDONLY);
      } catch (err) {
        if (isNotFound(err)) throw new NotFoundError(`blob ${digest} is not in the content store`, { cause: err });
        throw err;
      }
      try {
        // Large reads: every chunk costs a thread-pool round trip here and in a decompressor
        // downstream; 1 MiB instead of 256 KiB made unpacking bench/unpack.ts's layer ~15%
        // faster (on tmpfs, where file-system costs do not hide it).
        for await (const chunk of createReadStream("", { fd: fh, autoClose: false, highWaterMark: READ_CHUNK })) yield chunk as Buffer;
      } finally {
        await fh.close();
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async ingest(expected: Pick<Descriptor, "digest" | "size">): Promise<Ingest> {
    const d = parseDigest(expected.digest);
    if (!Number.isSafeInteger(expected.size) || expected.size < 0) {
      throw new InvalidArgumentError(`blob ${expected.digest}: size ${expected.size} is not a byte count`);
    }
    await this.init();
    const ref = `${d.alg}-${d.hex}`;
    const release = await this.turns.acquire(ref);
    try {
      if (await this.info(d.digest)) {
        throw new AlreadyExistsError(`blob ${d.digest} is already in the content store; read it instead of downloading it again`);
      }
      return await FileIngest.open(this, ref, join(this.ingestDir, ref), d, expected.size, release);
    } catch (err) {
      release();
      throw err;
    }
  }

  async put(data: Uint8Array, expectedDigest?: string): Promise<ContentInfo> {
    const alg: Algorithm = expectedDigest ? parseDigest(expectedDigest).alg : "sha256";
    const actual = `${alg}:${createHash(alg).update(data).digest("hex")}`;
    if (expectedDigest && expectedDigest !== actual) {
      throw new DataLossError(`content does not match its digest: expected ${expectedDigest}, got ${actual} (${data.byteLength} bytes)`);
    }
    const existing = await this.info(actual);
    if (existing) return existing;
    let ing: Ingest;
    try {
      ing = await this.ingest({ digest: actual, size: data.byteLength });
    } catch (err) {
      if (err instanceof AlreadyExistsError) return (await this.info(actual))!;
      throw err;
    }
    try {
      if (ing.offset > 0) await ing.truncate();
      await ing.write(data);
      return await ing.commit();
    } finally {
      await ing.close();
    }
  }

  async delete(digest: string): Promise<void> {
    const path = this.blobPath(digest);
    try {
      await unlink(path);
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(`blob ${digest} is not in the content store`, { cause: err });
      throw err;
    }
    await fsyncDir(join(this.blobsDir, parseDigest(digest).alg));
  }

  async list(): Promise<ContentInfo[]> {
    await this.init();
    const out: ContentInfo[] = [];
    for (const alg of ["sha256", "sha512"] as const) {
      for (const name of await readdir(join(this.blobsDir, alg))) {
        const digest = `${alg}:${name}`;
        if (!DIGEST.test(digest)) continue;
        const info = await this.info(digest);
        if (info) out.push(info);
      }
    }
    return out;
  }

  async usage(): Promise<{ bytes: number; inodes: number }> {
    await this.init();
    const total = { bytes: 0, inodes: 0 };
    const walk = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        // An ingest committed or removed while we walk.
        if (isNotFound(err)) return;
        throw err;
      }
      for (const e of entries) {
        const path = join(dir, e.name);
        total.inodes++;
        if (e.isDirectory()) await walk(path);
        else if (e.isFile()) total.bytes += await stat(path).then((s) => s.size, () => 0);
      }
    };
    await walk(this.blobsDir);
    await walk(this.ingestDir);
    return total;
  }

  /** Moves a verified ingest's data under its digest's name. For FileIngest.commit only. */
  async promote(d: ParsedDigest, dataPath: string): Promise<void> {
    const dir = join(this.blobsDir, d.alg);
    await rename(dataPath, join(dir, d.hex));
    await fsyncDir(dir);
  }

  /** For FileIngest only. */
  async removeIngest(path: string): Promise<void> {
    await rm(path, { recursive: true, force: true });
    await fsyncDir(this.ingestDir).catch(() => {});
  }
}

class FileIngest implements Ingest {
  private hash: Hash;
  private written: number;
  private ended = false;

  private constructor(
    private readonly store: FileContentStore,
    readonly ref: string,
    private readonly dir: string,
    private readonly expected: ParsedDigest,
    private readonly size: number,
    private readonly fh: FileHandle,
    private readonly release: () => void,
    hash: Hash,
    written: number,
  ) {
    this.hash = hash;
    this.written = written;
  }

  static async open(store: FileContentStore, ref: string, dir: string, d: ParsedDigest, size: number, release: () => void): Promise<FileIngest> {
    await mkdir(dir, { recursive: true });
    const refPath = join(dir, "ref");
    const dataPath = join(dir, "data");
    let known: IngestRef | undefined;
    try {
      known = JSON.parse(await readFile(refPath, "utf8")) as IngestRef;
    } catch (err) {
      if (!isNotFound(err) && !(err instanceof SyntaxError)) throw err;
    }
    // Bytes are only worth resuming if they were meant for the same digest and size.
    const resumable = known?.digest === d.digest && known.size === size;
    if (!resumable) {
      await rm(dataPath, { force: true });
      await writeJsonAtomic(refPath, { digest: d.digest, size, startedAt: Date.now() } satisfies IngestRef);
    }
    const fh = await open(dataPath, C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW, 0o644);
    try {
      const hash = createHash(d.alg);
      let have = (await fh.stat()).size;
      if (have > size) {
        // More than the blob can hold: not a prefix of it. Start over.
        await fh.truncate(0);
        have = 0;
      }
      let pos = 0;
      const buf = Buffer.allocUnsafe(1024 * 1024);
      while (pos < have) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, have - pos), pos);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      if (pos < have) await fh.truncate(pos);
      return new FileIngest(store, ref, dir, d, size, fh, release, hash, pos);
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  get offset(): number {
    return this.written;
  }

  private get dataPath(): string {
    return join(this.dir, "data");
  }

  private assertOpen(): void {
    if (this.ended) throw new FailedPreconditionError(`ingest of blob ${this.expected.digest} was already committed, discarded or closed`);
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.assertOpen();
    if (this.written + chunk.byteLength > this.size) {
      const got = this.written + chunk.byteLength;
      await this.discard();
      throw new DataLossError(`blob ${this.expected.digest}: received at least ${got} bytes, more than the expected ${this.size}; the partial download was discarded`);
    }
    let off = 0;
    try {
      while (off < chunk.byteLength) {
        const { bytesWritten } = await this.fh.write(chunk, off, chunk.byteLength - off, this.written + off);
        off += bytesWritten;
      }
    } catch (err) {
      // A full disk leaves nothing half-written behind; the caller maps ENOSPC to RESOURCE_EXHAUSTED.
      if (isDiskFull(err)) await this.discard();
      else await this.fh.truncate(this.written).catch(() => {});
      throw err;
    }
    this.hash.update(chunk);
    this.written += chunk.byteLength;
  }

  async truncate(): Promise<void> {
    this.assertOpen();
    await this.fh.truncate(0);
    this.hash = createHash(this.expected.alg);
    this.written = 0;
  }

  async commit(): Promise<ContentInfo> {
    this.assertOpen();
    if (this.written !== this.size) {
      await this.close();
      throw new FailedPreconditionError(`blob ${this.expected.digest}: only ${this.written} of ${this.size} bytes were written; the ingest is kept and resumes at byte ${this.written}`);
    }
    const actual = `${this.expected.alg}:${this.hash.digest("hex")}`;
    if (actual !== this.expected.digest) {
      await this.discard();
      throw new DataLossError(`blob ${this.expected.digest} does not match its digest: expected ${this.expected.digest}, got ${actual} (${this.size} bytes); the download was discarded`);
    }
    try {
      await this.fh.chmod(0o444);
      // The mtime records when the blob was committed (ContentInfo.createdAt).
      const now = new Date();
      await this.fh.utimes(now, now);
      await this.fh.sync();
      await this.fh.close();
      this.ended = true;
      await this.store.promote(this.expected, this.dataPath);
      await this.store.removeIngest(this.dir);
    } catch (err) {
      if (isDiskFull(err)) await this.discard();
      else await this.close();
      throw err;
    } finally {
      this.release();
    }
    const info = await this.store.info(this.expected.digest);
    if (!info) throw new NotFoundError(`blob ${this.expected.digest} vanished right after it was committed`);
    return info;
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      await this.fh.close();
    } finally {
      this.release();
    }
  }

  private async discard(): Promise<void> {
    await this.close().catch(() => {});
    await this.store.removeIngest(this.dir);
  }
}
