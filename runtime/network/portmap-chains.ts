// portmap's pod DEL removes the pod's CNI-DN-* chain but leaves its top-level nat chains
// (CNI-HOSTPORT-DNAT, -SETMARK, -MASQ) and the jumps to them from PREROUTING, OUTPUT and
// POSTROUTING, for every later packet to traverse. For berth's own network, berth removes them
// once CNI-HOSTPORT-DNAT is empty, i.e. no pod on this host, berth's or another runtime's, has a
// hostPort; the next ADD with a hostPort makes them again. Only berth's own network: chains a
// network written by an administrator brings are left to whoever manages that network.
//
// The removal is one iptables-restore transaction, and it deletes CNI-HOSTPORT-DNAT without
// flushing it: should a hostPort have been added between the look and the removal, deleting the
// non-empty chain fails and the whole transaction with it, leaving everything as it was.
import { HostToolError, runHostTool } from "./host-tool";

const DNAT = "CNI-HOSTPORT-DNAT";
const SETMARK = "CNI-HOSTPORT-SETMARK";
const MASQ = "CNI-HOSTPORT-MASQ";
const JUMP = /^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-HOSTPORT-(DNAT|SETMARK|MASQ)$/;
/** How iptables-restore says a chain is still in use (nft, then legacy's two errnos). */
const IN_USE = /Device or resource busy|Too many links|Directory not empty/;

/**
 * Serialises berth's own ADDs with the removal: portmap creates SETMARK before the pod's chain
 * that jumps to it, so a removal between the two would fail that ADD.
 */
export class PortmapChains {
  private adding = 0;
  private removal: Promise<boolean> | undefined;

  /** Runs an ADD that may need the chains, after any removal under way. */
  async whileAdding<T>(add: () => Promise<T>): Promise<T> {
    while (this.removal) await this.removal.catch(() => false);
    this.adding++;
    try {
      return await add();
    } finally {
      this.adding--;
    }
  }

  /** Removes the chains if nothing uses them and no ADD is under way; true if it did. */
  async removeIfIdle(): Promise<boolean> {
    if (this.adding > 0 || this.removal) return false;
    this.removal = removeIdlePortmapChains();
    try {
      return await this.removal;
    } finally {
      this.removal = undefined;
    }
  }
}

/** The transaction that removes portmap's top-level chains, or undefined if they are absent or in use. */
export function idleChainsRemoval(natSave: string): string | undefined {
  const lines = natSave.split("\n");
  const chains = new Set(lines.filter((l) => l.startsWith(":")).map((l) => l.slice(1).split(" ")[0]));
  if (!chains.has(DNAT) || lines.some((l) => l.startsWith(`-A ${DNAT} `))) return undefined;
  const script = ["*nat"];
  // iptables-save prints rules in the syntax iptables-restore reads, comments quoted.
  for (const l of lines) if (JUMP.test(l)) script.push(`-D ${l.slice(3)}`);
  for (const c of [SETMARK, MASQ]) if (chains.has(c)) script.push(`-F ${c}`);
  for (const c of [SETMARK, MASQ, DNAT]) if (chains.has(c)) script.push(`-X ${c}`);
  script.push("COMMIT", "");
  return script.join("\n");
}

export async function removeIdlePortmapChains(): Promise<boolean> {
  const script = idleChainsRemoval(await runHostTool("iptables-save", ["-t", "nat"]));
  if (!script) return false;
  try {
    await runHostTool("iptables-restore", ["-w", "10", "--noflush"], { input: script });
  } catch (err) {
    if (err instanceof HostToolError && IN_USE.test(err.stderr)) return false;
    throw err;
  }
  return true;
}
