// What a plugin printed: an ADD result (CNI 0.3.x to 1.x, or the older ip4/ip6 shape), or on
// failure the spec's error object, turned into berth's typed errors.
import { type BerthError, DeadlineExceededError, FailedPreconditionError, InternalError, UnavailableError } from "../errors";
import type { PluginExit } from "./plugin-exec";
import type { CniResult } from "./types";

/** The spec's error object (section 5): code, msg, details. */
export interface CniErrorReport {
  code?: number;
  msg?: string;
  details?: string;
}

/** Well-known CNI error codes that say the configuration or environment is wrong, not the pod. */
const CONFIGURATION_CODES = new Set([1, 2, 4, 6, 7]);
/** "Try again later". */
const TRANSIENT_CODE = 11;

export function parsePluginError(stdout: string): CniErrorReport | undefined {
  try {
    const doc = JSON.parse(stdout) as unknown;
    if (typeof doc !== "object" || doc === null) return undefined;
    const { code, msg, details } = doc as Record<string, unknown>;
    if (typeof msg !== "string" && typeof code !== "number") return undefined;
    return { code: typeof code === "number" ? code : undefined, msg: typeof msg === "string" ? msg : undefined, details: typeof details === "string" && details ? details : undefined };
  } catch {
    return undefined;
  }
}

/**
 * The error for a plugin run that failed. `what` says which invocation (command, pod, plugin,
 * network); the rest is the plugin's own account: its error object, else the end of its stderr.
 */
export function pluginFailure(what: string, exit: PluginExit, timeoutMs: number): BerthError {
  if (exit.timedOut) return new DeadlineExceededError(`${what}: the plugin did not finish within ${timeoutMs / 1000} s and was killed`);
  const report = parsePluginError(exit.stdout);
  if (report) {
    const text = `${report.msg ?? "error"}${report.details ? `: ${report.details}` : ""}${report.code !== undefined ? ` (CNI error code ${report.code})` : ""}`;
    if (report.code !== undefined && CONFIGURATION_CODES.has(report.code)) return new FailedPreconditionError(`${what}: ${text}`);
    if (report.code === TRANSIENT_CODE) return new UnavailableError(`${what}: ${text}`);
    return new InternalError(`${what}: ${text}`);
  }
  const said = lastLines(exit.stderr || exit.stdout, 5);
  const how = exit.code !== null ? `exited with code ${exit.code}` : `was killed by ${exit.signal}`;
  return new InternalError(`${what}: the plugin ${how}${said ? `: ${said}` : " without a message"}`);
}

/** An ADD's stdout as a result object, or undefined if it is not one. */
export function parseResult(stdout: string): CniResult | undefined {
  try {
    const doc = JSON.parse(stdout) as unknown;
    return typeof doc === "object" && doc !== null && !Array.isArray(doc) ? (doc as CniResult) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pod's IP addresses without prefix length, IPv4 first (CRI's PodIP is the first and
 * kubelet expects IPv4 there on a dual-stack node). An address tied to an interface outside the
 * pod (no sandbox: a host-side bridge or veth) is not the pod's.
 */
export function ipsOf(result: unknown): string[] {
  const r = (result ?? {}) as CniResult;
  const addresses: string[] = [];
  for (const ip of Array.isArray(r.ips) ? r.ips : []) {
    const iface = typeof ip.interface === "number" ? r.interfaces?.[ip.interface] : undefined;
    if (iface && !iface.sandbox) continue;
    if (typeof ip.address === "string") addresses.push(ip.address);
  }
  for (const legacy of [r.ip4, r.ip6]) if (typeof legacy?.ip === "string") addresses.push(legacy.ip);
  const bare = [...new Set(addresses.map((a) => a.split("/")[0]!).filter(Boolean))];
  return [...bare.filter((a) => !a.includes(":")), ...bare.filter((a) => a.includes(":"))];
}

/** The name of the pod-side interface the plugins made, `ifName` when the result does not say. */
export function podInterfaceOf(result: unknown, ifName: string): string {
  const interfaces = ((result ?? {}) as CniResult).interfaces;
  const inPod = Array.isArray(interfaces) ? interfaces.filter((i) => i.sandbox && i.name) : [];
  return (inPod.find((i) => i.name === ifName) ?? inPod[0])?.name ?? ifName;
}

function lastLines(text: string, n: number): string {
  return text.trim().split("\n").slice(-n).join(" | ");
}
