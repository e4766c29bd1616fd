// A TCP proxy on 127.0.0.1 that breaks transfers on purpose: it forwards to a target and, for the
// first connections (or the first requests whose path matches), closes the client side (or
// stalls the transfer) after a given number of server→client bytes. It records every plain-HTTP
// request head it forwards, so a test can check what a retry asked for (a Range header, say).
import { connect, createServer, type Socket } from "node:net";

export interface CutRule {
  /** Cut the response to a request whose path contains this; without it, whole connections are cut. */
  pathIncludes?: string;
  /** Server→client bytes let through before the client side is closed, counted from that request (or the connection's start). */
  afterBytes: number;
  /** How many cuts to make; later traffic passes untouched. Default 1. */
  times?: number;
  /**
   * Stall instead of closing: after `afterBytes` the response stops, the connection stays open,
   * and nothing more flows either way until the client gives up or goes away (or the proxy stops).
   * A transfer that is in flight for as long as the test needs, without a clock.
   */
  stall?: boolean;
}

export interface SeenRequest {
  /** Connection number, from 1. */
  connection: number;
  method: string;
  path: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
}

export interface CutProxy {
  /** "127.0.0.1:PORT". */
  host: string;
  port: number;
  requests: SeenRequest[];
  /** Cuts made so far. */
  cuts(): number;
  /** Stalled transfers whose client is still connected (see `CutRule.stall`). */
  stalled(): number;
  stop(): Promise<void>;
}

/** Splits the client→server byte stream into request heads, skipping bodies of known length. */
class RequestHeadParser {
  private buffered = Buffer.alloc(0);
  private bodyLeft = 0;
  private lost = false;

  constructor(private readonly onHead: (req: Omit<SeenRequest, "connection">) => void) {}

  feed(chunk: Buffer): void {
    if (this.lost) return;
    this.buffered = Buffer.concat([this.buffered, chunk]);
    for (;;) {
      if (this.bodyLeft > 0) {
        const skip = Math.min(this.bodyLeft, this.buffered.length);
        this.bodyLeft -= skip;
        this.buffered = this.buffered.subarray(skip);
        if (this.bodyLeft > 0) return;
      }
      const end = this.buffered.indexOf("\r\n\r\n");
      if (end === -1) return;
      const [line = "", ...lines] = this.buffered.subarray(0, end).toString("latin1").split("\r\n");
      this.buffered = this.buffered.subarray(end + 4);
      const [method = "", path = ""] = line.split(" ");
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const colon = l.indexOf(":");
        if (colon > 0) headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
      }
      this.onHead({ method, path, headers });
      // A chunked body cannot be skipped without decoding it: stop recording on this connection.
      if (headers["transfer-encoding"]) this.lost = true;
      this.bodyLeft = Number(headers["content-length"] ?? 0) || 0;
      if (this.lost) return;
    }
  }
}

/** Starts the proxy in front of `target` ("host:port"). Without a rule it only records. */
export async function startCutProxy(target: string, rule?: CutRule): Promise<CutProxy> {
  const colon = target.lastIndexOf(":");
  const targetHost = target.slice(0, colon);
  const targetPort = Number(target.slice(colon + 1));
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const stalled = new Set<Socket>();
  const times = rule?.times ?? 1;
  let connections = 0;
  let cuts = 0;

  const server = createServer((client) => {
    const n = ++connections;
    const upstream = connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    client.on("close", () => sockets.delete(client));
    upstream.on("close", () => sockets.delete(upstream));
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());

    let armed = false;
    let passed = 0;
    let cut = false;
    const arm = () => {
      if (!rule || cuts >= times) return;
      cuts++;
      armed = true;
      passed = 0;
    };
    if (rule && rule.pathIncludes === undefined) arm();

    const parser = new RequestHeadParser((head) => {
      requests.push({ connection: n, ...head });
      if (rule?.pathIncludes !== undefined && !armed && head.path.includes(rule.pathIncludes)) arm();
    });
    client.on("data", (chunk: Buffer) => {
      parser.feed(chunk);
      if (!cut) upstream.write(chunk);
    });
    client.on("end", () => upstream.end());
    upstream.on("data", (chunk: Buffer) => {
      if (cut) return;
      if (!armed) {
        client.write(chunk);
        return;
      }
      const allowed = rule!.afterBytes - passed;
      if (chunk.length < allowed) {
        passed += chunk.length;
        client.write(chunk);
        return;
      }
      cut = true;
      upstream.destroy();
      if (rule!.stall) {
        client.write(chunk.subarray(0, allowed));
        stalled.add(client);
        client.once("close", () => stalled.delete(client));
        return;
      }
      // end(), not destroy(): the bytes let through must reach the client before the close.
      client.end(chunk.subarray(0, allowed));
    });
    upstream.on("end", () => client.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    port,
    requests,
    cuts: () => cuts,
    stalled: () => stalled.size,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
