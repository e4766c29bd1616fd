// Keeps one desired pod true, as kubelet's pod worker does: makes its sandbox (volumes and images
// first), runs init containers in order, starts the containers, restarts them per restartPolicy
// with back-off, runs their probes, and puts back what was removed or stopped behind berth's back
// (recording the drift). Each step looks at what the runtime reports, so the same code resumes a
// pod after a daemon restart. Runs are serialised per pod; triggers during a run coalesce.
import { mkdir } from "node:fs/promises";
import type * as cri from "../runtime/api/cri-v1";
import type { Logger } from "../runtime/log";
import type { RestartBackoff } from "./backoff";
import { ContainerProbes, type ProbeEvent } from "./probe-runner";
import type { PodView, StatusBook } from "./status";
import type { DesiredContainer, DesiredPod, ReconcilerBackend } from "./types";
import { prepareVolumes } from "./volumes";

export interface PodWorkerDeps {
  backend: ReconcilerBackend;
  book: StatusBook;
  backoff: RestartBackoff;
  log: Logger;
  /** The pod's phase or readiness changed: its owner may need another step (rollouts). */
  onChange(pod: DesiredPod): void;
}

const ERROR_RETRY_MS = [1000, 2000, 5000, 10_000, 30_000, 60_000];

export class PodWorker {
  view: PodView;
  private sandboxId?: string;
  private podIp = "";
  /** The sandbox existed once: its absence later is drift, not a first start. */
  private made = false;
  /** Containers berth created in the current sandbox; one missing later is drift. */
  private readonly created = new Set<string>();
  /** Container ids berth itself is stopping (liveness kills): their exit is not drift. */
  private readonly stopping = new Set<string>();
  private readonly probes = new Map<string, { container: string; runner: ContainerProbes }>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private run?: Promise<void>;
  private again = false;
  private closed = false;
  private errors = 0;

  constructor(
    readonly pod: DesiredPod,
    private readonly deps: PodWorkerDeps,
  ) {
    this.view = { name: pod.name, uid: pod.uid, phase: "Pending", ready: false, restarts: 0, message: "waiting to start", degraded: false };
  }

  get id(): string | undefined {
    return this.sandboxId;
  }

