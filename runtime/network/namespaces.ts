// A pod's network, IPC and UTS namespaces without a pause process (DESIGN.md, decision 4), made
// in-process the way CRI-O's pinns makes them in a helper: the calling thread unshares, sets the
// pod's hostname, bind-mounts its new namespace files onto <dir>/<kind>/<podId>, and setns()es
// back to the namespaces it saved. These kinds are per thread, so no other thread of the daemon
// ever sees them, and all of it is synchronous: no JavaScript callback, timer or child spawn can
// run on this thread while it is inside the pod's namespaces. Going back happens in `finally` and
// is verified; a thread that could not go back is reported as such, because everything the
// daemon spawned afterwards (libuv forks from this thread) would start in the pod's namespaces.
//
// The pin directory keeps the propagation its parent mount has (no private/unbindable bind of it
// onto itself). pinns makes its directory unbindable only for mount-namespace pins, where the
// kernel requires it to prevent loops; net/ipc/uts pins need nothing. Left shared (systemd's
// default), an unmount of a pin also reaches the slave copies that mount namespaces created
// after the pin hold (services with PrivateTmp, for instance), so the namespace is freed when the
// pod goes; a private directory would leave those copies keeping it alive.
import { closeSync, mkdirSync, openSync, readdirSync, readlinkSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { AlreadyExistsError, InternalError, InvalidArgumentError, UnsafeStateError } from "../errors";
import { CLONE, MNT_DETACH, MS, type Syscalls } from "../linux/types";
import type { NamespacePinner, PinnableNamespace, PinnedNamespaces } from "./types";

const KINDS: readonly PinnableNamespace[] = ["net", "ipc", "uts"];
const CLONE_FLAG: Record<PinnableNamespace, number> = { net: CLONE.NEWNET, ipc: CLONE.NEWIPC, uts: CLONE.NEWUTS };
/** O_RDONLY | O_CLOEXEC: the saved namespace fds must not leak into plugins or conmon. */
const O_RDONLY_CLOEXEC = 0o2000000;
/**
 * The calling thread's namespaces. For the main thread this is /proc/self/task/<pid>/ns; naming
 * the thread rather than the process keeps it right wherever the caller runs.
 */
const THREAD_NS = "/proc/thread-self/ns";
/** What CNI accepts as a container id, which also keeps the id a single path component. */
const POD_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * Creates the pod's namespaces of `kinds` and pins each at <dir>/<kind>/<podId>. With `hostname`
 * and "uts" among the kinds, the new UTS namespace gets that hostname. Either every requested pin
 * exists afterwards or none does.
 */
export function pinNamespaces(sys: Syscalls, dir: string, podId: string, kinds: PinnableNamespace[], opts: { hostname?: string } = {}): PinnedNamespaces {
  const wanted = KINDS.filter((k) => kinds.includes(k));
  if (wanted.length === 0) return {};
  if (!POD_ID.test(podId)) throw new InvalidArgumentError(`cannot pin namespaces for pod id "${podId}": an id is letters, digits, "_", "." and "-", starting with a letter or digit`);
  const files = createPinFiles(dir, podId, wanted);
  const pinned: PinnedNamespaces = {};
  try {
    inNewNamespaces(sys, wanted, () => {
      if (opts.hostname !== undefined && wanted.includes("uts")) sys.sethostname(opts.hostname);
      for (const kind of wanted) {
        sys.mount(`${THREAD_NS}/${kind}`, files[kind]!, null, MS.BIND, null);
        pinned[kind] = files[kind];
      }
    });
  } catch (err) {
    unpinQuietly(sys, pinned);
    for (const kind of wanted) if (!pinned[kind]) removeFile(files[kind]!);
    if (err instanceof ThreadNotReturnedError) throw err;
    throw new InternalError(`pod ${podId}: cannot make its ${wanted.join("/")} namespaces under ${dir}: ${(err as Error).message}`, { cause: err });
  }
  return pinned;
}

/** Unmounts and removes pins; a pin that is already gone (a second stop, a crash mid-way) is fine. */
export function unpinNamespaces(sys: Syscalls, pinned: PinnedNamespaces): void {
  const failures: string[] = [];
  for (const path of Object.values(pinned)) {
    if (!path) continue;
    try {
      sys.umount2(path, MNT_DETACH);
    } catch (err) {
      // EINVAL: not a mount point any more (already unmounted); ENOENT: the file is gone too.
      const code = (err as { code?: string }).code;
      if (code !== "EINVAL" && code !== "ENOENT") {
        failures.push(`${path}: ${(err as Error).message}`);
        continue;
      }
    }
    try {
      unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") failures.push(`${path}: ${(err as Error).message}`);
    }
  }
  if (failures.length) throw new InternalError(`cannot remove pinned namespaces (the pod's namespaces stay alive until they are unmounted): ${failures.join("; ")}`);
}

/**
 * Every pin under `dir`, by pod id: after a crash the pod service removes the pins of pods it has
 * no record of.
 */
export function listPinnedNamespaces(dir: string): Map<string, PinnedNamespaces> {
  const pods = new Map<string, PinnedNamespaces>();
  for (const kind of KINDS) {
    let ids: string[];
    try {
      ids = readdirSync(join(dir, kind));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    for (const id of ids) {
      const pins = pods.get(id) ?? {};
      pins[kind] = join(dir, kind, id);
      pods.set(id, pins);
    }
  }
  return pods;
}

/** The pod service's pinner over one pin directory. */
export function namespacePinner(sys: Syscalls, dir: string): NamespacePinner {
  return {
    pin: (podId, kinds, hostname) => pinNamespaces(sys, dir, podId, kinds, { hostname }),
    unpin: (pinned) => unpinNamespaces(sys, pinned),
  };
}

/**
 * The calling thread could not get back into the daemon's own namespaces. The daemon should exit
 * (and be restarted): what it would spawn from that thread would start in a pod's namespaces.
 */
export class ThreadNotReturnedError extends UnsafeStateError {}

/**
 * Runs `fn` synchronously on the calling thread inside the network namespace pinned at `nsPath`,
 * then goes back (verified, as for pinning). A socket made in `fn` stays in that namespace.
 */
export function inNetworkNamespace<T>(sys: Syscalls, nsPath: string, fn: () => T): T {
  const own = [readlinkSync(`${THREAD_NS}/net`)];
  const target = sys.open(nsPath, O_RDONLY_CLOEXEC);
  const saved: number[] = [];
  try {
    saved.push(sys.open(`${THREAD_NS}/net`, O_RDONLY_CLOEXEC));
    sys.setns(target, CLONE.NEWNET);
    try {
      return fn();
    } finally {
      returnToSaved(sys, ["net"], saved, own);
    }
  } finally {
    sys.close(target);
  }
}

/** Runs `fn` in new namespaces of `kinds` on the calling thread, which always goes back afterwards. */
function inNewNamespaces(sys: Syscalls, kinds: PinnableNamespace[], fn: () => void): void {
  const own = kinds.map((k) => readlinkSync(`${THREAD_NS}/${k}`));
  const saved: number[] = [];
  try {
    for (const kind of kinds) saved.push(sys.open(`${THREAD_NS}/${kind}`, O_RDONLY_CLOEXEC));
    sys.unshare(kinds.reduce((flags, k) => flags | CLONE_FLAG[k], 0));
    fn();
  } finally {
    returnToSaved(sys, kinds, saved, own);
  }
}

function returnToSaved(sys: Syscalls, kinds: PinnableNamespace[], saved: number[], own: string[]): void {
  const failures: string[] = [];
  saved.forEach((fd, i) => {
    try {
      sys.setns(fd, CLONE_FLAG[kinds[i]!]);
    } catch (err) {
      failures.push(`${kinds[i]}: ${(err as Error).message}`);
    }
  });
  for (const fd of saved) {
    try {
      sys.close(fd);
    } catch {
      // A close that fails leaks one fd; it cannot leave the thread anywhere wrong.
    }
  }
  kinds.forEach((kind, i) => {
    const now = readlinkSync(`${THREAD_NS}/${kind}`);
    if (now !== own[i] && !failures.some((f) => f.startsWith(`${kind}:`))) failures.push(`${kind}: still in ${now}, not ${own[i]}`);
  });
  if (failures.length) {
    throw new ThreadNotReturnedError(
      `berth's thread did not return to its own namespaces after pinning a pod's (${failures.join("; ")}); processes it starts now would run in the pod's namespaces: restart berth`,
    );
  }
}

/** Empty files to mount the pins on, made before leaving the daemon's namespaces. */
function createPinFiles(dir: string, podId: string, kinds: PinnableNamespace[]): Partial<Record<PinnableNamespace, string>> {
  const files: Partial<Record<PinnableNamespace, string>> = {};
  try {
    for (const kind of kinds) {
      const path = join(dir, kind, podId);
      mkdirSync(join(dir, kind), { recursive: true, mode: 0o711 });
      closeSync(openSync(path, "wx", 0o444));
      files[kind] = path;
    }
  } catch (err) {
    for (const path of Object.values(files)) removeFile(path!);
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EEXIST") throw new AlreadyExistsError(`pod ${podId} already has pinned namespaces (${e.path} exists): unpin them before pinning again`);
    throw new InternalError(`pod ${podId}: cannot create its namespace pin files under ${dir}: ${e.message}`, { cause: err });
  }
  return files;
}

function unpinQuietly(sys: Syscalls, pinned: PinnedNamespaces): void {
  try {
    unpinNamespaces(sys, pinned);
  } catch {
    // The caller reports the failure that brought it here; a pin left behind is listed by
    // listPinnedNamespaces and removed by recovery.
  }
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
