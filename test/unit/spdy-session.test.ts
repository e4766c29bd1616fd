import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  encodeFrame,
  type Frame,
  FrameParser,
  GoAwayStatus,
  RstStatus,
  SettingsId,
  SpdyProtocolError,
} from "../../cri/streaming/spdy/frames";
import {
  decodeHeaderBlock,
  encodeHeaderBlock,
  HeaderDeflater,
  HeaderInflater,
  SpdyCompressionError,
} from "../../cri/streaming/spdy/headers";
import {
  SpdyIdleTimeoutError,
  SpdySession,
  type SpdySessionOptions,
  SpdySessionClosedError,
  type SpdyStream,
  SpdyStreamResetError,
} from "../../cri/streaming/spdy/session";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Resolves with what the stream's readable side delivers up to its end. */
function collect(s: SpdyStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("end", () => resolve(Buffer.concat(chunks)));
    s.on("error", reject);
  });
}

/** Settles once the stream has emitted 'close' (at once if it already has), error or not. */
function closed(s: SpdyStream): Promise<void> {
  return s.closed ? Promise.resolve() : new Promise((r) => s.once("close", () => r()));
}

/** A listening server on 127.0.0.1 and a connected client socket; everything closed by close(). */
async function socketPair(): Promise<{ client: net.Socket; server: net.Socket; close(): Promise<void> }> {
  const listener = net.createServer();
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  const accepted = once(listener, "connection");
  const client = net.connect((listener.address() as net.AddressInfo).port, "127.0.0.1");
  const [[server]] = (await Promise.all([accepted, once(client, "connect")])) as [[net.Socket], unknown];
  return {
    client,
    server,
    close: async () => {
      client.destroy();
      server.destroy();
      await new Promise<void>((r) => listener.close(() => r()));
    },
  };
}

interface Pair {
  client: SpdySession;
  server: SpdySession;
  clientSock: net.Socket;
  serverSock: net.Socket;
  /** Streams the server side was offered, in order. */
  incoming: SpdyStream[];
  nextIncoming(): Promise<SpdyStream>;
  clientClosed: Promise<Error | undefined>;
  serverClosed: Promise<Error | undefined>;
  close(): Promise<void>;
}

async function sessionPair(opts: Partial<SpdySessionOptions> = {}): Promise<Pair> {
  const sockets = await socketPair();
  const server = new SpdySession(sockets.server, { ...opts, isServer: true });
  const client = new SpdySession(sockets.client, { ...opts, isServer: false });
  const incoming: SpdyStream[] = [];
  const waiters: ((s: SpdyStream) => void)[] = [];
  server.on("stream", (s: SpdyStream) => {
    const w = waiters.shift();
    if (w) w(s);
    else incoming.push(s);
  });
  const closedOf = (s: SpdySession) => new Promise<Error | undefined>((r) => s.once("close", (err?: Error) => r(err)));
  const pair: Pair = {
    client,
    server,
    clientSock: sockets.client,
    serverSock: sockets.server,
    incoming,
    nextIncoming: () => {
      const s = incoming.shift();
      return s ? Promise.resolve(s) : new Promise((r) => waiters.push(r));
    },
    clientClosed: closedOf(client),
    serverClosed: closedOf(server),
    close: async () => {
      client.destroy();
      server.destroy();
      await Promise.all([pair.clientClosed, pair.serverClosed]);
      await sockets.close();
    },
  };
  // The windows of a Berth peer are enforced once its SETTINGS are in; a round trip guarantees it.
  await client.ping();
  await server.ping();
  return pair;
}

/**
 * A hand-driven peer on a raw socket, speaking frames through the same codec: it plays the
 * misbehaving or minimal peers (garbage, bad ids, Go's spdystream without flow control).
 */
class RawPeer {
  readonly frames: Frame[] = [];
  private readonly parser = new FrameParser();
  private readonly deflater = new HeaderDeflater();
  private readonly inflater = new HeaderInflater();
  private waiters: (() => void)[] = [];
  ended = false;

