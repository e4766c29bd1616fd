// Where a registry host's content can be fetched: its mirrors in the configured order, then the
// host itself. Plain HTTP only where the configuration says so — no host is trusted implicitly,
// not even localhost, so a mistyped port never downgrades a pull silently.
import { InvalidArgumentError } from "../../errors";
import { DOCKER_HUB_DOMAIN } from "../reference";
import type { RegistryAuth, RegistryEndpoint, RegistryHostConfig } from "../types";

/** docker.io's API does not live at docker.io. */
export const DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io";

/** One mirror, as written in the daemon config. */
export interface MirrorConfig {
  url: string;
  /** Repository path prefix on the mirror: "hub" makes library/busybox be fetched as hub/library/busybox. */
  pathPrefix?: string;
  caFile?: string;
  insecureSkipVerify?: boolean;
  auth?: RegistryAuth;
}

/** One entry of the daemon config's `registries` list. */
export interface RegistryConfigEntry {
  /** "docker.io", "registry.example.com", "127.0.0.1:5000". */
  host: string;
  mirrors?: MirrorConfig[];
  /** Plain HTTP allowed for the host itself. */
  insecure?: boolean;
  caFile?: string;
  insecureSkipVerify?: boolean;
  auth?: RegistryAuth;
  /** Use only the mirrors, never the host itself (an air-gapped site). */
  skipSelf?: boolean;
}

/** The daemon config's registry section. */
export interface RegistriesConfig {
  registries?: RegistryConfigEntry[];
  /** `--insecure-registry` values: "HOST[:PORT]" (a scheme prefix is ignored) or an IPv4 CIDR. */
  insecureRegistries?: string[];
}

/** RegistryHostConfig plus what types.ts has no field for yet. */
export interface HostConfig extends RegistryHostConfig {
  skipSelf?: boolean;
}

const HUB_ALIASES = new Set([DOCKER_HUB_DOMAIN, "index.docker.io", "registry-1.docker.io"]);

function canonicalHost(host: string): string {
  const h = host
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, "")
    .replace(/\/.*$/, "")
    .toLowerCase();
  return HUB_ALIASES.has(h) ? DOCKER_HUB_DOMAIN : h;
}

function ipv4ToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function inCidr(host: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split("/");
  const bits = Number(bitsText);
  const hostIp = ipv4ToInt(host.replace(/:\d+$/, ""));
  const netIp = ipv4ToInt(net ?? "");
  if (hostIp === undefined || netIp === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (hostIp & mask) === (netIp & mask);
}

/** True when `--insecure-registry` names the host: exactly as HOST[:PORT], or by an IPv4 CIDR. */
export function isInsecureHost(host: string, insecureRegistries: readonly string[]): boolean {
  const h = canonicalHost(host);
  return insecureRegistries.some((entry) => {
    const e = entry.trim();
    if (/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(e)) return inCidr(h, e);
    return canonicalHost(e) === h;
  });
}

function checkUrl(url: string, where: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError(`${where}: "${url}" is not a URL (want http://HOST[:PORT] or https://HOST[:PORT])`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new InvalidArgumentError(`${where}: "${url}" must be http:// or https://`);
  return u.origin;
}

/** The configuration for `host`: its config entry (if any) with the insecure list applied. */
export function resolveHostConfig(host: string, config: RegistriesConfig): HostConfig {
  const wanted = canonicalHost(host);
  const entry = config.registries?.find((r) => canonicalHost(r.host) === wanted);
  const insecure = Boolean(entry?.insecure) || isInsecureHost(wanted, config.insecureRegistries ?? []);
  const mirrors: RegistryEndpoint[] = (entry?.mirrors ?? []).map((m, i) => {
    const ep: RegistryEndpoint = { url: checkUrl(m.url, `registry ${host} mirror ${i + 1}`) };
    if (m.pathPrefix) ep.pathPrefix = m.pathPrefix.replace(/^\/+|\/+$/g, "");
    if (m.caFile) ep.caFile = m.caFile;
    if (m.insecureSkipVerify) ep.insecureSkipVerify = true;
    if (m.auth) ep.auth = m.auth;
    return ep;
  });
  const self: RegistryEndpoint = { url: selfUrl(wanted, insecure) };
  if (entry?.caFile) self.caFile = entry.caFile;
  if (entry?.insecureSkipVerify) self.insecureSkipVerify = true;
  const out: HostConfig = { host: wanted, mirrors, self, insecure };
  if (entry?.auth) out.auth = entry.auth;
  if (entry?.skipSelf) out.skipSelf = true;
  return out;
}

function selfUrl(host: string, insecure: boolean): string {
  if (host === DOCKER_HUB_DOMAIN) return DOCKER_HUB_ENDPOINT;
  return `${insecure ? "http" : "https"}://${host}`;
}

/** The host's own endpoint, where pushes go. */
export function selfEndpoint(cfg: HostConfig): RegistryEndpoint {
  const ep: RegistryEndpoint = { ...(cfg.self ?? { url: selfUrl(canonicalHost(cfg.host), Boolean(cfg.insecure)) }) };
  if (!ep.auth && cfg.auth) ep.auth = cfg.auth;
  return ep;
}

/** Endpoints to try in order: mirrors, then the host itself unless skipped. */
export function endpointsOf(cfg: HostConfig): RegistryEndpoint[] {
  const out = [...cfg.mirrors];
  if (!cfg.skipSelf) out.push(selfEndpoint(cfg));
  if (out.length === 0) throw new InvalidArgumentError(`registry ${cfg.host}: no endpoint to reach it (skipSelf is set and there are no mirrors)`);
  return out;
}
