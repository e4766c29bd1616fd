// The image service berth's CRI server and reconciler call: pull (deduplicated per reference),
// lookup, list, remove with garbage collection of content and snapshots, and disk usage.
import { NotFoundError } from "../errors";
import type { Logger } from "../log";
import type { Snapshotter } from "../snapshot/types";
import { SingleFlight } from "../sync/singleflight";
import { diskFullError, type PullDeps, newPullFlights, pullImage } from "./pull";
import { formatPlatform } from "./platform";
import { formatReference, parseReference, repositoryName } from "./reference";
import type { ImageStore } from "./store";
import type { ContentStore, ImageRecord, ImageReference, ImageService, Platform, PullOptions, RegistryAuth, RegistryClient } from "./types";

export interface ImageServiceDeps {
  /** Directory whose filesystem holds images (reported by ImageFsInfo). */
  root: string;
  content: ContentStore;
  snapshotter: Snapshotter;
  store: ImageStore;
  clientFor(ref: ImageReference, auth?: RegistryAuth): Promise<RegistryClient>;
  platform: Platform;
  maxConcurrentDownloads?: number;
  blobAttempts?: number;
  log: Logger;
  /** Snapshot keys (chain IDs) that containers are built on; never collected. */
  snapshotsInUse?: () => Set<string>;
  /** Told about every pull the service makes (metrics). */
  observer?: PullObserver;
  /** Archive import and push, wired in by the daemon (they need the same stores). */
  importer?: (path: string, opts?: { name?: string }) => Promise<ImageRecord[]>;
  pusher?: (image: ImageRecord, target: string, opts?: { auth?: RegistryAuth }) => Promise<string>;
}

export interface PullObserver {
  started(): void;
  finished(result: "success" | "error", seconds: number): void;
  /** A layer's bytes came over the network. */
  layerDownloaded(bytes: number): void;
  /** A cut layer download went on from where it stopped (a Range request). */
  layerResumed(): void;
  /** A layer was already in the store and was not downloaded. */
  layerReused(): void;
}

export class LocalImageService implements ImageService {
  private readonly pulls = new SingleFlight<ImageRecord>();
  private readonly pullDeps: PullDeps;
  private activePulls = 0;
  private gcWanted = false;

  constructor(private readonly deps: ImageServiceDeps) {
    this.pullDeps = {
      root: deps.root,
      content: deps.content,
      snapshotter: deps.snapshotter,
      clientFor: deps.clientFor,
      platform: deps.platform,
      maxConcurrentDownloads: deps.maxConcurrentDownloads ?? 3,
      blobAttempts: deps.blobAttempts ?? 5,
      log: deps.log,
      ...newPullFlights(),
    };
  }

  async pull(reference: string, opts: PullOptions = {}): Promise<ImageRecord> {
    const ref = parseReference(reference);
    const key = `${ref.digest ? `${repositoryName(ref)}@${ref.digest}` : formatReference(ref)}|${formatPlatform(opts.platform ?? this.deps.platform)}`;
    // Concurrent pulls of one reference share one download; progress goes to the first caller's listener only.
    return this.pulls.do(key, async () => {
      this.activePulls++;
      const obs = this.deps.observer;
      const t0 = performance.now();
      obs?.started();
      const seen = opts.onProgress;
      const observed: PullOptions = obs
        ? {
            ...opts,
            onProgress: (ev) => {
              if (ev.kind === "layer-exists") obs.layerReused();
              else if (ev.kind === "layer-start" && (ev.resumedFrom ?? 0) > 0) obs.layerResumed();
              else if (ev.kind === "layer-done") obs.layerDownloaded(ev.total ?? 0);
              seen?.(ev);
            },
          }
        : opts;
      let result: "success" | "error" = "error";
      try {
        const record = await pullImage(this.pullDeps, reference, observed);
        result = "success";
        const stored = await this.deps.store.put(record);
        this.deps.log.info("image pulled", { image: reference, id: stored.id });
        return stored;
      } catch (err) {
        // Downloads and unpacking name what filled up; a manifest or the image record may too.
        throw diskFullError(err, `pulling ${reference}`, this.deps.root) ?? err;
      } finally {
        obs?.finished(result, (performance.now() - t0) / 1000);
        this.activePulls--;
        if (this.activePulls === 0 && this.gcWanted) void this.collect();
      }
    });
  }

