// portmap's snat, which makes hostPorts on 127.0.0.1 work, sets route_localnet=1 on the bridge.
// That also lets anything on the bridge send packets addressed to 127.0.0.0/8 and have the host
// accept them (CVE-2020-8558): a pod with CAP_NET_ADMIN could reach services the host binds to
// localhost only. Kubernetes answers with a DROP rule in KUBE-FIREWALL; berth, which may run
// without kubelet, keeps one rule per bridge of its own network: new connections arriving on the
// bridge for 127.0.0.0/8 are dropped, while the replies of a localhost hostPort connection
// (ESTABLISHED, de-NATed back to 127.0.0.1) pass.
import { HostToolError, runHostTool } from "./host-tool";

/** The rule as iptables arguments after the table: chain first, then the match and target. */
export function localnetGuardRule(bridge: string): string[] {
  return [
    "INPUT",
    "-i",
    bridge,
    "-d",
    "127.0.0.0/8",
    "-m",
    "conntrack",
    "!",
    "--ctstate",
    "RELATED,ESTABLISHED,DNAT",
    "-m",
    "comment",
    "--comment",
    `berth: no new connections from ${bridge} to the host's 127.0.0.0/8`,
    "-j",
    "DROP",
  ];
}

/** The rule is in the filter table's INPUT chain (inserted first, so no ACCEPT before it lets the packets in). */
export async function ensureLocalnetGuard(bridge: string): Promise<void> {
  const [chain, ...spec] = localnetGuardRule(bridge);
  try {
    await runHostTool("iptables", ["-w", "10", "-t", "filter", "-C", chain!, ...spec]);
    return;
  } catch (err) {
    // iptables -C exits 1 when the rule is absent; anything else is a real failure.
    if (!(err instanceof HostToolError && err.exitCode === 1)) throw err;
  }
  await runHostTool("iptables", ["-w", "10", "-t", "filter", "-I", chain!, "1", ...spec]);
}

/** Removes the rule (every copy of it); absent is fine. */
export async function removeLocalnetGuard(bridge: string): Promise<void> {
  for (;;) {
    try {
      await runHostTool("iptables", ["-w", "10", "-t", "filter", "-D", ...localnetGuardRule(bridge)]);
    } catch (err) {
      if (err instanceof HostToolError && err.exitCode === 1) return;
      throw err;
    }
  }
}
