// What a networking test changes on the host, put back afterwards: the nat table as it was
// (portmap adds CNI-HOSTPORT-* and CNI-DN-* chains and jumps to them from the built-in chains)
// and the test's bridge with the veths left on it.
import { execFileSync } from "node:child_process";
import { localnetGuardRule } from "../../runtime/network/localnet-guard";

export interface HostNetworkSnapshot {
  natRules: Set<string>;
  natChains: Set<string>;
}

function natSave(): string {
  try {
    return execFileSync("iptables-save", ["-t", "nat"], { encoding: "utf8" });
  } catch {
    return "";
  }
}

function parse(save: string): HostNetworkSnapshot {
  const natRules = new Set<string>();
  const natChains = new Set<string>();
  for (const line of save.split("\n")) {
    if (line.startsWith(":")) natChains.add(line.slice(1).split(" ")[0]!);
    else if (line.startsWith("-A ")) natRules.add(line);
  }
  return { natRules, natChains };
}

export function hostNetworkSnapshot(): HostNetworkSnapshot {
  return parse(natSave());
}

/** Deletes the bridge and every nat rule and chain that appeared since the snapshot; returns what it removed. */
export function restoreHostNetwork(before: HostNetworkSnapshot, bridge: string): string[] {
  const removed: string[] = [];
  try {
    execFileSync("ip", ["link", "del", bridge], { stdio: "ignore" });
    removed.push(`bridge ${bridge}`);
  } catch {}
  // berth's guard against route_localnet (CVE-2020-8558): one filter INPUT rule per bridge.
  for (;;) {
    try {
      execFileSync("iptables", ["-w", "10", "-t", "filter", "-D", ...localnetGuardRule(bridge)], { stdio: "ignore" });
      removed.push(`localnet guard of ${bridge}`);
    } catch {
      break;
    }
  }
  const now = parse(natSave());
  for (const rule of now.natRules) {
    if (before.natRules.has(rule)) continue;
    try {
      execFileSync("sh", ["-c", `iptables -t nat ${rule.replace(/^-A /, "-D ")}`], { stdio: "ignore" });
      removed.push(`nat rule ${rule}`);
    } catch {}
  }
  for (const chain of now.natChains) {
    if (before.natChains.has(chain)) continue;
    try {
      execFileSync("iptables", ["-t", "nat", "-F", chain], { stdio: "ignore" });
      execFileSync("iptables", ["-t", "nat", "-X", chain], { stdio: "ignore" });
      removed.push(`nat chain ${chain}`);
    } catch {}
  }
  return removed;
}
