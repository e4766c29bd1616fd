// portmap leaves its top-level nat chains (CNI-HOSTPORT-DNAT, -SETMARK, -MASQ) and the jumps to
// them in PREROUTING, OUTPUT and POSTROUTING after the last pod's DEL. Berth removes them when
// CNI-HOSTPORT-DNAT no longer sends anywhere, i.e. no pod on this host (berth's or another
// runtime's) has a hostPort left; the next ADD makes them again.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const CHAINS = ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"];

export async function removeIdlePortmapChains(): Promise<boolean> {
  let save: string;
  try {
    save = (await run("iptables-save", ["-t", "nat"])).stdout;
  } catch {
    return false;
  }
  const lines = save.split("\n");
  if (!lines.some((l) => l.startsWith(":CNI-HOSTPORT-DNAT "))) return false;
  if (lines.some((l) => l.startsWith("-A CNI-HOSTPORT-DNAT "))) return false;
  for (const rule of lines.filter((l) => /^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-HOSTPORT-/.test(l))) {
    // iptables-save quotes comments; split keeping quoted words whole.
    const args = (rule.match(/"[^"]*"|\S+/g) ?? []).map((a) => a.replace(/^"|"$/g, ""));
    args[0] = "-D";
    await run("iptables", ["-t", "nat", ...args]).catch(() => {});
  }
  for (const c of CHAINS) await run("iptables", ["-t", "nat", "-F", c]).catch(() => {});
  for (const c of CHAINS) await run("iptables", ["-t", "nat", "-X", c]).catch(() => {});
  return true;
}
