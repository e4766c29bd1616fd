// The streaming server behind CRI Exec, Attach and PortForward, as kubelet's (which containerd and
// CRI-O embed) behaves: the RPC checks the request, caches it under a single-use token and answers
// an absolute URL, http://HOST:PORT/{exec|attach|portforward}/TOKEN; the client then upgrades that
// URL to SPDY/3.1 or WebSocket and the session runs with the cached request's options.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type * as cri from "../../runtime/api/cri-v1";
import type { StreamingRuntime } from "../../runtime/api/streaming";
import { InvalidArgumentError } from "../../runtime/errors";
import type { Logger } from "../../runtime/log";
import { parseHostPort } from "../../cli/serve/http";
import { runAttach, runExec, type SessionChannels } from "./remotecommand";
import { EXEC_SPDY_PROTOCOLS, negotiate, PORTFORWARD_SPDY_PROTOCOLS, spdyChannels, spdyPortForward } from "./spdy-transport";
import { TokenCache } from "./tokens";
import { websocketChannels, websocketPortForward, websocketServer } from "./websocket";

type Req<T> = cri.CriRequest<T>;
type Cached =
  | { kind: "exec"; req: Req<cri.ExecRequest> }
  | { kind: "attach"; req: Req<cri.AttachRequest> }
  | { kind: "portforward"; req: Req<cri.PortForwardRequest> };

export interface StreamingServerOptions {
  /** HOST:PORT to listen on; port 0 picks a free one. Loopback by default. */
  addr: string;
  runtime: StreamingRuntime;
  log: Logger;
  /** Streams idle this long are closed (default 4 h, kubelet's). */
  idleTimeoutMs?: number;
}

function checkStreams(rpc: string, r: { stdin?: boolean | null; stdout?: boolean | null; stderr?: boolean | null; tty?: boolean | null }): void {
  if (r.tty && r.stderr) throw new InvalidArgumentError(`${rpc}: tty and stderr cannot both be true (a terminal has one output stream)`);
  if (!r.stdin && !r.stdout && !r.stderr) throw new InvalidArgumentError(`${rpc}: one of stdin, stdout and stderr must be true`);
}

export class StreamingServer {
  private readonly tokens = new TokenCache<Cached>();
  private server?: Server;
  private base = "";
  private readonly sockets = new Set<Socket>();
  private readonly wsExec = websocketServer("remotecommand");
  private readonly wsPortForward = websocketServer("portforward");

  constructor(private readonly opts: StreamingServerOptions) {}

