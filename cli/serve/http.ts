// The HTTP listener for Prometheus and operators: /metrics, /healthz and the read-only JSON
// status API. Loopback by default: binding elsewhere is an explicit choice in the config.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HttpApiOptions {
  addr: string;
  metrics: Registry;
  /** undefined when healthy, else the reason. */
  unhealthy(): Promise<string | undefined>;
  routes?: Record<string, () => Promise<unknown>>;
  /** Routes under a prefix (`/api/v1/objects/`): the rest of the path is the handler's; undefined is a 404. */
  prefixRoutes?: Record<string, (rest: string) => Promise<unknown | undefined>>;
}

export function parseHostPort(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(addr);
  if (!m) throw new Error(`address "${addr}" is not HOST:PORT`);
  return { host: m[1]!, port: Number(m[2]) };
}

export async function startHttpApi(opts: HttpApiOptions): Promise<{ address: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const reply = (code: number, type: string, body: string) => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "text/plain", "read-only API: GET only\n");
    const handle = async () => {
      if (path === "/metrics") return reply(200, opts.metrics.contentType, await opts.metrics.metrics());
      if (path === "/healthz") {
        const why = await opts.unhealthy();
        return why ? reply(503, "text/plain", `${why}\n`) : reply(200, "text/plain", "ok\n");
      }
      const route = opts.routes?.[path];
      if (route) return reply(200, "application/json", `${JSON.stringify(await route(), null, 2)}\n`);
      for (const [prefix, handler] of Object.entries(opts.prefixRoutes ?? {})) {
        if (!path.startsWith(prefix)) continue;
        const body = await handler(decodeURIComponent(path.slice(prefix.length)));
        if (body !== undefined) return reply(200, "application/json", `${JSON.stringify(body, null, 2)}\n`);
      }
      reply(404, "application/json", `${JSON.stringify({ error: `no such endpoint ${path}` })}\n`);
    };
    handle().catch((err: unknown) => reply(500, "application/json", `${JSON.stringify({ error: String(err) })}\n`));
  });
  const { host, port } = parseHostPort(opts.addr);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
