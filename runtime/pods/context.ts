// Everything the pod and container operations share, handed to each of them (the operations
// live one per file, as containerd's CRI service splits its methods; none reaches for a global).
import { InvalidArgumentError, UnsafeStateError } from "../errors";
import type { ImageService } from "../image/types";
import type { Syscalls } from "../linux/types";
import type { Logger } from "../log";
import type { Snapshotter } from "../snapshot/types";
import type { KeyedMutex } from "../sync/keyed-mutex";
import type { BackgroundWork } from "./background";
import type { EventHub } from "./events";
import type { NameIndex } from "./names";
import type { RecordStore } from "./store";
import type { ContainerMonitor } from "./monitor";
import type { ContainerRecord, NamespacePinner, PodNetwork, RuntimeHandler, SandboxRecord } from "./types";

export interface PodServiceConfig {
  /** Persistent state (/var/lib/berth). */
  root: string;
  /** Run state (/run/berth): pinned namespaces, pod files, bundles, conmon's exit files. */
  state: string;
  /** Where pod cgroups go: relative = below the daemon's own cgroup, absolute = from each hierarchy's root. */
  cgroupRoot: string;
  /** runtime_handler → OCI runtime; "" and "berth" name berth's own. */
  handlers: Record<string, RuntimeHandler>;
  defaultHandler: string;
  /** The lowest oom_score_adj a container gets (runtime/oci/oom-score.ts); undefined: what the CRI asks. */
  oomScoreAdjFloor?: number;
}

export interface PodContext {
  config: PodServiceConfig;
  sys: Syscalls;
  sandboxes: RecordStore<SandboxRecord>;
  containers: RecordStore<ContainerRecord>;
  names: NameIndex;
  /** One turn at a time per pod and per container id; different objects proceed in parallel. */
  locks: KeyedMutex;
  images: ImageService;
  snapshotter: Snapshotter;
  namespaces: NamespacePinner;
  network: PodNetwork;
  monitor: ContainerMonitor;
  events: EventHub;
  /** What requests leave running, per pod (RemoveContainer's release of a container's resources). */
  background: BackgroundWork;
  log: Logger;
  /** Called with an UnsafeStateError: the daemon must exit (berth serve does, with code 70). */
  onUnsafe?: (err: Error) => void;
  /** Told how long each `runtime create` took (metrics). */
  onRuntimeCreate?: (seconds: number) => void;
}

export function handlerFor(ctx: PodContext, name: string | null | undefined): RuntimeHandler {
  const key = name || ctx.config.defaultHandler;
  const h = ctx.config.handlers[key];
  if (!h) {
    throw new InvalidArgumentError(`runtime_handler "${key}" is not configured; known handlers: ${Object.keys(ctx.config.handlers).join(", ")}`);
  }
  return h;
}

/** Runs `fn`; an UnsafeStateError is reported to the context (which ends the daemon) and rethrown. */
export function guardUnsafe<T>(ctx: PodContext, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UnsafeStateError) ctx.onUnsafe?.(err);
    throw err;
  }
}