  async start(): Promise<string> {
    const server = createServer((_req, res) => {
      res.writeHead(400, { "content-type": "text/plain" });
      res.end("streaming URLs need an upgrade to SPDY/3.1 or WebSocket\n");
    });
    server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      socket.on("error", () => socket.destroy());
      this.upgrade(req, socket, head).catch((err: unknown) => {
        this.opts.log.warn("streaming upgrade failed", { url: req.url, error: (err as Error).message });
        socket.destroy();
      });
    });
    const { host, port } = parseHostPort(this.opts.addr);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    // Absolute, with a scheme: kubelet 1.36 takes a scheme-less URL for https and fails.
    this.base = `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
    return this.base;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.wsExec.close();
    this.wsPortForward.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  // The CRI RPCs: check, cache, answer the URL.
  async exec(req: Req<cri.ExecRequest>): Promise<cri.ExecResponse> {
    if (!req.containerId) throw new InvalidArgumentError("Exec: container_id is required");
    if (!req.cmd?.length) throw new InvalidArgumentError("Exec: cmd is required (the program and its arguments)");
    checkStreams("Exec", req);
    await this.opts.runtime.checkExec(req.containerId);
    return { url: `${this.base}/exec/${this.tokens.insert({ kind: "exec", req })}` };
  }

  async attach(req: Req<cri.AttachRequest>): Promise<cri.AttachResponse> {
    if (!req.containerId) throw new InvalidArgumentError("Attach: container_id is required");
    checkStreams("Attach", req);
    await this.opts.runtime.checkAttach(req.containerId);
    return { url: `${this.base}/attach/${this.tokens.insert({ kind: "attach", req })}` };
  }

  async portForward(req: Req<cri.PortForwardRequest>): Promise<cri.PortForwardResponse> {
    if (!req.podSandboxId) throw new InvalidArgumentError("PortForward: pod_sandbox_id is required");
    for (const p of req.port ?? []) if (!(Number(p) >= 1 && Number(p) <= 65535)) throw new InvalidArgumentError(`PortForward: port ${p} is not a TCP port`);
    await this.opts.runtime.checkPod(req.podSandboxId);
    return { url: `${this.base}/portforward/${this.tokens.insert({ kind: "portforward", req })}` };
  }

  private refuse(socket: Socket, code: number, reason: string, body: string): void {
    socket.end(`HTTP/1.1 ${code} ${reason}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body) + 1}\r\nconnection: close\r\n\r\n${body}\n`);
  }

  private async upgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const m = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]+)$/.exec((req.url ?? "").split("?")[0]!);
    if (!m) return this.refuse(socket, 404, "Not Found", `no such streaming endpoint ${req.url}`);
    const cached = this.tokens.consume(m[2]!);
    if (!cached || cached.kind !== m[1]) return this.refuse(socket, 404, "Not Found", "unknown, used or expired streaming token (tokens are single use and last one minute)");
    const upgrade = (req.headers.upgrade ?? "").toLowerCase();
    const rt = this.opts.runtime;
    const idle = this.opts.idleTimeoutMs ?? 4 * 3600_000;
    const log = this.opts.log;
    // No byte either way for this long ends the connection, whatever it carries.
    socket.setTimeout(idle, () => {
      log.info("streaming connection idle, closed", { url: req.url, idleSeconds: idle / 1000 });
      socket.destroy();
    });

    if (upgrade === "websocket") {
      const wss = cached.kind === "portforward" ? this.wsPortForward : this.wsExec;
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (cached.kind === "portforward") return websocketPortForward(ws, req, (port) => rt.dialPod(cached.req.podSandboxId ?? "", port));
        const r = cached.req;
        const ch = websocketChannels(ws, { stdin: !!r.stdin, stdout: !!r.stdout, stderr: !!r.stderr, tty: !!r.tty });
        void this.run(cached, ch);
      });
      return;
    }
    if (upgrade !== "spdy/3.1") return this.refuse(socket, 400, "Bad Request", `unsupported upgrade "${req.headers.upgrade ?? ""}": use SPDY/3.1 or websocket`);
    const offered = ([] as string[]).concat(req.headers["x-stream-protocol-version"] ?? []).flatMap((v) => v.split(",").map((s) => s.trim()));
    if (!offered.length) return this.refuse(socket, 400, "Bad Request", "X-Stream-Protocol-Version is required");
    const protocol = negotiate(offered, cached.kind === "portforward" ? PORTFORWARD_SPDY_PROTOCOLS : EXEC_SPDY_PROTOCOLS);
    if (!protocol) return this.refuse(socket, 403, "Forbidden", `none of the protocols ${offered.join(", ")} is supported`);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
    if (head.length) socket.unshift(head);
    if (cached.kind === "portforward") return spdyPortForward(socket, (port) => rt.dialPod(cached.req.podSandboxId ?? "", port), log, idle);
    const r = cached.req;
    const ch = await spdyChannels(socket, protocol, { stdin: !!r.stdin, stdout: !!r.stdout, stderr: !!r.stderr, tty: !!r.tty }, log, idle);
    await this.run(cached, ch);
  }

  private async run(cached: Cached, ch: SessionChannels): Promise<void> {
    const rt = this.opts.runtime;
    if (cached.kind === "exec") await runExec(rt, cached.req, ch, this.opts.log);
    else if (cached.kind === "attach") await runAttach(rt, cached.req, ch);
  }
}
