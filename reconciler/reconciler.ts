// The reconciler: reads the folder, builds the desired state, and converges the runtime to it
// (create what is missing, replace what changed, roll Deployments, prune what left the folder),
// then keeps it true through one PodWorker per pod. Triggers: the folder watch, runtime events,
// pod readiness changes and a periodic full resync. Passes are serialised; triggers coalesce.
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../runtime/log";
import { writeJsonAtomic } from "../runtime/store/atomic";
import { limiter } from "../runtime/sync/limit";
import { RestartBackoff } from "./backoff";
import { buildDesired } from "./desired/model";
import { loadManifests } from "./load/read-folder";
import { type ActualPod, actualPods, changedFields, type PlannedAction, plan, refusedPods } from "./plan";
import { PodWorker, removeSandbox } from "./pod-worker";
import { LogRotation, type LogRotationOptions } from "./log-rotation";
import { type Replica, rolloutStep } from "./rollout";
import { type ObjectStatus, StatusBook } from "./status";
import {
  ANN_SOURCE,
  type DesiredPod,
  type DesiredState,
  type Diagnostic,
  diagnosticText,
  keyString,
  LABEL_MANAGED,
  LABEL_TEMPLATE_HASH,
  type ManifestObject,
  type ManifestSet,
  type ObjectKey,
  type ReconcilerBackend,
} from "./types";
import { removePodDirs } from "./volumes";
import { type FolderWatch, watchFolder } from "./watch";

export interface ReconcilerOptions {
  manifests: string;
  /** Where the reconciler keeps its own files: last good objects, pods' volumes and logs. */
  stateDir: string;
  backend: ReconcilerBackend;
  log: Logger;
  resyncMs?: number;
  concurrency?: number;
  watch?: boolean;
  /** Keep the last good objects of each file on disk (the daemon); `berth diff` does not. */
  persist?: boolean;
  /** Rotate the logs of the containers it runs, as kubelet would (log-rotation.ts); none: no rotation. */
  logRotation?: Omit<LogRotationOptions, "runtime" | "log">;
}

interface LastGood {
  files: Record<string, ManifestObject[]>;
}

export class Reconciler {
  readonly book: StatusBook;
  private desired: DesiredState = { pods: [], deployments: [], diagnostics: [], frozen: [] };
  private set?: ManifestSet;
  private lastGood: LastGood = { files: {} };
  private readonly workers = new Map<string, PodWorker>();
  private readonly backoff = new RestartBackoff();
  private readonly limit: <T>(fn: () => Promise<T>) => Promise<T>;
  private watch?: FolderWatch;
  private resync?: NodeJS.Timeout;
  private readonly events = new AbortController();
  private pass?: Promise<void>;
  private passAgain = false;
  private reloadWanted = false;
  private soon?: NodeJS.Timeout;
  private stopped = false;
  private rotation?: LogRotation;
  /** Pods admission refuses now (host ports another pod holds), by uid, with why. */
  private refused = new Map<string, string>();
  lastSyncAt?: Date;
  /** Told how long each pass took and whether it succeeded (metrics). */
  onPass?: (seconds: number, ok: boolean) => void;

  constructor(private readonly opts: ReconcilerOptions) {
    this.book = new StatusBook(opts.log.with({ component: "reconciler" }));
    this.limit = limiter(opts.concurrency ?? 4);
  }

  get revision(): string | undefined {
    return this.set?.revision;
  }

  /** Reads the folder once and builds the desired state, without acting (berth diff). */
  async load(): Promise<ManifestSet> {
    await this.reload();
    return this.set!;
  }

