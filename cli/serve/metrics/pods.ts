// Pod and container metrics: objects by state, starts and exits by reason, OOM kills, conmon
// processes, how long `runtime create` takes, what recovery found, and per container (labels
// namespace, pod, container, as cAdvisor's) CPU, memory working set and limit, pids and restarts.
import { readdirSync, readFileSync } from "node:fs";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type * as cri from "../../../runtime/api/cri-v1";
import type { RuntimeService } from "../../../runtime/api/runtime";

export interface PodMetrics {
  runtimeCreate(seconds: number): void;
  recovered(kind: "pod" | "container", n: number): void;
}

/** conmon processes started by this daemon: their command line names its state directory. */
function conmons(state: string): number {
  let n = 0;
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8");
      if (cmd.startsWith("/usr/bin/conmon\0") && cmd.includes(state)) n++;
    } catch {
      // Gone while we looked.
    }
  }
  return n;
}

export function podMetrics(registry: Registry, runtime: RuntimeService, state: string, processCounts: () => Promise<Map<string, number>>): PodMetrics {
  new Gauge({
    name: "berth_pods",
    help: "Pod sandboxes by state.",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const { items } = await runtime.listPodSandbox({});
      this.reset();
      for (const s of ["SANDBOX_READY", "SANDBOX_NOTREADY"]) this.set({ state: s === "SANDBOX_READY" ? "ready" : "notready" }, items.filter((p) => p.state === s).length);
    },
  });
  new Gauge({
    name: "berth_containers",
    help: "Containers by state.",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const { containers } = await runtime.listContainers({});
      this.reset();
      for (const s of ["created", "running", "exited", "unknown"]) this.set({ state: s }, containers.filter((c) => c.state === `CONTAINER_${s.toUpperCase()}`).length);
    },
  });
  new Gauge({
    name: "berth_conmon_processes",
    help: "conmon monitors running for this daemon's containers.",
    registers: [registry],
    collect() {
      this.set(conmons(state));
    },
  });
  const starts = new Counter({ name: "berth_container_starts_total", help: "Containers started.", registers: [registry] });
  const exits = new Counter({ name: "berth_container_exits_total", help: "Container exits by reason (Completed, Error, OOMKilled).", labelNames: ["reason"], registers: [registry] });
  const ooms = new Counter({ name: "berth_container_oom_kills_total", help: "Containers the kernel killed for memory.", registers: [registry] });
  const create = new Histogram({ name: "berth_runtime_create_duration_seconds", help: "Time of the OCI runtime's create for a container, through conmon.", buckets: [0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });
  const recovered = new Counter({ name: "berth_recovered_objects_total", help: "Pods and containers found again when the daemon started.", labelNames: ["kind"], registers: [registry] });
  for (const r of ["Completed", "Error", "OOMKilled"]) exits.inc({ reason: r }, 0);
  const ac = new AbortController();
  runtime.events.subscribe((e) => {
    if (e.containerEventType === "CONTAINER_STARTED_EVENT") starts.inc();
    if (e.containerEventType !== "CONTAINER_STOPPED_EVENT") return;
    const st = e.containersStatuses.find((c) => c.id === e.containerId);
    const reason = st?.reason || (st?.exitCode === 0 ? "Completed" : "Error");
    exits.inc({ reason });
    if (reason === "OOMKilled") ooms.inc();
  }, ac.signal);

  // Per container, from the same stats kubelet reads (ListContainerStats).
  const labels = ["namespace", "pod", "container"];
  const perContainer = async (): Promise<Array<{ l: Record<string, string>; st: cri.ContainerStats; attempt: number }>> => {
    const [{ stats }, { items }] = await Promise.all([runtime.listContainerStats({}), runtime.listPodSandbox({})]);
    const pods = new Map(items.map((p) => [p.id, p]));
    const { containers } = await runtime.listContainers({ filter: { state: { state: "CONTAINER_RUNNING" } } });
    const byId = new Map(containers.map((c) => [c.id, c]));
    const out = [];
    for (const st of stats) {
      const c = byId.get(st.attributes?.id ?? "");
      if (!c) continue;
      const pod = pods.get(c.podSandboxId);
      out.push({ l: { namespace: pod?.metadata?.namespace ?? "", pod: pod?.metadata?.name ?? "", container: c.metadata?.name ?? "" }, st, attempt: c.metadata?.attempt ?? 0 });
    }
    return out;
  };
  let snapshot: Promise<Awaited<ReturnType<typeof perContainer>>> | undefined;
  // One read of the stats per scrape, shared by the per-container series.
  const once = () => {
    snapshot ??= perContainer().finally(() => setTimeout(() => (snapshot = undefined), 500).unref());
    return snapshot;
  };
  new Counter({
    name: "berth_container_cpu_usage_seconds_total",
    help: "CPU time a running container used.",
    labelNames: labels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const x of await once()) this.inc(x.l, Number(x.st.cpu?.usageCoreNanoSeconds?.value ?? 0) / 1e9);
    },
  });
  new Gauge({
    name: "berth_container_memory_working_set_bytes",
    help: "A running container's memory working set (usage minus inactive file pages).",
    labelNames: labels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const x of await once()) this.set(x.l, Number(x.st.memory?.workingSetBytes?.value ?? 0));
    },
  });
  new Gauge({
    name: "berth_container_memory_limit_bytes",
    help: "A running container's memory limit (0: none).",
    labelNames: labels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const x of await once()) {
        // The stats give what is left below the limit; no limit, no figure.
        const available = x.st.memory?.availableBytes;
        this.set(x.l, available ? Number(available.value) + Number(x.st.memory?.workingSetBytes?.value ?? 0) : 0);
      }
    },
  });
  new Gauge({
    name: "berth_container_pids",
    help: "Processes in a running container.",
    labelNames: labels,
    registers: [registry],
    async collect() {
      this.reset();
      const counts = await processCounts();
      for (const x of await once()) this.set(x.l, counts.get(x.st.attributes?.id ?? "") ?? 0);
    },
  });
  new Counter({
    name: "berth_container_restarts_total",
    help: "Restarts of a container (its CRI attempt number).",
    labelNames: labels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const x of await once()) this.inc(x.l, x.attempt);
    },
  });
  return {
    runtimeCreate: (s) => create.observe(s),
    recovered: (kind, n) => recovered.inc({ kind }, n),
  };
}
