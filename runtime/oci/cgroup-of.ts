// A container's cgroup as `berth runtime` uses it: made and limited by the launcher at create,
// joined by the init, reopened from state.json by state/kill/delete/exec.
import { join } from "node:path";
import { detectCgroupLayout, newCgroupManager, openCgroupManager } from "../cgroups/detect";
import type { CgroupLocation, CgroupManager } from "../cgroups/types";
import { type CgroupLayout, type CgroupV1Hierarchy, DEFAULT_DEVICES } from "./rootfs";
import type { DeviceCgroupRule, Spec } from "./spec-types";
import type { ContainerRecord } from "./state-dir";

export type CgroupLayoutName = CgroupLayout;

export interface PreparedCgroup {
  location: CgroupLocation;
  path: string;
  /** How the stage joins it (cgroupJoins). */
  joins: CgroupJoins;
  layout: CgroupLayoutName;
  /** The container's directory in each v1 hierarchy, for a `cgroup` mount inside it. */
  v1: CgroupV1Hierarchy[];
  /** Its v2 directory, when the host has a v2 hierarchy. */
  cgroup2Path?: string;
  /** Applies the spec's resources and device rules. */
  limit(spec: Spec): Promise<void>;
  /** How many processes the OOM killer ended in it (0 where it cannot tell). */
  oomKills(): Promise<number>;
  destroy(): Promise<void>;
}

export function hostCgroupLayout(): CgroupLayoutName {
  const mode = detectCgroupLayout().mode;
  return mode === "unified" ? "v2" : mode === "hybrid" ? "hybrid" : "v1";
}

/**
 * The devices every container may use whatever its rules say, appended after them as runc's
 * specconv does: mknod of any node (the init creates /dev), the default nodes, the terminal.
 */
const ALLOWED_DEVICES: DeviceCgroupRule[] = [
  { allow: true, type: "c", access: "m" },
  { allow: true, type: "b", access: "m" },
  ...DEFAULT_DEVICES.map((d): DeviceCgroupRule => ({ allow: true, type: "c", major: d.major, minor: d.minor, access: "rwm" })),
  { allow: true, type: "c", major: 136, access: "rwm" },
  { allow: true, type: "c", major: 5, minor: 2, access: "rwm" },
];

/** The device rules a container's cgroup gets: the spec's, the defaults, and its linux.devices. */
export function deviceRules(spec: Spec): DeviceCgroupRule[] {
  const own = (spec.linux?.devices ?? []).map(
    (d): DeviceCgroupRule => ({ allow: true, type: d.type === "b" ? "b" : "c", major: d.major, minor: d.minor, access: "rwm" }),
  );
  return [...(spec.linux?.resources?.devices ?? []), ...ALLOWED_DEVICES, ...own.filter((d) => d.major !== undefined)];
}

/** Files a stage process writes to join a container's cgroup, and those its launcher writes for it. */
export interface CgroupJoins {
  /** The stage writes "0" (itself) into these once Node has booted. */
  stage: string[];
  /** The launcher writes the stage's PID into these as soon as it is spawned. */
  launcher: string[];
}

/**
 * How a stage (init or exec) joins a container's cgroup. The stage joins once Node has booted in
 * it, so that Node's start-up is not charged to the container, by writing "0" (the writer): into
 * each v1 hierarchy's `tasks`, which moves the calling thread alone — the one that execs; Node's
 * helper threads end at execve — because moving a whole thread group (cgroup.procs) makes the
 * kernel wait for an RCU grace period first (cgroup_threadgroup_rwsem), 10-18 ms on this machine
 * against 0.3 ms; into cgroup.procs where v2 carries the controllers. On a hybrid host the v2
 * hierarchy carries none, so nothing can be charged there: the launcher moves the stage in by PID
 * right after spawning it, and that wait overlaps the stage's Node boot.
 */
export function cgroupJoins(location: CgroupLocation): CgroupJoins {
  if (location.version === 2) return { stage: [join(location.dirs.unified!, "cgroup.procs")], launcher: [] };
  const { unified, ...v1 } = location.dirs;
  return { stage: [...new Set(Object.values(v1))].map((d) => join(d, "tasks")), launcher: unified ? [join(unified, "cgroup.procs")] : [] };
}

/**
 * Makes the cgroup, without limits yet: create moves the init in as soon as the directories exist
 * (the kernel's wait for that overlaps the schema check), then applies the validated spec's
 * limits with `limit`, before the init is told to go on.
 */
export async function makeCgroup(spec: Spec, id: string, root?: string): Promise<PreparedCgroup> {
  const layout = detectCgroupLayout();
  const mgr = newCgroupManager(spec.linux?.cgroupsPath, { name: id, root, layout });
  await mgr.create();
  const v1 = new Map<string, CgroupV1Hierarchy>();
  for (const [controller, h] of Object.entries(layout.v1)) {
    const dir = mgr.location.dirs[controller];
    if (dir && !v1.has(h.mountpoint)) v1.set(h.mountpoint, { mountpoint: h.mountpoint, path: dir });
  }
  return {
    v1: [...v1.values()],
    cgroup2Path: mgr.location.dirs.unified,
    location: mgr.location,
    path: mgr.path,
    joins: cgroupJoins(mgr.location),
    layout: layout.mode === "unified" ? "v2" : layout.mode === "hybrid" ? "hybrid" : "v1",
    limit: (validated: Spec) => mgr.apply({ ...validated.linux?.resources, devices: deviceRules(validated) }),
    oomKills: () => mgr.stats().then((s) => s.memory.oomKills, () => 0),
    destroy: () => mgr.destroy(),
  };
}

export async function openContainerCgroup(rec: ContainerRecord): Promise<CgroupManager | undefined> {
  return rec.cgroup ? openCgroupManager(rec.cgroup) : undefined;
}