  constructor(readonly sock: net.Socket) {
    sock.on("data", (c: Buffer) => {
      const { frames, error } = this.parser.push(c);
      if (error) throw error;
      this.frames.push(...frames);
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on("end", () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on("error", () => {});
  }

  send(f: Frame): void {
    this.sock.write(encodeFrame(f));
  }

  async synStream(streamId: number, headers: Record<string, string>, fin = false): Promise<void> {
    const headerBlock = await this.deflater.deflate(encodeHeaderBlock(headers));
    this.send({ type: "SYN_STREAM", streamId, associatedId: 0, priority: 0, slot: 0, fin, unidirectional: false, headerBlock });
  }

  async headers(streamId: number, headers: Record<string, string>, fin: boolean): Promise<void> {
    const headerBlock = await this.deflater.deflate(encodeHeaderBlock(headers));
    this.send({ type: "HEADERS", streamId, fin, headerBlock });
  }

  async headersOf(f: Frame): Promise<Record<string, string>> {
    assert.ok("headerBlock" in f);
    return decodeHeaderBlock(await this.inflater.inflate(f.headerBlock));
  }

  /** The first frame received (old or new) that matches, waiting up to 5 s. */
  async waitFor<T extends Frame>(match: (f: Frame) => f is T, what: string): Promise<T>;
  async waitFor(match: (f: Frame) => boolean, what: string): Promise<Frame>;
  async waitFor(match: (f: Frame) => boolean, what: string): Promise<Frame> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const hit = this.frames.find(match);
      if (hit) return hit;
      if (this.ended || Date.now() > deadline) throw new Error(`no ${what} (got ${this.frames.map((f) => f.type)})`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(100)]);
    }
  }

  dataOf(streamId: number): Buffer {
    return Buffer.concat(this.frames.filter((f) => f.type === "DATA" && f.streamId === streamId).map((f) => (f as { data: Buffer }).data));
  }

  close(): void {
    this.deflater.close();
    this.inflater.close();
    this.sock.destroy();
  }
}

/** A Berth server session facing a RawPeer client. */
async function rawPair(opts: Partial<SpdySessionOptions> = {}) {
  const sockets = await socketPair();
  const server = new SpdySession(sockets.server, { ...opts, isServer: true });
  const serverClosed = new Promise<Error | undefined>((r) => server.once("close", (err?: Error) => r(err)));
  const streams: SpdyStream[] = [];
  server.on("stream", (s: SpdyStream) => streams.push(s));
  const peer = new RawPeer(sockets.client);
  /** The n-th stream the server accepted, once it has. */
  const stream = (n = 0) =>
    new Promise<SpdyStream>((resolve) => {
      const check = () => {
        if (!streams[n]) return;
        server.off("stream", check);
        resolve(streams[n]);
      };
      server.on("stream", check);
      check();
    });
  return {
    server,
    serverClosed,
    streams,
    stream,
    peer,
    close: async () => {
      peer.close();
      server.destroy();
      await serverClosed;
      await sockets.close();
    },
  };
}

const isRst = (id: number) => (f: Frame): f is Extract<Frame, { type: "RST_STREAM" }> => f.type === "RST_STREAM" && f.streamId === id;

