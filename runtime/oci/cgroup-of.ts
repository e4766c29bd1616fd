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
  /** cgroup.procs of every hierarchy, for the init to write its own PID into. */
  procsFiles: string[];
  layout: CgroupLayoutName;
  /** The container's directory in each v1 hierarchy, for a `cgroup` mount inside it. */
  v1: CgroupV1Hierarchy[];
  /** Its v2 directory, when the host has a v2 hierarchy. */
  cgroup2Path?: string;
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

/** Makes the cgroup and applies the spec's limits; the init joins it. */
export async function prepareCgroup(spec: Spec, id: string, root?: string): Promise<PreparedCgroup> {
  const mgr = newCgroupManager(spec.linux?.cgroupsPath, { name: id, root });
  await mgr.create();
  try {
    await mgr.apply({ ...spec.linux?.resources, devices: deviceRules(spec) });
  } catch (err) {
    await mgr.destroy().catch(() => {});
    throw err;
  }
  const layout = detectCgroupLayout();
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
    procsFiles: [...new Set(Object.values(mgr.location.dirs))].map((d) => join(d, "cgroup.procs")),
    layout: hostCgroupLayout(),
    destroy: () => mgr.destroy(),
  };
}

export async function openContainerCgroup(rec: ContainerRecord): Promise<CgroupManager | undefined> {
  return rec.cgroup ? openCgroupManager(rec.cgroup) : undefined;
}
