// The IPv4 arithmetic berth's default network needs: its subnet, the bridge's address in it, and
// whether another interface already owns part of it.
import { InvalidArgumentError } from "../errors";

export interface Ipv4Cidr {
  /** The network address as an unsigned 32-bit number (host bits cleared). */
  network: number;
  prefix: number;
}

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIpv4(text: string): number | undefined {
  const m = DOTTED.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((n, o) => n * 256 + o, 0);
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** "a.b.c.d/n" with host bits allowed (they are cleared), or an InvalidArgumentError naming `what`. */
export function parseIpv4Cidr(text: string, what = "subnet"): Ipv4Cidr {
  const [addr = "", len, extra] = text.split("/");
  const ip = parseIpv4(addr);
  const prefix = len !== undefined && /^\d{1,2}$/.test(len) ? Number(len) : Number.NaN;
  if (ip === undefined || extra !== undefined || !(prefix >= 0 && prefix <= 32)) {
    throw new InvalidArgumentError(`${what} "${text}" is not an IPv4 CIDR (a.b.c.d/n)`);
  }
  return { network: (ip & maskOf(prefix)) >>> 0, prefix };
}

export function formatCidr(c: Ipv4Cidr): string {
  return `${formatIpv4(c.network)}/${c.prefix}`;
}

/** The first host address: the one berth gives its bridge. */
export function firstHost(c: Ipv4Cidr): number {
  return (c.network + 1) >>> 0;
}

export function contains(c: Ipv4Cidr, ip: number): boolean {
  return ((ip & maskOf(c.prefix)) >>> 0) === c.network;
}

export function overlaps(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  const mask = maskOf(Math.min(a.prefix, b.prefix));
  return ((a.network & mask) >>> 0) === ((b.network & mask) >>> 0);
}
