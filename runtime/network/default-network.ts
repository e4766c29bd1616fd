// berth's own CNI network, written when the conf dir holds none: a bridge with host-local
// addresses and portmap for hostPorts. Berth gives the bridge its gateway address itself and the
// bridge plugin runs with isGateway=false, so nothing turns on ip_forward (DESIGN.md, decision 5):
// the host reaches pod IPs on the bridge's subnet directly, and a hostPort on 127.0.0.1 reaches a
// pod through portmap's DNAT with SNAT (portmap sets route_localnet on the bridge for that).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { InvalidArgumentError } from "../errors";

const run = promisify(execFile);

export const DEFAULT_CONFLIST_NAME = "10-berth.conflist";

export interface DefaultNetworkOptions {
  bridge: string;
  subnet: string;
  /** host-local's lease files (default /var/lib/cni/networks): berth keeps them under its own root. */
  ipamDataDir: string;
}

/** The first host address of an IPv4 subnet: the bridge's (gateway) address. */
export function gatewayOf(subnet: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(subnet);
  if (!m || Number(m[5]) > 30) throw new InvalidArgumentError(`pod subnet "${subnet}" is not an IPv4 CIDR with room for pods (a.b.c.d/n, n ≤ 30)`);
  const n = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const mask = Number(m[5]) === 0 ? 0 : (0xffffffff << (32 - Number(m[5]))) >>> 0;
  const gw = ((n & mask) + 1) >>> 0;
  return [gw >>> 24, (gw >>> 16) & 255, (gw >>> 8) & 255, gw & 255].join(".");
}

export function defaultConflist(o: DefaultNetworkOptions): object {
  return {
    cniVersion: "1.0.0",
    name: "berth",
    plugins: [
      {
        type: "bridge",
        bridge: o.bridge,
        isGateway: false,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: "host-local", ranges: [[{ subnet: o.subnet, gateway: gatewayOf(o.subnet) }]], dataDir: o.ipamDataDir },
      },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
    ],
  };
}

/** The bridge exists, is up and carries the gateway address (iproute2; idempotent). */
export async function ensureBridge(name: string, subnet: string, gateway = gatewayOf(subnet)): Promise<void> {
  const prefix = subnet.split("/")[1];
  const exists = await run("ip", ["link", "show", name]).then(
    () => true,
    () => false,
  );
  if (!exists) await run("ip", ["link", "add", name, "type", "bridge"]);
  const { stdout } = await run("ip", ["-4", "addr", "show", "dev", name]);
  if (!stdout.includes(` ${gateway}/${prefix} `)) await run("ip", ["addr", "add", `${gateway}/${prefix}`, "dev", name]);
  await run("ip", ["link", "set", name, "up"]);
}
