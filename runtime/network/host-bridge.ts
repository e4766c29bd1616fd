// The bridge of berth's own network, made and addressed by berth (the bridge plugin runs with
// isGateway=false: see default-network.ts). Idempotent, so it runs at every daemon start and
// before every pod's ADD: a bridge someone deleted would otherwise be re-created by the bridge
// plugin without an address, and the host would lose its route to the pods.
import { FailedPreconditionError } from "../errors";
import { gatewayOf } from "./default-network";
import { HostToolError, runHostTool } from "./host-tool";
import { overlaps, parseIpv4, parseIpv4Cidr } from "./ipv4-cidr";

/** One link of `ip -j -d addr show`. */
interface IpLink {
  ifname: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

/**
 * The bridge `name` exists, is up and carries the first address of `subnet`. With `replacing`,
 * the first address of that previous subnet is taken off the bridge (the pod CIDR changed).
 * Refuses a subnet that overlaps an address of another interface: the host's route to the pods
 * would compete with that interface's.
 */
export async function ensureBridge(name: string, subnet: string, opts: { replacing?: string } = {}): Promise<void> {
  const cidr = parseIpv4Cidr(subnet, "pod subnet");
  const address = `${gatewayOf(subnet)}/${cidr.prefix}`;
  const links = JSON.parse(await runHostTool("ip", ["-j", "-d", "addr", "show"])) as IpLink[];
  for (const link of links) {
    if (link.ifname === name) continue;
    for (const a of inet(link)) {
      const ip = parseIpv4(a.local ?? "");
      if (ip !== undefined && overlaps(cidr, { network: ip, prefix: a.prefixlen ?? 32 })) {
        throw new FailedPreconditionError(`pod subnet ${subnet} of bridge ${name} overlaps ${a.local}/${a.prefixlen} on ${link.ifname}: choose another pod subnet`);
      }
    }
  }
  const link = links.find((l) => l.ifname === name);
  if (link && link.linkinfo?.info_kind !== "bridge") {
    throw new FailedPreconditionError(`${name} exists and is ${link.linkinfo?.info_kind ? `a ${link.linkinfo.info_kind} interface` : "not a bridge"}: berth's network needs it to be a bridge, or another bridge name`);
  }
  if (!link) await tolerateExists(runHostTool("ip", ["link", "add", name, "type", "bridge"]));
  const present = new Set(inet(link).map((a) => `${a.local}/${a.prefixlen}`));
  if (opts.replacing) {
    const old = `${gatewayOf(opts.replacing)}/${parseIpv4Cidr(opts.replacing, "previous pod subnet").prefix}`;
    if (old !== address && present.has(old)) await runHostTool("ip", ["addr", "del", old, "dev", name]);
  }
  if (!present.has(address)) await tolerateExists(runHostTool("ip", ["addr", "add", address, "dev", name]));
  if (!link?.flags?.includes("UP")) await runHostTool("ip", ["link", "set", name, "up"]);
}

function inet(link: IpLink | undefined): Array<{ local?: string; prefixlen?: number }> {
  return (link?.addr_info ?? []).filter((a) => a.family === "inet");
}

/** Another caller (a concurrent ADD's bridge plugin, a second daemon start) got there first. */
async function tolerateExists(done: Promise<string>): Promise<void> {
  try {
    await done;
  } catch (err) {
    if (!(err instanceof HostToolError && /File exists/.test(err.stderr))) throw err;
  }
}
