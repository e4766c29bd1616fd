// The image store: which images berth has and which references point at them. All records live
// in one JSON file rewritten atomically, so a tag moving from one image to another can never be
// half-applied after a crash. Image counts are small (hundreds), writes rare (pull, remove).
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError } from "../errors";
import { writeJsonAtomic } from "../store/atomic";
import { formatReference, parseReference, repositoryName } from "./reference";
import type { ImageRecord } from "./types";

const FILE_VERSION = 1;

export class ImageStore {
  private readonly file: string;
  private images = new Map<string, ImageRecord>();
  /** Serialises writers so concurrent pulls never lose each other's updates. */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly dir: string) {
    this.file = join(dir, "images.json");
  }

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    let raw: string;
    try {
      raw = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    const parsed = JSON.parse(raw) as { version: number; images: ImageRecord[] };
    this.images = new Map(parsed.images.map((img) => [img.id, img]));
  }

  list(): ImageRecord[] {
    return [...this.images.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  byId(id: string): ImageRecord | undefined {
    return this.images.get(id);
  }

  /**
   * Finds an image the way crictl users name one: full or short ID (sha256:… or hex prefix of
   * at least 3 characters, unique), name:tag (normalised: busybox → docker.io/library/busybox:latest),
   * or name@digest (matching the repo digest, or the manifest/index it was pulled by).
   */
  find(reference: string): ImageRecord | undefined {
    const s = reference.trim();
    if (!s) return undefined;
    const hex = s.startsWith("sha256:") ? s.slice(7) : s;
    if (/^[0-9a-f]{64}$/.test(hex)) {
      const exact = this.images.get(`sha256:${hex}`);
      if (exact) return exact;
    }
    if (/^[0-9a-f]{3,63}$/.test(hex)) {
      const hits = [...this.images.keys()].filter((id) => id.slice(7).startsWith(hex));
      if (hits.length === 1) return this.images.get(hits[0]!);
    }
    let ref: ReturnType<typeof parseReference>;
    try {
      ref = parseReference(s);
    } catch {
      return undefined;
    }
    if (ref.digest) {
      const repoDigest = `${repositoryName(ref)}@${ref.digest}`;
      return this.list().find((img) => img.repoDigests.includes(repoDigest) || (img.manifest.digest === ref.digest && img.repoDigests.some((d) => d.startsWith(`${repositoryName(ref)}@`))));
    }
    const tagged = formatReference(ref);
    return this.list().find((img) => img.repoTags.includes(tagged));
  }

  /**
   * Adds or updates an image. Its tags are moved away from any other image (a tag names one
   * image); an image left without tags stays listed by ID, as containerd's CRI shows it.
   */
  async put(image: ImageRecord): Promise<ImageRecord> {
    return this.mutate(() => {
      const existing = this.images.get(image.id);
      const merged: ImageRecord = existing
        ? {
            ...existing,
            repoTags: union(existing.repoTags, image.repoTags),
            repoDigests: union(existing.repoDigests, image.repoDigests),
            pinned: existing.pinned || image.pinned,
          }
        : image;
      for (const other of this.images.values()) {
        if (other.id === image.id) continue;
        const kept = other.repoTags.filter((t) => !merged.repoTags.includes(t));
        if (kept.length !== other.repoTags.length) this.images.set(other.id, { ...other, repoTags: kept });
      }
      this.images.set(image.id, merged);
      return merged;
    });
  }

  /**
   * Removes one reference (a tag or repo digest) or, given an ID, the whole image. Returns the
   * image if it is now gone entirely, so the caller can collect its content.
   */
  async removeReference(image: ImageRecord, reference: string): Promise<ImageRecord | undefined> {
    return this.mutate(() => {
      const current = this.images.get(image.id);
      if (!current) return undefined;
      const byId = reference === current.id || current.id.slice(7).startsWith(reference.replace(/^sha256:/, ""));
      let ref: string | undefined;
      if (!byId) {
        try {
          const parsed = parseReference(reference);
          ref = parsed.digest ? `${repositoryName(parsed)}@${parsed.digest}` : formatReference(parsed);
        } catch (err) {
          throw new InvalidArgumentError(`cannot remove image reference "${reference}": ${(err as Error).message}`);
        }
      }
      const repoTags = byId ? [] : current.repoTags.filter((t) => t !== ref);
      const repoDigests = current.repoDigests.filter((d) => d !== ref);
      // An image without a tag is gone for the user: `crictl rmi name:tag` of its last tag removes it, digests and all.
      if (repoTags.length === 0) {
        this.images.delete(current.id);
        return current;
      }
      this.images.set(current.id, { ...current, repoTags, repoDigests });
      return undefined;
    });
  }

  private async mutate<T>(fn: () => T): Promise<T> {
    const run = this.writing.then(async () => {
      const before = new Map(this.images);
      const result = fn();
      try {
        await writeJsonAtomic(this.file, { version: FILE_VERSION, images: [...this.images.values()] });
      } catch (err) {
        this.images = before;
        throw err;
      }
      return result;
    });
    this.writing = run.then(
      () => {},
      () => {},
    );
    return run;
  }
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}
