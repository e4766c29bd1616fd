// The WebSocket transport of the streaming server (kubectl's default since 1.30, through the
// kubelet proxy): one message per chunk, its first byte the channel (0 stdin, 1 stdout, 2 stderr,
// 3 error, 4 resize; 255 closes a channel in v5.channel.k8s.io), the base64 variants in text.
// Port forwarding: two channels per port (data, error), each starting with the port number.
import type { IncomingMessage } from "node:http";
import { PassThrough, Writable } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { type Outcome, type SessionChannels, statusJson, TerminalSizes } from "./remotecommand";

export const EXEC_WS_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"];
export const PORTFORWARD_WS_PROTOCOLS = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io", "portforward.k8s.io", "base64.portforward.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"];

const CH = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

/** The first of the client's protocols that the server speaks (the client lists its preference). */
function pick(offered: Set<string>, supported: string[]): string | false {
  for (const p of offered) if (supported.includes(p)) return p;
  return false;
}

export function websocketServer(kind: "remotecommand" | "portforward"): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => pick(offered, kind === "portforward" ? PORTFORWARD_WS_PROTOCOLS : EXEC_WS_PROTOCOLS),
    maxPayload: 16 * 1024 * 1024,
  });
}

function framer(ws: WebSocket) {
  const base64 = ws.protocol.includes("base64");
  return (channel: number, data: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    if (base64) ws.send(`${String.fromCharCode(48 + channel)}${data.toString("base64")}`);
    else ws.send(Buffer.concat([Buffer.from([channel]), data]));
  };
}

function decode(ws: WebSocket, raw: Buffer | string, isBinary: boolean): { channel: number; data: Buffer } | undefined {
  if (ws.protocol.includes("base64") || !isBinary) {
    const s = raw.toString();
    if (!s.length) return undefined;
    return { channel: s.charCodeAt(0) - 48, data: Buffer.from(s.slice(1), "base64") };
  }
  const b = raw as Buffer;
  if (!b.length) return undefined;
  return { channel: b[0]!, data: b.subarray(1) };
}

/** Exec/attach channels over a WebSocket, shaped by the cached request's streams. */
export function websocketChannels(ws: WebSocket, want: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }): SessionChannels {
  const send = framer(ws);
  const v4plus = ws.protocol.startsWith("v4") || ws.protocol.startsWith("v5");
  const stdin = want.stdin ? new PassThrough() : undefined;
  const sizes = new TerminalSizes();
  const out = (channel: number) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        send(channel, chunk);
        cb();
      },
    });
  ws.on("message", (raw: Buffer, isBinary: boolean) => {
    const m = decode(ws, raw, isBinary);
    if (!m) return;
    if (m.channel === CH.stdin && stdin) stdin.write(m.data);
    else if (m.channel === CH.resize) {
      try {
        const s = JSON.parse(m.data.toString()) as { Width?: number; Height?: number };
        sizes.emit({ width: s.Width ?? 0, height: s.Height ?? 0 });
      } catch {
        // A malformed resize is ignored, as kubelet ignores it.
      }
    } else if (m.channel === CH.close && m.data[0] === CH.stdin) stdin?.end();
  });
  const gone = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  void gone.then(() => stdin?.end());
  let finished = false;
  return {
    stdin,
    stdout: want.stdout ? out(CH.stdout) : undefined,
    stderr: want.stderr && !want.tty ? out(CH.stderr) : undefined,
    onResize: (fn) => sizes.onResize(fn),
    firstSize: (ms) => sizes.firstSize(ms),
    gone,
    finish: (o: Outcome) => {
      if (finished) return;
      finished = true;
      if (v4plus) send(CH.error, Buffer.from(statusJson(o)));
      else if (!o.ok) send(CH.error, Buffer.from(o.message));
      ws.close(1000);
    },
  };
}

/** Port forwarding over a WebSocket: the ports come from the URL's `port` parameters. */
export function websocketPortForward(ws: WebSocket, req: IncomingMessage, dial: (port: number) => Promise<import("node:net").Socket>): void {
  const url = new URL(req.url ?? "/", "http://x");
  const ports = url.searchParams.getAll("port").map(Number);
  const send = framer(ws);
  const sockets = new Map<number, import("node:net").Socket>();
  const header = (port: number) => Buffer.from([port & 0xff, port >> 8]);
  ports.forEach((port, i) => {
    send(2 * i, header(port));
    send(2 * i + 1, header(port));
    dial(port)
      .then((s) => {
        sockets.set(i, s);
        s.on("data", (d: Buffer) => send(2 * i, d));
        s.on("error", (e) => send(2 * i + 1, Buffer.from(e.message)));
        s.on("close", () => ws.close(1000));
      })
      .catch((err: Error) => send(2 * i + 1, Buffer.from(err.message)));
  });
  ws.on("message", (raw: Buffer, isBinary: boolean) => {
    const m = decode(ws, raw, isBinary);
    if (!m || m.channel % 2 !== 0) return;
    sockets.get(m.channel / 2)?.write(m.data);
  });
  ws.on("close", () => {
    for (const s of sockets.values()) s.destroy();
  });
}