describe("SPDY/3.1 session", () => {
  test("a stream with headers, a reply, data both ways, each side half-closing on its own", async () => {
    const p = await sessionPair();
    try {
      const c = p.client.openStream({ streamType: "stdin", port: ["80", "443"] });
      assert.equal(c.id, 1); // client ids are odd
      const s = await p.nextIncoming();
      assert.equal(s.id, 1);
      assert.deepEqual(s.headers, { streamtype: "stdin", port: "80\x00443" });
      s.reply({ "x-reply": "ok" });
      assert.deepEqual(await c.replied, { "x-reply": "ok" });

      // Client writes and half-closes; the server still writes after seeing the end.
      const serverGot = collect(s);
      c.write("hello ");
      c.end("server");
      assert.equal((await serverGot).toString(), "hello server");
      assert.equal(s.writable, true);
      const clientGot = collect(c);
      s.write("still ");
      await sleep(20);
      s.end("talking");
      assert.equal((await clientGot).toString(), "still talking");
      await Promise.all([closed(c), closed(s)]);
      assert.equal(c.errored, null);
      assert.equal(s.errored, null);

      // And the other way round: the server half-closes first.
      const c2 = p.client.openStream({ n: "2" });
      assert.equal(c2.id, 3);
      const s2 = await p.nextIncoming();
      const c2Got = collect(c2);
      s2.end("from server");
      assert.equal((await c2Got).toString(), "from server");
      const s2Got = collect(s2);
      c2.end("late client data");
      assert.equal((await s2Got).toString(), "late client data");

      // A server-opened stream has an even id.
      const fromServer = p.server.openStream({ push: "1" }, { fin: true });
      assert.equal(fromServer.id, 2);
    } finally {
      await p.close();
    }
  });

  test("1 MiB through a 64 KiB window to a slow reader: the writer waits, nothing lost, order kept", async () => {
    const p = await sessionPair({ initialWindow: 65536 });
    try {
      const payload = randomBytes(1024 * 1024);
      const c = p.client.openStream({ kind: "bulk" });
      const s = await p.nextIncoming();
      s.reply();

      let writerWaited = false;
      const writing = (async () => {
        for (let off = 0; off < payload.length; off += 64 * 1024) {
          if (!c.write(payload.subarray(off, off + 64 * 1024))) {
            writerWaited = true;
            await once(c, "drain");
          }
        }
        c.end();
      })();

      // Reads 8 KiB every few ms: far slower than loopback can carry.
      const got: Buffer[] = [];
      let maxBuffered = 0;
      let ended = false;
      s.on("end", () => {
        ended = true;
      });
      while (!ended) {
        maxBuffered = Math.max(maxBuffered, s.readableLength);
        const chunk = s.read(Math.min(8192, s.readableLength || 1)) as Buffer | null;
        if (chunk) got.push(chunk);
        else await Promise.race([once(s, "readable"), once(s, "end")]);
        await sleep(1);
      }
      await writing;
      const all = Buffer.concat(got);
      assert.equal(all.length, payload.length);
      assert.equal(sha(all), sha(payload));
      assert.ok(writerWaited, "the writer saw back-pressure");
      // The receiver never held more than the window: the sender stopped at it.
      assert.ok(maxBuffered <= 65536, `receiver buffered ${maxBuffered} bytes`);
      assert.ok(maxBuffered > 16384, `receiver buffered ${maxBuffered} bytes: the window was used`);
    } finally {
      await p.close();
    }
  });

  test("20 concurrent streams echo their own data", async () => {
    const p = await sessionPair();
    try {
      p.server.on("stream", (s: SpdyStream) => {
        s.reply({ echo: s.headers.n });
        s.pipe(s);
      });
      const runs = Array.from({ length: 20 }, async (_, i) => {
        const c = p.client.openStream({ n: String(i) });
        const body = randomBytes(20_000 + i * 3000);
        const got = collect(c);
        c.end(body);
        assert.deepEqual(await c.replied, { echo: String(i) });
        assert.equal(sha(await got), sha(body), `stream ${i}`);
      });
      await Promise.all(runs);
    } finally {
      await p.close();
    }
  });

  test("RST_STREAM from either side destroys the other's stream with the status", async () => {
    const p = await sessionPair();
    try {
      // Client resets: the server's stream errors.
      const c = p.client.openStream({ a: "1" });
      const s = await p.nextIncoming();
      const sErr = once(s, "error");
      c.reset(RstStatus.CANCEL);
      const [e1] = (await sErr) as [SpdyStreamResetError];
      assert.ok(e1 instanceof SpdyStreamResetError);
      assert.equal(e1.status, RstStatus.CANCEL);
      assert.equal(e1.remote, true);
      assert.equal(c.destroyed, true);

      // Server resets before replying: the client's replied rejects and its stream errors.
      const c2 = p.client.openStream({ a: "2" });
      const s2 = await p.nextIncoming();
      s2.reset(RstStatus.REFUSED_STREAM);
      await assert.rejects(c2.replied, (e: unknown) => e instanceof SpdyStreamResetError && e.status === RstStatus.REFUSED_STREAM);
      await closed(c2);
      assert.ok(c2.errored instanceof SpdyStreamResetError);

      // Destroying a stream locally is a CANCEL to the peer.
      const c3 = p.client.openStream({ a: "3" });
      const s3 = await p.nextIncoming();
      const s3Err = once(s3, "error");
      c3.destroy();
      const [e3] = (await s3Err) as [SpdyStreamResetError];
      assert.equal(e3.status, RstStatus.CANCEL);

      // The session lives on.
      assert.equal(typeof (await p.client.ping()), "number");
    } finally {
      await p.close();
    }
  });

  test("ping measures a round trip from either side", async () => {
    const p = await sessionPair();
    try {
      const [a, b, c] = await Promise.all([p.client.ping(), p.client.ping(), p.server.ping()]);
      for (const ms of [a, b, c]) assert.ok(ms >= 0 && ms < 5000, String(ms));
    } finally {
      await p.close();
    }
  });

  test("GOAWAY: no new streams, open ones finish, then both sessions close cleanly", async () => {
    const p = await sessionPair();
    try {
      const c = p.client.openStream({ a: "1" });
      const s = await p.nextIncoming();
      s.reply();
      p.server.goaway();
      await sleep(20);
      assert.throws(() => p.client.openStream({ late: "1" }), SpdySessionClosedError);
      assert.throws(() => p.server.openStream({ late: "1" }), SpdySessionClosedError);
      assert.equal(p.client.closed, false);
      // The open stream still works both ways.
      const cGot = collect(c);
      const sGot = collect(s);
      c.end("last words");
      s.end("goodbye");
      assert.equal((await sGot).toString(), "last words");
      assert.equal((await cGot).toString(), "goodbye");
      assert.equal(await p.clientClosed, undefined);
      assert.equal(await p.serverClosed, undefined);
      assert.equal(p.client.closed, true);
      assert.equal(p.server.closed, true);
    } finally {
      await p.close();
    }
  });

  test("socket destroyed mid-stream: every stream errors and both sessions close", async () => {
    const p = await sessionPair();
    try {
      const clientStreams = [0, 1, 2].map((i) => p.client.openStream({ i: String(i) }));
      const serverStreams = [await p.nextIncoming(), await p.nextIncoming(), await p.nextIncoming()];
      for (const s of serverStreams) s.write("partial");
      await sleep(20);
      const all = [...clientStreams, ...serverStreams];
      const closes = all.map(closed);
      const pingLost = p.client.ping(); // its reply can never come
      p.clientSock.destroy();
      await Promise.all(closes);
      for (const s of all) assert.ok(s.errored instanceof SpdySessionClosedError, String(s.errored));
      assert.ok((await p.serverClosed) instanceof SpdySessionClosedError);
      await p.clientClosed;
      await assert.rejects(pingLost, SpdySessionClosedError);
      assert.equal(p.client.closed, true);
      assert.equal(p.server.closed, true);
    } finally {
      await p.close();
    }
  });

  test("garbage bytes: GOAWAY PROTOCOL_ERROR, the session closes with the error, the process survives", async () => {
    const r = await rawPair();
    try {
      const errors: Error[] = [];
      r.server.on("error", (e: Error) => errors.push(e));
      r.peer.sock.write("GET /exec HTTP/1.1\r\nHost: x\r\n\r\n");
      const err = await r.serverClosed;
      assert.ok(err instanceof SpdyProtocolError, String(err));
      assert.deepEqual(errors, [err]);
      const goaway = await r.peer.waitFor((f) => f.type === "GOAWAY", "GOAWAY");
      assert.equal((goaway as { status: number }).status, GoAwayStatus.PROTOCOL_ERROR);
    } finally {
      await r.close();
    }
  });

  test("garbage with no 'error' listener is only a close", async () => {
    const r = await rawPair();
    try {
      r.peer.sock.write(Buffer.from("8003000100000010ffffffffffffffffffffffffffffffff", "hex"));
      assert.ok((await r.serverClosed) instanceof Error);
    } finally {
      await r.close();
    }
  });

  test("a header block that is not the peer's zlib stream is a session error", async () => {
    const r = await rawPair();
    try {
      r.peer.send({
        type: "SYN_STREAM",
        streamId: 1,
        associatedId: 0,
        priority: 0,
        slot: 0,
        fin: false,
        unidirectional: false,
        headerBlock: Buffer.from("not deflate at all"),
      });
      assert.ok((await r.serverClosed) instanceof SpdyCompressionError);
      const goaway = await r.peer.waitFor((f) => f.type === "GOAWAY", "GOAWAY");
      assert.equal((goaway as { status: number }).status, GoAwayStatus.PROTOCOL_ERROR);
      assert.equal(r.streams.length, 0);
    } finally {
      await r.close();
    }
  });

  test("bad stream ids get RST_STREAM PROTOCOL_ERROR, DATA on an unknown stream INVALID_STREAM", async () => {
    const r = await rawPair();
    try {
      await r.peer.synStream(2, { a: "even id from a client" });
      await r.peer.synStream(5, { a: "fine" });
      await r.peer.synStream(3, { a: "lower than 5" });
      r.peer.send({ type: "DATA", streamId: 7, fin: false, data: Buffer.from("who?") });
      assert.equal((await r.peer.waitFor(isRst(2), "RST 2")).status, RstStatus.PROTOCOL_ERROR);
      assert.equal((await r.peer.waitFor(isRst(3), "RST 3")).status, RstStatus.PROTOCOL_ERROR);
      assert.equal((await r.peer.waitFor(isRst(7), "RST 7")).status, RstStatus.INVALID_STREAM);
      // Stream 5 was accepted, and the compression context survived the refused ones.
      await sleep(20);
      assert.deepEqual(
        r.streams.map((s) => [s.id, s.headers]),
        [[5, { a: "fine" }]],
      );
      assert.equal(r.peer.frames.some(isRst(5)), false);
      assert.equal(r.server.closed, false);
    } finally {
      await r.close();
    }
  });

  test("a peer without flow control (Go's spdystream) is written past the window and may overrun ours", async () => {
    const r = await rawPair();
    try {
      // Like spdystream: no SETTINGS, no WINDOW_UPDATE, ever.
      await r.peer.synStream(1, { streamtype: "stdout" });
      // The session announces its own settings first thing.
      const settings = await r.peer.waitFor((f) => f.type === "SETTINGS", "SETTINGS");
      assert.deepEqual(r.peer.frames[0], settings);
      assert.deepEqual(
        (settings as Extract<Frame, { type: "SETTINGS" }>).entries.find((e) => e.id === SettingsId.INITIAL_WINDOW_SIZE)?.value,
        65536,
      );
      const s = await r.stream();
      s.reply();
      const out = randomBytes(300 * 1024);
      s.end(out);
      await r.peer.waitFor((f) => f.type === "DATA" && f.streamId === 1 && f.fin, "DATA FIN");
      assert.equal(sha(r.peer.dataOf(1)), sha(out));

      // And 300 KiB sent without regard to the 64 KiB window all arrive.
      const got = collect(s);
      const inb = randomBytes(300 * 1024);
      for (let off = 0; off < inb.length; off += 32 * 1024) {
        r.peer.send({ type: "DATA", streamId: 1, fin: false, data: inb.subarray(off, off + 32 * 1024) });
      }
      r.peer.send({ type: "DATA", streamId: 1, fin: true, data: Buffer.alloc(0) });
      assert.equal(sha(await got), sha(inb));
    } finally {
      await r.close();
    }
  });

  test("SETTINGS INITIAL_WINDOW_SIZE shrinks open streams' windows; WINDOW_UPDATE reopens them", async () => {
    const r = await rawPair();
    try {
      await r.peer.synStream(1, { a: "1" });
      await r.peer.waitFor((f) => f.type === "SETTINGS", "SETTINGS");
      const s = await r.stream();
      // Down from the default 65536 to 1000: the open stream's window follows.
      r.peer.send({ type: "SETTINGS", clearSettings: false, entries: [{ id: SettingsId.INITIAL_WINDOW_SIZE, value: 1000, flags: 0 }] });
      r.peer.send({ type: "PING", id: 1 });
      await r.peer.waitFor((f) => f.type === "PING" && f.id === 1, "PING echo");
      s.write(Buffer.alloc(5000, 7));
      await sleep(50);
      assert.equal(r.peer.dataOf(1).length, 1000);
      r.peer.send({ type: "WINDOW_UPDATE", streamId: 1, delta: 1500 });
      await sleep(50);
      assert.equal(r.peer.dataOf(1).length, 2500);
      r.peer.send({ type: "WINDOW_UPDATE", streamId: 1, delta: 100_000 });
      await sleep(50);
      assert.equal(r.peer.dataOf(1).length, 5000);
      // The reply went first: SPDY wants SYN_REPLY before DATA.
      const firstForStream = r.peer.frames.find((f) => "streamId" in f && f.streamId === 1);
      assert.equal(firstForStream?.type, "SYN_REPLY");
      assert.deepEqual(await r.peer.headersOf(firstForStream), {});
    } finally {
      await r.close();
    }
  });

  test("the receiver returns window as its consumer reads, stream and session", async () => {
    const r = await rawPair();
    try {
      r.peer.send({ type: "SETTINGS", clearSettings: false, entries: [{ id: SettingsId.INITIAL_WINDOW_SIZE, value: 65536, flags: 0 }] });
      await r.peer.synStream(1, { a: "1" });
      await r.peer.waitFor((f) => f.type === "SETTINGS", "SETTINGS");
      const s = await r.stream();
      s.pause();
      r.peer.send({ type: "DATA", streamId: 1, fin: false, data: Buffer.alloc(60_000) });
      // The session window comes back on arrival; the stream's only once read.
      await r.peer.waitFor((f) => f.type === "WINDOW_UPDATE" && f.streamId === 0 && f.delta >= 32768, "session WINDOW_UPDATE");
      await sleep(50);
      assert.equal(r.peer.frames.some((f) => f.type === "WINDOW_UPDATE" && f.streamId === 1), false);
      s.resume();
      const upd = await r.peer.waitFor((f) => f.type === "WINDOW_UPDATE" && f.streamId === 1, "stream WINDOW_UPDATE");
      assert.equal((upd as { delta: number }).delta, 60_000);
    } finally {
      await r.close();
    }
  });

  test("HEADERS from the peer reach the stream as 'headers'; its FIN ends the readable side", async () => {
    const r = await rawPair();
    try {
      await r.peer.synStream(1, { a: "1" });
      await r.peer.waitFor((f) => f.type === "SETTINGS", "SETTINGS");
      const s = await r.stream();
      const got = collect(s);
      const headers = once(s, "headers");
      r.peer.send({ type: "DATA", streamId: 1, fin: false, data: Buffer.from("body") });
      await r.peer.headers(1, { trailer: "yes" }, true);
      assert.deepEqual((await headers)[0], { trailer: "yes" });
      assert.equal((await got).toString(), "body");
    } finally {
      await r.close();
    }
  });

  test("after GOAWAY a new SYN_STREAM is refused", async () => {
    const r = await rawPair();
    try {
      await r.peer.synStream(1, { a: "open" });
      await r.stream();
      r.server.goaway();
      const g = await r.peer.waitFor((f) => f.type === "GOAWAY", "GOAWAY");
      assert.equal((g as { lastGoodStreamId: number }).lastGoodStreamId, 1);
      await r.peer.synStream(3, { a: "too late" });
      assert.equal((await r.peer.waitFor(isRst(3), "RST 3")).status, RstStatus.REFUSED_STREAM);
      // The open stream finishes; then the server ends the connection.
      r.streams[0].end();
      r.peer.send({ type: "DATA", streamId: 1, fin: true, data: Buffer.alloc(0) });
      assert.equal(await r.serverClosed, undefined);
    } finally {
      await r.close();
    }
  });

  test("an idle session cancels its streams and closes, leaving no timer", async () => {
    const p = await sessionPair({ idleTimeoutMs: 150 });
    try {
      const c = p.client.openStream({ a: "1" });
      const s = await p.nextIncoming();
      const [cErr, sErr] = await Promise.all([p.clientClosed, p.serverClosed]);
      assert.ok(cErr instanceof SpdyIdleTimeoutError || sErr instanceof SpdyIdleTimeoutError);
      assert.equal(c.destroyed, true);
      assert.equal(s.destroyed, true);
    } finally {
      await p.close();
    }
  });

  test("with no 'stream' listener, incoming streams are refused", async () => {
    const sockets = await socketPair();
    const server = new SpdySession(sockets.server, { isServer: true });
    const client = new SpdySession(sockets.client, { isServer: false });
    try {
      const c = client.openStream({ a: "1" });
      await assert.rejects(c.replied, (e: unknown) => e instanceof SpdyStreamResetError && e.status === RstStatus.REFUSED_STREAM);
    } finally {
      client.destroy();
      server.destroy();
      await sockets.close();
    }
  });
});
