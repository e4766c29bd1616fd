// A container's cgroup, opened from the daemon. Berth's own runtime records where it put the
// cgroup (state.json), which stays right even if the daemon now runs in another cgroup; for
// another runtime (runc) the path is resolved the way runc resolved it, below the caller's cgroup
// (conmon's, which is the daemon's).
import { detectCgroupLayout, locateCgroup, openCgroupManager } from "../cgroups/detect";
import type { CgroupManager } from "../cgroups/types";
import { readRecord } from "../oci/state-dir";
import type { RuntimeHandler } from "./types";

export function openCgroupOf(handler: RuntimeHandler, id: string, cgroupsPath: string): CgroupManager {
  if (handler.inProcess) {
    try {
      const loc = readRecord(handler.root, id).cgroup;
      if (loc) return openCgroupManager(loc);
    } catch {
      // Gone from the runtime (deleted, or never made): fall back to where it would be.
    }
  }
  return openCgroupManager(locateCgroup(cgroupsPath, detectCgroupLayout(), { root: "" }));
}