  async start(): Promise<void> {
    await mkdir(this.opts.stateDir, { recursive: true, mode: 0o711 });
    if (this.opts.persist !== false)
      this.lastGood = await readFile(join(this.opts.stateDir, "last-good.json"), "utf8")
      .then((s) => JSON.parse(s) as LastGood)
      .catch(() => ({ files: {} }));
    this.opts.backend.runtime.events.subscribe((e) => {
      if (e.containerEventType !== "CONTAINER_STOPPED_EVENT" && e.containerEventType !== "CONTAINER_DELETED_EVENT") return;
      const sandboxId = e.podSandboxStatus?.id;
      for (const w of this.workers.values()) if (w.id && w.id === sandboxId) void w.trigger();
    }, this.events.signal);
    if (this.opts.watch !== false) {
      this.watch = await watchFolder(
        this.opts.manifests,
        (reason) => {
          this.book.event("info", "FolderChanged", undefined, `manifests changed: ${reason.slice(0, 300)}`);
          void this.trigger(true);
        },
        (err) => this.book.event("error", "WatchFailed", undefined, `watching ${this.opts.manifests}: ${err.message}`),
      );
    }
    await this.trigger(true);
    if (this.opts.logRotation) {
      this.rotation = new LogRotation({ ...this.opts.logRotation, runtime: this.opts.backend.runtime, log: this.opts.log.with({ component: "reconciler" }) });
      this.rotation.start();
    }
    const every = this.opts.resyncMs ?? 30_000;
    if (every > 0) {
      const tick = () => {
        this.resync = setTimeout(() => void this.trigger(true).finally(() => !this.stopped && tick()), every);
      };
      tick();
    }
  }

