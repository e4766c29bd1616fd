// What oom_score_adj a container may ask for on this host. Lowering a process's score below what
// it inherited needs CAP_SYS_RESOURCE; where the host's bounding set lacks it (this machine), every
// Guaranteed pod's -997 (kubelet's QoS score) would fail to apply in the runtime and leave a
// warning with each create and each exec. containerd's `restrict_oom_score_adj` answers that by
// raising a request to the daemon's own score, which its children inherit and may always write
// again; berth does the same, and turns it on by itself where the capability is missing.
import { readFileSync } from "node:fs";
import { capNumber, effectiveMask } from "../security/capabilities";

/** Whether `status` (a /proc/PID/status text) shows CAP_SYS_RESOURCE among the effective capabilities. */
export function hasSysResource(status: string): boolean {
  const mask = effectiveMask(status);
  return mask !== undefined && ((mask >> BigInt(capNumber("CAP_SYS_RESOURCE"))) & 1n) === 1n;
}

/**
 * The lowest oom_score_adj a container gets: this process's own score when `restrict` says so,
 * or, left unset, when this process cannot lower a score (no CAP_SYS_RESOURCE); undefined: none.
 */
export function decideOomScoreAdjFloor(restrict: boolean | undefined, read: (path: string) => string = (p) => readFileSync(p, "utf8")): number | undefined {
  if (restrict === false) return undefined;
  if (restrict === undefined && hasSysResource(read("/proc/self/status"))) return undefined;
  return Number.parseInt(read("/proc/self/oom_score_adj").trim(), 10) || 0;
}

/** containerd's restrictOOMScoreAdj: a request below the floor gets the floor. */
export function restrictOomScoreAdj(requested: number, floor: number | undefined): number {
  return floor !== undefined && requested < floor ? floor : requested;
}
