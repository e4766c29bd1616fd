// Admission by host ports, as kubelet admits a pod (the scheduler's NodePorts check, which
// kubelet runs again for every pod it is given): two pods cannot take the same host port. Without
// it the second pod would start, look healthy and never receive a connection (portmap's first
// DNAT rule wins). As kubelet admits a pod once, when it is added, a pod that runs is never refused
// and what it holds is taken first — a new object never pushes a running one out — then the
// folder's order decides. A refused pod is not made; it is reported, and made once the port is free.
import { type DesiredPod, type HostPortClaim, keyString } from "./types";

/** Whether two claims meet: same protocol and port, and the same address or an "all addresses" one. */
export function claimsMeet(a: HostPortClaim, b: HostPortClaim): boolean {
  const any = (ip: string) => ip === "" || ip === "0.0.0.0" || ip === "::";
  return a.protocol === b.protocol && a.port === b.port && (a.ip === b.ip || any(a.ip) || any(b.ip));
}

function claimText(c: HostPortClaim): string {
  return `${c.ip || "0.0.0.0"}:${c.port}/${c.protocol}`;
}

/**
 * The pods refused, by uid, with why. `runs(pod)`: a pod of that namespace and name runs now (in
 * any version: a Pod being replaced passes its ports on). A Deployment's replicas are distinct pods.
 */
export function refuseByHostPorts(pods: DesiredPod[], runs: (p: DesiredPod) => boolean): Map<string, string> {
  const taken: Array<{ claim: HostPortClaim; pod: DesiredPod }> = [];
  for (const pod of pods.filter(runs)) for (const claim of pod.hostPorts) taken.push({ claim, pod });
  const refused = new Map<string, string>();
  for (const pod of pods.filter((p) => !runs(p))) {
    let why: string | undefined;
    for (const claim of pod.hostPorts) {
      const holder = taken.find((t) => claimsMeet(t.claim, claim) && (t.pod.namespace !== pod.namespace || t.pod.name !== pod.name));
      if (holder) {
        why = `pod ${pod.name}: hostPort ${claimText(claim)} (${claim.field}) is taken by pod ${holder.pod.namespace}/${holder.pod.name} of ${keyString(holder.pod.owner)} (${claimText(holder.claim)}); not started until it is free`;
        break;
      }
    }
    if (why) refused.set(pod.uid, why);
    else for (const claim of pod.hostPorts) taken.push({ claim, pod });
  }
  return refused;
}
