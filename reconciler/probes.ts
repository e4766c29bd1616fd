// One probe attempt, as kubelet's prober makes it: exec through ExecSync (exit 0 succeeds),
// HTTP GET (200-399 succeeds; redirects are not followed), TCP connect. Each attempt has the
// probe's timeout; a probe that cannot even be attempted fails with the reason.
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import type { V1Probe } from "@kubernetes/client-node";
import type { RuntimeService } from "../runtime/api/runtime";

export interface ProbeTarget {
  containerId: string;
  /** The pod's IP, or 127.0.0.1 for a host-network pod. */
  host: string;
  namedPorts: Record<string, number>;
}

export interface ProbeResult {
  ok: boolean;
  message: string;
}

export async function probeOnce(runtime: RuntimeService, probe: V1Probe, target: ProbeTarget): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.exec) {
      const res = await runtime.execSync({ containerId: target.containerId, cmd: probe.exec.command ?? [], timeout: String(probe.timeoutSeconds ?? 1) });
      const out = Buffer.from(res.stdout ?? "").toString().trim().slice(0, 200);
      return { ok: res.exitCode === 0, message: `exec ${JSON.stringify(probe.exec.command)} exited ${res.exitCode}${out ? `: ${out}` : ""}` };
    }
    if (probe.httpGet) {
      const g = probe.httpGet;
      const port = portOf(g.port, target);
      const host = g.host || target.host;
      const path = g.path ?? "/";
      const status = await httpGet(g.scheme === "HTTPS" ? "https" : "http", host, port, path, g.httpHeaders ?? [], timeoutMs);
      return { ok: status >= 200 && status < 400, message: `GET ${host}:${port}${path} answered ${status}` };
    }
    if (probe.tcpSocket) {
      const port = portOf(probe.tcpSocket.port, target);
      const host = probe.tcpSocket.host || target.host;
      await tcpConnect(host, port, timeoutMs);
      return { ok: true, message: `connected to ${host}:${port}` };
    }
    return { ok: false, message: "probe has no handler (exec, httpGet or tcpSocket)" };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

function portOf(port: number | string, target: ProbeTarget): number {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  const n = target.namedPorts[port];
  if (n === undefined) throw new Error(`the container has no port named "${port}"`);
  return n;
}

function httpGet(scheme: "http" | "https", host: string, port: number, path: string, headers: Array<{ name: string; value: string }>, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string> = { "user-agent": "berth-probe/1.0", accept: "*/*" };
    for (const x of headers) h[x.name] = x.value;
    const req = (scheme === "https" ? httpsRequest : httpRequest)({ host, port, path, method: "GET", headers: h, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${host}:${port}${path} timed out after ${timeoutMs} ms`)));
    req.on("error", (e) => reject(new Error(`GET ${host}:${port}${path}: ${e.message}`)));
    req.end();
  });
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, timeout: timeoutMs });
    s.once("connect", () => {
      s.destroy();
      resolve();
    });
    s.once("timeout", () => {
      s.destroy();
      reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    });
    s.once("error", (e) => reject(new Error(`connect to ${host}:${port}: ${e.message}`)));
  });
}
