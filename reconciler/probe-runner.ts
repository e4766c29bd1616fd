// The probes of one running container instance, on their own timers: the startup probe first
// (holding the others back until it succeeds), then liveness and readiness. Results are
// counted against the probe's thresholds, as kubelet's worker does, and reported as changes.
import type { V1Probe } from "@kubernetes/client-node";
import type { RuntimeService } from "../runtime/api/runtime";
import { type ProbeResult, type ProbeTarget, probeOnce } from "./probes";

export type ProbeEvent =
  | { type: "ready"; ready: boolean; message: string }
  | { type: "started" }
  | { type: "failed"; probe: "liveness" | "startup"; message: string };

export interface ContainerProbeSpec {
  liveness?: V1Probe;
  readiness?: V1Probe;
  startup?: V1Probe;
}

type Kind = "liveness" | "readiness" | "startup";

export class ContainerProbes {
  started: boolean;
  ready: boolean;
  lastMessage = "";
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly runtime: RuntimeService,
    private readonly spec: ContainerProbeSpec,
    private readonly target: ProbeTarget,
    startedAtMs: number,
    private readonly onEvent: (e: ProbeEvent) => void,
    private readonly probe: (runtime: RuntimeService, p: V1Probe, t: ProbeTarget) => Promise<ProbeResult> = probeOnce,
  ) {
    this.started = !spec.startup;
    // Without a readiness probe a started container is ready, as kubelet reports it.
    this.ready = this.started && !spec.readiness;
    if (spec.startup) this.schedule("startup", spec.startup, startedAtMs);
    else this.startOthers(startedAtMs);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private startOthers(fromMs: number): void {
    if (this.spec.liveness) this.schedule("liveness", this.spec.liveness, fromMs);
    if (this.spec.readiness) this.schedule("readiness", this.spec.readiness, fromMs);
  }

  private schedule(kind: Kind, p: V1Probe, fromMs: number): void {
    const period = (p.periodSeconds ?? 10) * 1000;
    const failureThreshold = p.failureThreshold ?? 3;
    const successThreshold = kind === "readiness" ? (p.successThreshold ?? 1) : 1;
    let failures = 0;
    let successes = 0;
    const run = async () => {
      if (this.stopped) return;
      const r = await this.probe(this.runtime, p, this.target);
      if (this.stopped) return;
      this.lastMessage = `${kind}: ${r.message}`;
      if (r.ok) {
        failures = 0;
        successes++;
        if (successes >= successThreshold) {
          if (kind === "startup") {
            this.started = true;
            this.ready = !this.spec.readiness;
            this.onEvent({ type: "started" });
            this.startOthers(Date.now());
            return;
          }
          if (kind === "readiness" && !this.ready) {
            this.ready = true;
            this.onEvent({ type: "ready", ready: true, message: r.message });
          }
        }
      } else {
        successes = 0;
        failures++;
        if (failures >= failureThreshold) {
          if (kind === "readiness") {
            if (this.ready) {
              this.ready = false;
              this.onEvent({ type: "ready", ready: false, message: r.message });
            }
          } else {
            this.onEvent({ type: "failed", probe: kind, message: `${kind} probe failed ${failures} times: ${r.message}` });
            return;
          }
        }
      }
      this.arm(run, period);
    };
    this.arm(run, Math.max(0, fromMs + (p.initialDelaySeconds ?? 0) * 1000 - Date.now()));
  }

  private arm(fn: () => Promise<void>, ms: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      void fn();
    }, ms);
    this.timers.add(t);
  }
}