  /** Runs a step now, or once more after the running one. */
  trigger(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.run) {
      this.again = true;
      return this.run;
    }
    this.run = (async () => {
      try {
        do {
          this.again = false;
          await this.step();
        } while (this.again && !this.closed);
      } finally {
        this.run = undefined;
      }
    })();
    return this.run;
  }

  /** Stops probes and timers; the pod keeps running (daemon shutdown, or handing over). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const p of this.probes.values()) p.runner.stop();
    this.probes.clear();
  }

  /** Waits for a running step to end (after close(), before deleting the pod). */
  async settle(): Promise<void> {
    await this.run?.catch(() => {});
  }

  private after(ms: number): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.trigger();
    }, ms);
    this.timers.add(t);
  }

  private async step(): Promise<void> {
    const before = `${this.view.phase}/${this.view.ready}`;
    try {
      await this.converge();
      if (this.errors) this.deps.book.clearError(this.pod.owner, `pod ${this.pod.name}:`);
      this.errors = 0;
    } catch (err) {
      const msg = (err as Error).message;
      const delay = ERROR_RETRY_MS[Math.min(this.errors, ERROR_RETRY_MS.length - 1)]!;
      this.errors++;
      this.view = { ...this.view, message: msg, degraded: true, pull: undefined };
      this.deps.book.error(this.pod.owner, `pod ${this.pod.name}: ${msg}`);
      this.deps.book.event("error", "SyncFailed", this.pod.owner, `pod ${this.pod.name}: ${msg} (retrying in ${delay / 1000} s)`, { pod: this.pod.name });
      this.after(delay);
    }
    if (`${this.view.phase}/${this.view.ready}` !== before) this.deps.onChange(this.pod);
  }

  private async converge(): Promise<void> {
    const rt = this.deps.backend.runtime;
    const pod = this.pod;
    let sandbox = await this.findSandbox();
    if (sandbox && sandbox.state !== "SANDBOX_READY") {
      this.deps.book.drift(pod.owner, `pod ${pod.name}: sandbox ${sandbox.id.slice(0, 13)} was stopped outside berth; making it again`, pod.name);
      await removeSandbox(this.deps.backend, sandbox.id, pod.gracePeriodSeconds);
      sandbox = undefined;
    }
    if (!sandbox) {
      if (this.made) this.deps.book.drift(pod.owner, `pod ${pod.name}: sandbox ${this.sandboxId?.slice(0, 13)} was removed outside berth; making it again`, pod.name);
      this.resetSandboxState();
      await this.makeSandbox();
    } else if (sandbox.id !== this.sandboxId) {
      // Found after a daemon restart: adopt it and what it holds.
      this.sandboxId = sandbox.id;
      this.made = true;
      await this.learnPodIp();
    }
    const sandboxId = this.sandboxId!;
    const containers = (await rt.listContainers({ filter: { podSandboxId: sandboxId } })).containers;
    const latest = (name: string) =>
      containers.filter((c) => c.metadata?.name === name).sort((a, b) => (b.metadata?.attempt ?? 0) - (a.metadata?.attempt ?? 0))[0];
    for (const c of containers) if (!this.created.has(c.metadata?.name ?? "")) this.created.add(c.metadata?.name ?? "");

    let restarts = 0;
    for (const c of [...pod.initContainers, ...pod.containers]) restarts += latest(c.name)?.metadata?.attempt ?? 0;

    // Init containers, one after the other, each to a successful exit.
    for (const ic of pod.initContainers) {
      const inst = latest(ic.name);
      if (!inst) {
        await this.startNew(ic, 0, "starting init container");
        return this.setView({ phase: "Pending", ready: false, restarts, message: `init container ${ic.name} running`, degraded: false });
      }
      if (inst.state === "CONTAINER_CREATED") await rt.startContainer({ containerId: inst.id });
      if (inst.state === "CONTAINER_RUNNING" || inst.state === "CONTAINER_CREATED")
        return this.setView({ phase: "Pending", ready: false, restarts, message: `init container ${ic.name} running`, degraded: false });
      const st = (await rt.containerStatus({ containerId: inst.id })).status!;
      if (st.exitCode === 0) continue;
      if (pod.restartPolicy === "Never")
        return this.setView({ phase: "Failed", ready: false, restarts, message: `init container ${ic.name} failed with exit code ${st.exitCode}`, degraded: true });
      const waiting = await this.restartWhenDue(ic, inst, st);
      return this.setView({ phase: "Pending", ready: false, restarts, message: waiting ?? `init container ${ic.name} restarted`, degraded: waiting !== undefined });
    }

    let running = 0;
    let succeeded = 0;
    let failed = 0;
    let ready = true;
    const problems: string[] = [];
    let degraded = false;
    for (const c of pod.containers) {
      const inst = latest(c.name);
      if (!inst) {
        if (this.created.has(c.name)) this.deps.book.drift(pod.owner, `pod ${pod.name}: container ${c.name} was removed outside berth; making it again`, pod.name);
        await this.startNew(c, this.nextAttempt(c.name), "starting container");
        ready = false;
        problems.push(`${c.name} starting`);
        continue;
      }
      if (inst.state === "CONTAINER_CREATED") {
        await rt.startContainer({ containerId: inst.id });
        ready = false;
        continue;
      }
      if (inst.state === "CONTAINER_RUNNING") {
        running++;
        const pr = this.ensureProbes(c, inst);
        if (!pr.started || !pr.ready) {
          ready = false;
          problems.push(`${c.name} not ready${pr.lastMessage ? ` (${pr.lastMessage})` : ""}`);
        }
        continue;
      }
      // Exited (or unknown): decide as kubelet's restart policy does.
      this.dropProbes(inst.id);
      ready = false;
      const st = (await rt.containerStatus({ containerId: inst.id })).status!;
      const killedByUs = this.stopping.delete(inst.id);
      if (!killedByUs && st.exitCode > 128 && st.reason !== "OOMKilled")
        this.deps.book.drift(pod.owner, `pod ${pod.name}: container ${c.name} was killed outside berth (exit code ${st.exitCode}); restarting it per restartPolicy ${pod.restartPolicy}`, pod.name);
      const restart = pod.restartPolicy === "Always" || (pod.restartPolicy === "OnFailure" && st.exitCode !== 0);
      if (!restart) {
        if (st.exitCode === 0) succeeded++;
        else failed++;
        problems.push(`${c.name} exited with ${st.exitCode}${st.reason ? ` (${st.reason})` : ""}`);
        continue;
      }
      const waiting = await this.restartWhenDue(c, inst, st);
      if (waiting) {
        degraded = true;
        problems.push(waiting);
      } else problems.push(`${c.name} restarted`);
    }
    const n = pod.containers.length;
    const phase = succeeded === n ? "Succeeded" : succeeded + failed === n ? "Failed" : running > 0 || problems.length === 0 ? "Running" : "Pending";
    this.setView({ phase, ready: ready && running === n, restarts, message: problems.join("; "), degraded: degraded || phase === "Failed" });
  }

  private setView(v: Omit<PodView, "name" | "uid" | "sandboxId">): void {
    this.view = { name: this.pod.name, uid: this.pod.uid, sandboxId: this.sandboxId, ...v };
  }

  private resetSandboxState(): void {
    for (const p of this.probes.values()) p.runner.stop();
    this.probes.clear();
    this.created.clear();
    this.sandboxId = undefined;
  }

  private async findSandbox(): Promise<cri.PodSandbox | undefined> {
    const list = (await this.deps.backend.runtime.listPodSandbox({ filter: { labelSelector: { "io.kubernetes.pod.uid": this.pod.uid } } })).items;
    // Prefer a ready one; an older not-ready one is the stopped sandbox to replace.
    return list.find((s) => s.state === "SANDBOX_READY") ?? list[0];
  }

  private async makeSandbox(): Promise<void> {
    const pod = this.pod;
    const { backend, book } = this.deps;
    await prepareVolumes(pod.volumes);
    await mkdir(pod.sandbox.logDirectory!, { recursive: true, mode: 0o755 });
    for (const c of [...pod.initContainers, ...pod.containers]) await this.ensureImage(c);
    this.setView({ ...this.view, phase: "Pending", message: "creating the pod sandbox", degraded: false, pull: undefined });
    const res = await backend.runtime.runPodSandbox({ config: pod.sandbox });
    this.sandboxId = res.podSandboxId;
    this.made = true;
    await this.learnPodIp();
    book.event("info", "SandboxCreated", pod.owner, `pod ${pod.name}: sandbox ${res.podSandboxId.slice(0, 13)} running${this.podIp ? ` at ${this.podIp}` : ""}`, { pod: pod.name });
  }

  private async learnPodIp(): Promise<void> {
    if (this.pod.hostNetwork) {
      this.podIp = "127.0.0.1";
      return;
    }
    const st = await this.deps.backend.runtime.podSandboxStatus({ podSandboxId: this.sandboxId! });
    this.podIp = st.status?.network?.ip ?? "";
  }

  private async ensureImage(c: DesiredContainer): Promise<void> {
    const { images } = this.deps.backend;
    if (c.pullPolicy === "IfNotPresent" && (await images.present(c.image))) return;
    if (c.pullPolicy === "Never") {
      if (await images.present(c.image)) return;
      throw new Error(`image ${c.image} is not present and imagePullPolicy is Never (ErrImageNeverPull)`);
    }
    this.setView({ ...this.view, message: `pulling ${c.image}`, pull: { image: c.image, current: 0, total: 0 } });
    const t0 = Date.now();
    try {
      await images.pull(c.image, (p) => {
        this.view.pull = { image: c.image, ...p };
      });
    } catch (err) {
      throw new Error(`pulling ${c.image} failed (ErrImagePull): ${(err as Error).message}`);
    }
    this.view.pull = undefined;
    this.deps.book.event("info", "Pulled", this.pod.owner, `pod ${this.pod.name}: pulled ${c.image} in ${Date.now() - t0} ms`, { pod: this.pod.name, image: c.image });
  }

  private nextAttempt(name: string): number {
    return this.created.has(name) ? this.restartsSeen.get(name) ?? 0 : 0;
  }

  private readonly restartsSeen = new Map<string, number>();

  private async startNew(c: DesiredContainer, attempt: number, what: string): Promise<void> {
    const rt = this.deps.backend.runtime;
    await this.ensureImage(c);
    const config = { ...c.config, metadata: { name: c.name, attempt }, logPath: `${c.name}/${attempt}.log`, annotations: { ...c.config.annotations, "io.kubernetes.container.restartCount": String(attempt) } };
    const { containerId } = await rt.createContainer({ podSandboxId: this.sandboxId!, config, sandboxConfig: this.pod.sandbox });
    this.created.add(c.name);
    this.restartsSeen.set(c.name, attempt + 1);
    await rt.startContainer({ containerId });
    // Look again at once: the running container gets its probes and the pod its readiness.
    this.again = true;
    this.deps.book.event("info", attempt === 0 ? "Started" : "Restarted", this.pod.owner, `pod ${this.pod.name}: ${what} ${c.name} (${containerId.slice(0, 13)}, attempt ${attempt})`, {
      pod: this.pod.name,
      container: c.name,
    });
  }

  /** Restarts now if the back-off allows, else schedules the step and says why it waits. */
  private async restartWhenDue(c: DesiredContainer, inst: cri.Container, st: cri.ContainerStatus): Promise<string | undefined> {
    const key = `${this.pod.uid}/${c.name}`;
    const finished = Number(BigInt(st.finishedAt || "0") / 1_000_000n);
    const started = Number(BigInt(st.startedAt || "0") / 1_000_000n);
    const at = this.deps.backoff.restartAt(key, started, finished);
    const wait = at - Date.now();
    if (wait > 0) {
      this.after(wait + 10);
      return `back-off ${Math.round((at - finished) / 1000)}s restarting failed container ${c.name} (exit code ${st.exitCode}) (CrashLoopBackOff)`;
    }
    const attempt = (inst.metadata?.attempt ?? 0) + 1;
    // kubelet keeps the last dead instance for `logs --previous`; berth keeps it too, one deep.
    const rt = this.deps.backend.runtime;
    const old = (await rt.listContainers({ filter: { podSandboxId: this.sandboxId! } })).containers.filter(
      (x) => x.metadata?.name === c.name && x.id !== inst.id && x.state !== "CONTAINER_RUNNING",
    );
    for (const o of old) await rt.removeContainer({ containerId: o.id }).catch(() => {});
    await this.startNew(c, attempt, "restarting");
    return undefined;
  }

  private ensureProbes(c: DesiredContainer, inst: cri.Container): Pick<ContainerProbes, "started" | "ready" | "lastMessage"> {
    const have = this.probes.get(inst.id);
    if (have) return have.runner;
    // A step that was running when the worker closed must not start timers nobody will stop.
    if (this.closed) return { started: false, ready: false, lastMessage: "" };
    const started = Number(BigInt(inst.createdAt || "0") / 1_000_000n) || Date.now();
    const runner = new ContainerProbes(
      this.deps.backend.runtime,
      { liveness: c.liveness, readiness: c.readiness, startup: c.startup },
      { containerId: inst.id, host: this.podIp || "127.0.0.1", namedPorts: c.namedPorts },
      started,
      (e) => this.onProbe(c, inst.id, e),
    );
    this.probes.set(inst.id, { container: c.name, runner });
    return runner;
  }

  private dropProbes(id: string): void {
    this.probes.get(id)?.runner.stop();
    this.probes.delete(id);
  }

  private onProbe(c: DesiredContainer, id: string, e: ProbeEvent): void {
    if (this.closed) return;
    const { book } = this.deps;
    if (e.type === "failed") {
      book.event("warn", "Unhealthy", this.pod.owner, `pod ${this.pod.name}: container ${c.name} ${e.message}; restarting it`, { pod: this.pod.name, container: c.name });
      this.dropProbes(id);
      this.stopping.add(id);
      const grace = (e.probe === "liveness" ? c.liveness : c.startup)?.terminationGracePeriodSeconds ?? this.pod.gracePeriodSeconds;
      void this.deps.backend.runtime
        .stopContainer({ containerId: id, timeout: String(grace) })
        .catch((err: unknown) => book.event("error", "KillFailed", this.pod.owner, `pod ${this.pod.name}: stopping ${c.name}: ${(err as Error).message}`))
        .then(() => this.trigger());
      return;
    }
    if (e.type === "ready") book.event(e.ready ? "info" : "warn", e.ready ? "Ready" : "NotReady", this.pod.owner, `pod ${this.pod.name}: container ${c.name} ${e.ready ? "ready" : `not ready: ${e.message}`}`);
    void this.trigger();
  }
}

/** Stops a sandbox's containers with the grace period, then the sandbox, then removes it. */
export async function removeSandbox(backend: ReconcilerBackend, sandboxId: string, graceSeconds: number): Promise<void> {
  const rt = backend.runtime;
  const containers = (await rt.listContainers({ filter: { podSandboxId: sandboxId } })).containers;
  await Promise.all(
    containers.filter((c) => c.state === "CONTAINER_RUNNING").map((c) => rt.stopContainer({ containerId: c.id, timeout: String(graceSeconds) }).catch(() => {})),
  );
  await rt.stopPodSandbox({ podSandboxId: sandboxId });
  await rt.removePodSandbox({ podSandboxId: sandboxId });
}
