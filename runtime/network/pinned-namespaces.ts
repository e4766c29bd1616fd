// A pod's network, IPC and UTS namespaces without a pause process (DESIGN.md, decision 4): made
// on the daemon's main thread and pinned by a bind mount of the thread's namespace file, as
// CRI-O's pinns does in a helper process. unshare(2) of these kinds affects only the calling
// thread, and the thread goes back to the daemon's own namespaces before any other JavaScript
// runs, also when a step fails: nothing the daemon does later lands in a pod's namespace.
import { closeSync, mkdirSync, openSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { InternalError } from "../errors";
import { CLONE, MNT_DETACH, MS, type Syscalls } from "../linux/types";
import type { NamespacePinner } from "../pods/types";

export type PinnableNamespace = "net" | "ipc" | "uts";
export type PinnedNamespaces = Partial<Record<PinnableNamespace, string>>;

const FLAG: Record<PinnableNamespace, number> = { net: CLONE.NEWNET, ipc: CLONE.NEWIPC, uts: CLONE.NEWUTS };
const O_RDONLY_CLOEXEC = 0o2000000;

export function pinNamespaces(sys: Syscalls, dir: string, podId: string, kinds: PinnableNamespace[], opts: { hostname?: string } = {}): PinnedNamespaces {
  if (kinds.length === 0) return {};
  const tid = sys.getpid();
  const saved = new Map<PinnableNamespace, number>();
  const pinned: PinnedNamespaces = {};
  try {
    for (const k of kinds) saved.set(k, sys.open(`/proc/self/task/${tid}/ns/${k}`, O_RDONLY_CLOEXEC));
    sys.unshare(kinds.reduce((f, k) => f | FLAG[k], 0));
    if (opts.hostname && kinds.includes("uts")) sys.sethostname(opts.hostname);
    for (const k of kinds) {
      const target = join(dir, k, podId);
      mkdirSync(join(dir, k), { recursive: true, mode: 0o711 });
      closeSync(openSync(target, "w", 0o444));
      sys.mount(`/proc/self/task/${tid}/ns/${k}`, target, null, MS.BIND, null);
      pinned[k] = target;
    }
  } catch (err) {
    restore(sys, saved);
    unpinNamespaces(sys, pinned);
    throw new InternalError(`pod ${podId.slice(0, 12)}: cannot make its ${kinds.join("/")} namespaces: ${(err as Error).message}`, { cause: err });
  }
  restore(sys, saved);
  return pinned;
}

function restore(sys: Syscalls, saved: Map<PinnableNamespace, number>): void {
  for (const [k, fd] of saved) {
    try {
      sys.setns(fd, FLAG[k]);
    } finally {
      sys.close(fd);
    }
  }
}

/** Unmounts and removes the pins; missing ones are fine (a second stop, a crash mid-way). */
export function unpinNamespaces(sys: Syscalls, pinned: PinnedNamespaces): void {
  for (const path of Object.values(pinned)) {
    if (!path) continue;
    try {
      sys.umount2(path, MNT_DETACH);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== "EINVAL" && code !== "ENOENT") throw err;
    }
    try {
      unlinkSync(path);
    } catch {}
  }
}

/** Pod ids with a pin of this kind under `dir` (recovery removes those no pod owns). */
export function listPins(dir: string, kind: PinnableNamespace): string[] {
  try {
    return readdirSync(join(dir, kind));
  } catch {
    return [];
  }
}

export function namespacePinner(sys: Syscalls, dir: string): NamespacePinner {
  return {
    pin: (podId, kinds, hostname) => pinNamespaces(sys, dir, podId, kinds, { hostname }),
    unpin: (pinned) => unpinNamespaces(sys, pinned),
  };
}
