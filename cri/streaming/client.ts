// The client side of the streaming protocols over SPDY/3.1, as kubectl and crictl speak them:
// `berth exec -it`, `berth attach` and `berth port-forward` use it, and so do the tests.
import { request } from "node:http";
import type { Socket } from "node:net";
import { type Readable, Writable } from "node:stream";
import { SpdySession, type SpdyStream } from "./spdy/session";

export interface Upgraded {
  session: SpdySession;
  protocol: string;
}

/** Upgrades `url` to SPDY/3.1 offering `protocols` (best first); rejects with the server's answer. */
export function spdyConnect(url: string, protocols: string[]): Promise<Upgraded> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "POST",
      headers: { Connection: "Upgrade", Upgrade: "SPDY/3.1", "X-Stream-Protocol-Version": protocols },
    });
    req.on("upgrade", (res, socket: Socket, head: Buffer) => {
      if (head.length) socket.unshift(head);
      const protocol = String(res.headers["x-stream-protocol-version"] ?? "");
      resolve({ session: new SpdySession(socket, { isServer: false }), protocol });
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => reject(Object.assign(new Error(`${url}: ${res.statusCode} ${body.trim()}`), { statusCode: res.statusCode })));
    });
    req.on("error", reject);
    req.end();
  });
}

export interface ExecStreams {
  stdin?: Readable;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  tty?: boolean;
  /** Initial terminal size, then whatever the caller pushes with resize(). */
  size?: { width: number; height: number };
}

export interface RemoteSession {
  /** The exit code the server reported (0 on Success); rejects on a failure that is not an exit code. */
  done: Promise<number>;
  resize(width: number, height: number): void;
  close(): void;
}

/** Runs an exec or attach session on an already negotiated SPDY connection. */
export async function remoteCommand({ session, protocol }: Upgraded, streams: ExecStreams): Promise<RemoteSession> {
  const open = (type: string) => session.openStream({ streamtype: type });
  const error = open("error");
  const opened: SpdyStream[] = [error];
  const stdin = streams.stdin ? open("stdin") : undefined;
  const stdout = streams.stdout ? open("stdout") : undefined;
  const stderr = streams.stderr && !streams.tty ? open("stderr") : undefined;
  const resize = streams.tty ? open("resize") : undefined;
  for (const s of [stdin, stdout, stderr, resize]) if (s) opened.push(s);
  await Promise.all(opened.map((s) => s.replied));
  const sink = (to: NodeJS.WritableStream) =>
    new Writable({
      write(chunk: Buffer, _e, cb) {
        to.write(chunk);
        cb();
      },
    });
  const outputs: Array<Promise<void>> = [];
  for (const [from, to] of [
    [stdout, streams.stdout],
    [stderr, streams.stderr],
  ] as const) {
    if (!from || !to) continue;
    outputs.push(new Promise((resolve) => from.pipe(sink(to)).once("finish", () => resolve())));
    from.once("close", () => {});
  }
  if (stdin && streams.stdin) streams.stdin.pipe(stdin);
  const resizeTo = (width: number, height: number) => resize?.write(JSON.stringify({ Width: width, Height: height }));
  if (streams.size) resizeTo(streams.size.width, streams.size.height);
  let status = "";
  error.on("data", (d: Buffer) => (status += d.toString()));
  const done = new Promise<number>((resolve, reject) => {
    error.once("end", async () => {
      await Promise.race([Promise.all(outputs), new Promise((r) => setTimeout(r, 2000))]);
      session.destroy();
      if (!status.trim()) return resolve(0);
      if (protocol !== "v4.channel.k8s.io") return reject(new Error(status.trim()));
      try {
        const s = JSON.parse(status) as { status: string; message?: string; reason?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } };
        if (s.status === "Success") return resolve(0);
        const code = s.details?.causes?.find((c) => c.reason === "ExitCode")?.message;
        if (s.reason === "NonZeroExitCode" && code !== undefined) return resolve(Number(code));
        reject(new Error(s.message ?? status));
      } catch {
        reject(new Error(status.trim()));
      }
    });
    session.once("close", () => {
      if (!error.readableEnded) reject(new Error("the streaming connection closed before the session ended"));
    });
  });
  // A caller that closes the session early may not await `done`; its rejection is not a crash.
  done.catch(() => {});
  return { done, resize: resizeTo, close: () => session.destroy() };
}

/** Forwards one local connection to `port` in the pod over the port-forward session. */
export function forwardConnection(session: SpdySession, port: number, requestId: number, local: Socket): void {
  const headers = { port: String(port), requestid: String(requestId) };
  const error = session.openStream({ ...headers, streamtype: "error" });
  const data = session.openStream({ ...headers, streamtype: "data" });
  let message = "";
  error.on("data", (d: Buffer) => (message += d.toString()));
  error.on("end", () => {
    if (message) {
      local.destroy(new Error(message));
    }
  });
  error.on("error", () => {});
  data.on("error", () => local.destroy());
  local.on("error", () => data.destroy());
  error.end();
  local.pipe(data);
  data.pipe(local);
}
