// berth's own CNI network, written when the conf dir holds none (DESIGN.md, decision 5): a Linux
// bridge with host-local addresses, and portmap for hostPorts.
//
// The bridge plugin runs with isGateway=false, so it neither addresses the bridge nor turns on
// ip_forward; berth gives the bridge the subnet's first address itself (host-bridge.ts). That is
// enough for everything that stays on the host: the host reaches pod IPs on the bridge's on-link
// route, pods reach each other through the bridge, and a hostPort reached from the host itself
// (127.0.0.1 or any local address) is DNATed by portmap in OUTPUT and leaves on the bridge. For
// 127.0.0.1, portmap's snat (marked connections are masqueraded to the bridge's address, so the
// pod can answer) needs route_localnet=1 on the bridge, which portmap sets itself. Pods get no
// default route and the host forwards nothing: reaching beyond the host, or a hostPort from
// another machine, needs ip_forward and masquerading, which berth leaves to the administrator.
// The host-local range names the bridge's address as its gateway only so that it is never leased.
import { mkdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { InvalidArgumentError } from "../errors";
import { writeFileAtomic } from "../store/atomic";
import { firstHost, formatCidr, formatIpv4, parseIpv4Cidr } from "./ipv4-cidr";
import type { DefaultNetworkOptions, LoadedNetworkConfig, NetworkConfigList, PluginConfig } from "./types";

export const DEFAULT_CONFLIST_NAME = "10-berth.conflist";
export const DEFAULT_NETWORK_NAME = "berth";

/** Linux interface names: at most 15 bytes, no "/", ":" or whitespace. */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** The bridge's address: the first host of an IPv4 subnet with room for it and at least one pod. */
export function gatewayOf(subnet: string): string {
  const cidr = parseIpv4Cidr(subnet, "pod subnet");
  if (cidr.prefix > 30) throw new InvalidArgumentError(`pod subnet "${subnet}" has no room for the bridge's address and pods: use a prefix of /30 or shorter`);
  return formatIpv4(firstHost(cidr));
}

export function defaultConflist(o: DefaultNetworkOptions): NetworkConfigList {
  if (!IFNAME.test(o.bridge)) throw new InvalidArgumentError(`bridge name "${o.bridge}" is not a Linux interface name (1-15 letters, digits, "_", "." or "-")`);
  const subnet = formatCidr(parseIpv4Cidr(o.subnet, "pod subnet"));
  return {
    cniVersion: "1.0.0",
    name: DEFAULT_NETWORK_NAME,
    plugins: [
      {
        type: "bridge",
        bridge: o.bridge,
        isGateway: false,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: "host-local", ranges: [[{ subnet, gateway: gatewayOf(subnet) }]], dataDir: o.ipamDataDir },
      },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
    ],
  };
}

/** Writes berth's network into `confDir` (atomically: a reader sees no file or the whole file). */
export async function writeDefaultNetwork(confDir: string, list: NetworkConfigList): Promise<string> {
  await mkdir(confDir, { recursive: true, mode: 0o755 });
  const file = join(confDir, DEFAULT_CONFLIST_NAME);
  await writeFileAtomic(file, `${JSON.stringify(list, null, 2)}\n`);
  return file;
}

/** The bridge and subnet of `conf` when it is the network berth wrote, else undefined. */
export function ownBridgeOf(conf: LoadedNetworkConfig): { bridge: string; subnet: string } | undefined {
  if (basename(conf.file) !== DEFAULT_CONFLIST_NAME || conf.name !== DEFAULT_NETWORK_NAME) return undefined;
  const bridge = bridgePluginOf(conf);
  const subnet = rangeOf(bridge)?.subnet;
  if (!bridge || typeof bridge.bridge !== "string" || typeof subnet !== "string") return undefined;
  return { bridge: bridge.bridge, subnet };
}

/** berth's network with its pods' subnet changed, everything else as it was. */
export function withSubnet(conf: NetworkConfigList, subnet: string): NetworkConfigList {
  const normal = formatCidr(parseIpv4Cidr(subnet, "pod subnet"));
  const gateway = gatewayOf(normal);
  return {
    cniVersion: conf.cniVersion,
    name: conf.name,
    plugins: conf.plugins.map((p) => {
      if (p.type !== "bridge" || !p.ipam) return p;
      return { ...p, ipam: { ...p.ipam, ranges: [[{ subnet: normal, gateway }]] } };
    }),
  };
}

function bridgePluginOf(conf: NetworkConfigList): PluginConfig | undefined {
  return conf.plugins.find((p) => p.type === "bridge");
}

function rangeOf(plugin: PluginConfig | undefined): { subnet?: unknown } | undefined {
  const ranges = plugin?.ipam?.ranges;
  return Array.isArray(ranges) && Array.isArray(ranges[0]) ? (ranges[0][0] as { subnet?: unknown } | undefined) : undefined;
}
