// The SPDY/3.1 transport of the streaming server (kubelet → runtime, and crictl's default): after
// the upgrade the client opens one stream per channel, named by its `streamtype` header. Exec and
// attach wait for 1 + stdin + stdout + stderr + (tty ? 1 : 0) streams (30 s at most); port
// forwarding gets a data and an error stream per connection, tied by `requestid`.
import type { Socket } from "node:net";
import type { TerminalSize } from "../../runtime/api/streaming";
import type { Logger } from "../../runtime/log";
import { type Outcome, type SessionChannels, statusJson, TerminalSizes } from "./remotecommand";
import { SpdySession, type SpdyStream } from "./spdy/session";

export const EXEC_SPDY_PROTOCOLS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];
export const PORTFORWARD_SPDY_PROTOCOLS = ["portforward.k8s.io"];
const STREAMS_WITHIN_MS = 30_000;

/** The server's choice among the client's X-Stream-Protocol-Version values: the first it supports. */
export function negotiate(offered: string[], supported: string[]): string | undefined {
  return offered.find((p) => supported.includes(p));
}

/** Parses the resize stream: JSON objects one after the other ({"Width":80,"Height":24}). */
function resizeReader(stream: SpdyStream, emit: (s: TerminalSize) => void): void {
  let buf = "";
  stream.on("data", (d: Buffer) => {
    buf += d.toString();
    for (;;) {
      const start = buf.indexOf("{");
      const end = buf.indexOf("}", start);
      if (start < 0 || end < 0) break;
      try {
        const s = JSON.parse(buf.slice(start, end + 1)) as { Width?: number; Height?: number };
        emit({ width: s.Width ?? 0, height: s.Height ?? 0 });
      } catch {
        // Not a size: skip it.
      }
      buf = buf.slice(end + 1);
    }
  });
}

/**
 * Accepts the exec/attach streams of one session and hands back its channels once all the
 * expected ones are there.
 */
export function spdyChannels(
  socket: Socket,
  protocol: string,
  want: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean },
  log: Logger,
  idleTimeoutMs: number,
): Promise<SessionChannels> {
  const session = new SpdySession(socket, { isServer: true, idleTimeoutMs });
  const expected = 1 + Number(want.stdin) + Number(want.stdout) + Number(want.stderr && !want.tty) + Number(want.tty);
  const streams = new Map<string, SpdyStream>();
  const sizes = new TerminalSizes();
  const gone = new Promise<void>((resolve) => session.once("close", () => resolve()));
  session.on("error", (err: Error) => log.debug("streaming connection error", { error: err.message }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`the client opened ${streams.size} of ${expected} streams within ${STREAMS_WITHIN_MS / 1000} s`));
    }, STREAMS_WITHIN_MS);
    void gone.then(() => {
      clearTimeout(timer);
      reject(new Error("the client went away before opening its streams"));
    });
    session.on("stream", (stream: SpdyStream) => {
      const type = stream.headers.streamtype ?? "";
      stream.on("error", () => {});
      if (!["error", "stdin", "stdout", "stderr", "resize"].includes(type) || streams.has(type)) {
        stream.reset(1 /* PROTOCOL_ERROR */);
        return;
      }
      stream.reply({});
      streams.set(type, stream);
      if (type === "resize") resizeReader(stream, (s) => sizes.emit(s));
      if (streams.size < expected) return;
      clearTimeout(timer);
      const v4 = protocol === "v4.channel.k8s.io";
      let finished = false;
      resolve({
        stdin: streams.get("stdin"),
        stdout: streams.get("stdout"),
        stderr: streams.get("stderr"),
        onResize: (fn) => sizes.onResize(fn),
        firstSize: (ms) => sizes.firstSize(ms),
        gone,
        finish: (o: Outcome) => {
          if (finished) return;
          finished = true;
          const error = streams.get("error")!;
          if (v4) error.write(statusJson(o));
          else if (!o.ok) error.write(o.message);
          for (const t of ["stdout", "stderr", "error"]) streams.get(t)?.end();
          // Let the client read the status before the connection goes.
          session.goaway();
        },
      });
    });
  });
}

/** Port forwarding: every data/error pair is one connection to a port in the pod. */
export function spdyPortForward(socket: Socket, dial: (port: number) => Promise<Socket>, log: Logger, idleTimeoutMs: number): void {
  const session = new SpdySession(socket, { isServer: true, idleTimeoutMs });
  session.on("error", (err: Error) => log.debug("port-forward connection error", { error: err.message }));
  const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream; started?: boolean }>();
  session.on("stream", (stream: SpdyStream) => {
    stream.on("error", () => {});
    const type = stream.headers.streamtype as "data" | "error" | undefined;
    const id = stream.headers.requestid ?? "";
    const port = Number(stream.headers.port);
    if (!type || (type !== "data" && type !== "error") || !Number.isInteger(port) || port < 1 || port > 65535) {
      stream.reset(1 /* PROTOCOL_ERROR */);
      return;
    }
    stream.reply({});
    const pair = pairs.get(id) ?? {};
    pair[type] = stream;
    pairs.set(id, pair);
    if (!pair.data || !pair.error || pair.started) return;
    pair.started = true;
    const { data, error } = pair as Required<typeof pair>;
    dial(port)
      .then((conn) => {
        data.pipe(conn);
        conn.pipe(data);
        conn.on("error", (e) => {
          if (!error.writableEnded) error.end(`error forwarding port ${port}: ${e.message}`);
          data.destroy();
        });
        conn.on("close", () => {
          if (!error.writableEnded) error.end();
          pairs.delete(id);
        });
        data.on("error", () => conn.destroy());
        data.on("close", () => conn.destroy());
      })
      .catch((err: Error) => {
        // A closed port is an error on the error stream, not a hang.
        error.end(`error forwarding port ${port} to pod: ${err.message}`);
        data.end();
        pairs.delete(id);
      });
  });
}