  async get(reference: string): Promise<ImageRecord | undefined> {
    return this.deps.store.find(reference);
  }

  async list(filter?: { reference?: string }): Promise<ImageRecord[]> {
    if (filter?.reference) {
      const hit = this.deps.store.find(filter.reference);
      return hit ? [hit] : [];
    }
    return this.deps.store.list();
  }

  /** Idempotent, as CRI asks: removing an image that is not there succeeds. */
  async remove(reference: string): Promise<void> {
    const image = this.deps.store.find(reference);
    if (!image) return;
    const gone = await this.deps.store.removeReference(image, reference);
    if (gone) {
      this.deps.log.info("image removed", { image: reference, id: gone.id });
      await this.collect();
    }
  }

  async fsInfo(): Promise<{ mountpoint: string; usedBytes: number; inodesUsed: number; timestamp: number }> {
    const content = await this.deps.content.usage();
    let bytes = content.bytes;
    let inodes = content.inodes;
    for (const s of await this.deps.snapshotter.list()) {
      if (s.kind !== "committed") continue;
      const u = await this.deps.snapshotter.usage(s.key);
      bytes += u.bytes;
      inodes += u.inodes;
    }
    return { mountpoint: this.deps.root, usedBytes: bytes, inodesUsed: inodes, timestamp: Date.now() };
  }

  async importArchive(path: string, opts?: { name?: string }): Promise<ImageRecord[]> {
    if (!this.deps.importer) throw new NotFoundError("image import is not available in this daemon");
    const images = await this.deps.importer(path, opts);
    const stored: ImageRecord[] = [];
    for (const img of images) stored.push(await this.deps.store.put(img));
    return stored;
  }

  async push(reference: string, target?: string, opts?: { auth?: RegistryAuth }): Promise<string> {
    const image = this.deps.store.find(reference);
    if (!image) throw new NotFoundError(`image "${reference}" not found in berth's store; pull or import it first`);
    if (!this.deps.pusher) throw new NotFoundError("image push is not available in this daemon");
    return this.deps.pusher(image, target ?? reference, opts);
  }

  /**
   * Frees the content and snapshots no image references. Deferred while a pull runs: a pull
   * writes blobs before its image record exists, and they must not be collected under it.
   */
  async collect(): Promise<void> {
    if (this.activePulls > 0) {
      this.gcWanted = true;
      return;
    }
    this.gcWanted = false;
    const images = this.deps.store.list();
    const blobs = new Set<string>();
    const snapshots = new Set<string>(this.deps.snapshotsInUse?.() ?? []);
    for (const img of images) {
      blobs.add(img.manifest.digest);
      blobs.add(img.config.digest);
      for (const l of img.layers) blobs.add(l.digest);
      for (const c of img.chainIds) snapshots.add(c);
      // The index a multi-platform image was pulled by is kept for pushing it on.
      for (const d of img.repoDigests) blobs.add(d.slice(d.indexOf("@") + 1));
    }
    for (const info of await this.deps.content.list()) {
      if (!blobs.has(info.digest)) await this.deps.content.delete(info.digest);
    }
    // Remove from the top of each chain down: a parent with children left is refused and kept.
    const all = (await this.deps.snapshotter.list()).filter((s) => s.kind === "committed" && !snapshots.has(s.key));
    let progress = true;
    const left = new Set(all.map((s) => s.key));
    while (progress && left.size > 0) {
      progress = false;
      for (const key of [...left]) {
        try {
          await this.deps.snapshotter.remove(key);
          left.delete(key);
          progress = true;
        } catch {
          // still has children this round
        }
      }
    }
  }
}