  /** Stops watching and supervising; the pods keep running. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resync) clearTimeout(this.resync);
    if (this.soon) clearTimeout(this.soon);
    this.events.abort();
    await this.rotation?.stop();
    await this.watch?.close();
    for (const w of this.workers.values()) w.close();
    await this.pass?.catch(() => {});
    for (const w of this.workers.values()) {
      await w.settle();
      w.close();
    }
  }

  /** One pass (reading the folder first when `reload`), or one more after the running one. */
  trigger(reload = false): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.reloadWanted ||= reload;
    if (this.pass) {
      this.passAgain = true;
      return this.pass;
    }
    this.pass = (async () => {
      try {
        do {
          this.passAgain = false;
          const r = this.reloadWanted;
          this.reloadWanted = false;
          const t0 = performance.now();
          try {
            if (r) await this.reload();
            await this.converge();
            this.lastSyncAt = new Date();
            this.onPass?.((performance.now() - t0) / 1000, true);
          } catch (err) {
            this.onPass?.((performance.now() - t0) / 1000, false);
            this.book.event("error", "ReconcileFailed", undefined, `reconcile pass failed: ${(err as Error).message}`);
          }
        } while (this.passAgain && !this.stopped);
      } finally {
        this.pass = undefined;
      }
    })();
    return this.pass;
  }

  private triggerSoon(): void {
    if (this.soon || this.stopped) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.trigger(false);
    }, 50);
  }

  /** Reads the folder; objects of broken files come from the last good read of that file. */
  private async reload(): Promise<void> {
    const set = await loadManifests(this.opts.manifests);
    const broken = new Set(set.brokenFiles);
    const files: Record<string, ManifestObject[]> = {};
    for (const o of set.objects) files[o.source.file] = [...(files[o.source.file] ?? []), o];
    const next: LastGood = { files: {} };
    const kept: ManifestObject[] = [];
    for (const f of broken) {
      if (this.lastGood.files[f]) {
        next.files[f] = this.lastGood.files[f]!;
        kept.push(...this.lastGood.files[f]!);
      }
    }
    for (const [f, objs] of Object.entries(files)) next.files[f] = objs;
    // Files that read cleanly with no object still count as good (and empty).
    const present = new Set(set.objects.map((o) => keyString(o.key)));
    const objects = [...set.objects, ...kept.filter((o) => !present.has(keyString(o.key)))];
    if (JSON.stringify(next) !== JSON.stringify(this.lastGood)) {
      this.lastGood = next;
      if (this.opts.persist !== false) await writeJsonAtomic(join(this.opts.stateDir, "last-good.json"), next);
    }
    const previous = new Set(this.set?.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.message}`) ?? []);
    this.set = { ...set, objects };
    for (const d of set.diagnostics) {
      const where = `${d.file}:${d.line}:${d.column}`;
      if (!previous.has(`${where} ${d.message}`)) this.book.event("error", "InvalidManifest", d.object, diagnosticText(d), { file: d.file, line: d.line, column: d.column });
    }
    const frozen = kept.map((o) => o.key);
    this.desired = buildDesired(this.set, frozen, {
      podsDir: join(this.opts.stateDir, "pods"),
      logsDir: join(this.opts.stateDir, "logs"),
      seccompDir: set.resolvedRoot,
    });
    for (const d of this.desired.diagnostics) this.book.event("error", "InvalidObject", d.object, diagnosticText(d));
    this.markErrors(set, kept);
    // Status reflects the new desired state at once (OutOfSync until the pass below is done).
    this.refreshStatus();
  }

  private markErrors(set: ManifestSet, kept: ManifestObject[]): void {
    // A broken file's objects carry its first problem (the one an editor shows first).
    const brokenBy = new Map<string, Diagnostic>();
    for (const d of set.diagnostics) if (!brokenBy.has(d.file)) brokenBy.set(d.file, d);
    const all = [...set.objects.map((o) => o.key), ...kept.map((o) => o.key)];
    for (const k of all) {
      const s = this.book.entry(k);
      const own = [...set.diagnostics, ...this.desired.diagnostics].find((d) => d.object && keyString(d.object) === keyString(k));
      const file = kept.find((o) => keyString(o.key) === keyString(k))?.source.file;
      const d = own ?? (file ? brokenBy.get(file) : undefined);
      if (d) this.book.error(k, diagnosticText(d), d);
      else s.lastError = undefined;
    }
    for (const d of set.diagnostics) if (d.object && !all.some((k) => keyString(k) === keyString(d.object!))) this.book.error(d.object, diagnosticText(d), d);
  }

  /** The plan from what runs to what the folder says (no change made). */
  async plan(): Promise<PlannedAction[]> {
    return plan(this.desired, await this.listActual());
  }

  private async listActual(): Promise<ActualPod[]> {
    const items = (await this.opts.backend.runtime.listPodSandbox({ filter: { labelSelector: { [LABEL_MANAGED]: "berth" } } })).items;
    const actual = actualPods(items);
    // What runs from a file that is broken now stays, even with no last good copy of that file
    // (berth diff, or state lost): the sandbox says which file it came from.
    const broken = new Set(this.set?.brokenFiles ?? []);
    for (const a of actual) {
      const file = a.sandbox.annotations[ANN_SOURCE]?.replace(/:\d+$/, "");
      if (file && broken.has(file) && !this.desired.frozen.some((k) => keyString(k) === keyString(a.owner))) this.desired.frozen.push(a.owner);
    }
    return actual;
  }

  private worker(p: DesiredPod): PodWorker {
    let w = this.workers.get(p.uid);
    if (!w) {
      w = new PodWorker(p, {
        backend: this.opts.backend,
        book: this.book,
        backoff: this.backoff,
        log: this.opts.log,
        onChange: () => {
          this.refreshStatus();
          this.triggerSoon();
        },
      });
      this.workers.set(p.uid, w);
    }
    return w;
  }

  private async remove(a: ActualPod, why: string): Promise<void> {
    const w = this.workers.get(a.uid);
    if (w) {
      w.close();
      await w.settle();
      this.workers.delete(a.uid);
    }
    const grace = Number((a.applied as { terminationGracePeriodSeconds?: number } | undefined)?.terminationGracePeriodSeconds ?? 30);
    await removeSandbox(this.opts.backend, a.sandbox.id, grace);
    this.backoff.forget(`${a.uid}/`);
    await removePodDirs([join(this.opts.stateDir, "pods", a.uid), join(this.opts.stateDir, "logs", `${a.sandbox.metadata?.namespace}_${a.name}_${a.uid}`)]);
    this.book.event("info", "Deleted", a.owner, `pod ${a.name}: deleted (${why})`, { pod: a.name });
  }

  private async converge(): Promise<void> {
    const desired = this.desired;
    const actual = await this.listActual();
    const byOwner = new Map<string, ActualPod[]>();
    for (const a of actual) byOwner.set(keyString(a.owner), [...(byOwner.get(keyString(a.owner)) ?? []), a]);
    const wanted = new Set<string>();
    const tasks: Array<Promise<void>> = [];
    const refused = refusedPods(desired, actual);
    for (const p of [...desired.pods, ...desired.deployments.flatMap((d) => d.pods)]) {
      const why = refused.get(p.uid);
      if (why && this.refused.get(p.uid) !== why) this.book.event("warn", "HostPortConflict", p.owner, why, { pod: p.name });
    }
    this.refused = refused;
    const guard = (owner: ObjectKey, fn: () => Promise<void>) =>
      this.limit(fn).catch((err: unknown) => {
        this.book.error(owner, (err as Error).message);
        this.book.event("error", "SyncFailed", owner, (err as Error).message);
      });

    for (const p of desired.pods) {
      wanted.add(p.uid);
      // Refused: left as it is (what runs in its place too) until the port is free.
      if (refused.has(p.uid)) continue;
      const stale = (byOwner.get(keyString(p.owner)) ?? []).filter((a) => a.uid !== p.uid);
      tasks.push(
        guard(p.owner, async () => {
          // A Pod is replaced by deleting first: its name and host ports are the new one's.
          for (const s of stale) {
            const changes = changedFields(s.applied ?? {}, p.effective)
              .map((c) => c.field)
              .slice(0, 10);
            this.book.event("info", "Replacing", p.owner, `pod ${p.name}: spec changed (${changes.join(", ") || "unknown fields"}); replacing it`);
            await this.remove(s, "replaced");
          }
          if (stale.length) this.book.entry(p.owner).lastAppliedAt = new Date().toISOString();
          const fresh = !this.workers.has(p.uid) && !(byOwner.get(keyString(p.owner)) ?? []).some((a) => a.uid === p.uid);
          if (fresh && !stale.length) this.book.event("info", "Creating", p.owner, `pod ${p.name}: creating`);
          if (fresh) this.book.entry(p.owner).lastAppliedAt = new Date().toISOString();
          await this.worker(p).trigger();
        }),
      );
    }

    for (const d of desired.deployments) {
      const have = byOwner.get(keyString(d.key)) ?? [];
      for (const a of have) wanted.add(a.uid);
      tasks.push(
        guard(d.key, async () => {
          const replicas: Replica[] = have.map((a) => ({
            uid: a.uid,
            name: a.name,
            templateHash: a.sandbox.labels[LABEL_TEMPLATE_HASH] ?? "",
            ready: this.workers.get(a.uid)?.view.ready ?? a.sandbox.state === "SANDBOX_READY",
          }));
          const admitted = { ...d, pods: d.pods.filter((p) => !refused.has(p.uid)) };
          const step = rolloutStep(admitted, replicas);
          for (const r of step.remove) {
            wanted.delete(r.uid);
            await this.remove(have.find((a) => a.uid === r.uid)!, r.templateHash === d.templateHash ? "scaled down" : "rolled to a new template");
          }
          const current = admitted.pods.filter((p) => have.some((a) => a.uid === p.uid) || step.create.includes(p));
          for (const p of step.create) {
            wanted.add(p.uid);
            this.book.event("info", "Creating", d.key, `pod ${p.name}: creating (template ${d.templateHash})`);
            this.book.entry(d.key).lastAppliedAt = new Date().toISOString();
          }
          await Promise.all(current.map((p) => this.worker(p).trigger()));
          // A step that changed something may allow the next one at once (an old replica gone
          // makes room for a new one); a step that changed nothing waits for readiness to change.
          if (!step.complete && (step.remove.length || step.create.length)) this.passAgain = true;
          // Old-template replicas kept for now are watched through the runtime only.
        }),
      );
    }
    await Promise.all(tasks);

    const owners = new Set([...desired.pods.map((p) => keyString(p.owner)), ...desired.deployments.map((d) => keyString(d.key))]);
    const frozen = new Set(desired.frozen.map(keyString));
    const prunes: Array<Promise<void>> = [];
    for (const [k, pods] of byOwner) {
      if (owners.has(k) || frozen.has(k)) continue;
      for (const a of pods) prunes.push(this.limit(() => this.remove(a, "no longer in the folder")).catch((err: unknown) => this.book.event("error", "PruneFailed", a.owner, (err as Error).message)));
    }
    await Promise.all(prunes);
    for (const [uid, w] of this.workers) {
      if (wanted.has(uid) || frozen.has(keyString(w.pod.owner))) continue;
      w.close();
      this.workers.delete(uid);
    }
    // Objects gone from the folder and from the runtime leave the status book.
    const known = new Set([...owners, ...frozen, ...(this.set?.objects ?? []).map((o) => keyString(o.key))]);
    for (const k of this.book.keys()) if (!known.has(keyString(k))) this.book.remove(k);
    this.refreshStatus(await this.listActual());
  }

  /** Recomputes every object's status from the workers (and, when given, the runtime's list). */
  private refreshStatus(actual?: ActualPod[]): void {
    const desired = this.desired;
    const frozen = new Set(desired.frozen.map(keyString));
    const source = (o: { source: { file: string; line: number } }) => `${o.source.file}:${o.source.line}`;
    const setCommon = (s: ObjectStatus, synced: boolean, views: PodWorker["view"][], key: ObjectKey) => {
      s.pods = views;
      s.restarts = views.reduce((n, v) => n + v.restarts, 0);
      const frozenNow = frozen.has(keyString(key));
      s.sync = synced && !frozenNow ? "Synced" : "OutOfSync";
      if (s.sync === "Synced") s.revision = desired.revision ?? s.revision;
      const degraded = views.some((v) => v.degraded);
      const ready = views.length > 0 && views.every((v) => v.ready || v.phase === "Succeeded");
      s.health = degraded ? "Degraded" : ready && synced ? "Healthy" : "Progressing";
      s.message = frozenNow ? `kept as last applied: ${s.lastError?.message ?? "its manifest has errors"}` : views.map((v) => v.message).filter(Boolean).join("; ");
    };
    const refuse = (s: ObjectStatus, pods: DesiredPod[]) => {
      const why = pods.map((p) => this.refused.get(p.uid)).filter((m): m is string => !!m);
      if (!why.length) return;
      s.health = "Degraded";
      s.message = [...why, s.message].filter(Boolean).join("; ");
    };
    for (const p of desired.pods) {
      const s = this.book.entry(p.owner);
      s.source = source(p);
      const w = this.workers.get(p.uid);
      const stale = actual?.some((a) => keyString(a.owner) === keyString(p.owner) && a.uid !== p.uid) ?? false;
      setCommon(s, !!w?.id && !stale, w ? [w.view] : [], p.owner);
      refuse(s, [p]);
    }
    for (const d of desired.deployments) {
      const s = this.book.entry(d.key);
      s.source = source(d);
      const mine = actual?.filter((a) => keyString(a.owner) === keyString(d.key));
      const views = d.pods.map((p) => this.workers.get(p.uid)?.view).filter((v): v is PodWorker["view"] => !!v);
      const current = mine ? mine.length : (s.replicas?.current ?? views.length);
      const updated = views.filter((v) => this.workers.get(v.uid)?.id).length;
      s.replicas = { desired: d.replicas, current, updated, ready: views.filter((v) => v.ready).length };
      const synced = updated === d.replicas && current === d.replicas;
      setCommon(s, synced, views, d.key);
      if (d.replicas === 0 && synced) s.health = "Healthy";
      refuse(s, d.pods);
    }
    for (const o of this.set?.objects ?? []) {
      if (o.key.kind !== "ConfigMap") continue;
      const s = this.book.entry(o.key);
      s.source = source(o);
      s.sync = frozen.has(keyString(o.key)) ? "OutOfSync" : "Synced";
      s.health = "Healthy";
      s.revision = desired.revision ?? s.revision;
    }
  }

  /** Waits until every object is Synced and none Progressing (or `timeoutMs` passes). */
  async settled(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      await this.trigger(false);
      const list = this.book.list();
      if (list.every((s) => s.sync === "Synced" && s.health !== "Progressing")) return true;
      await new Promise((r) => setTimeout(r, 200));
    }
    return false;
  }

  status(): ObjectStatus[] {
    return this.book.list();
  }
}
