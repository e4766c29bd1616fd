// A SPDY/3.1 session over any byte Duplex (a socket after an HTTP Upgrade), and its streams.
//
// Flow control, and the peers it must work with: SPDY/3.1 makes it mandatory, but Go's
// spdystream, which kubectl, crictl, kubelet and the API server's proxy all speak, implements none
// of it: it sends no SETTINGS and no WINDOW_UPDATE and ignores ours. So:
//  - Sending: the peer's windows are tracked from the start but enforced only once the peer shows
//    it does flow control (SETTINGS with INITIAL_WINDOW_SIZE, or any WINDOW_UPDATE). Honouring
//    windows a Go peer never reopens would stall every stream after 64 KiB.
//  - Receiving: stream windows are reopened as the consumer reads. A peer that overruns a window
//    is not cut off (that is every Go peer); instead the socket stops being read while any stream
//    holds more unread data than its window, so TCP pushes back. The session window is reopened
//    as data arrives, not as it is read: stream windows already bound what is buffered, and
//    reopening it only on reads would let one stream nobody reads (a container ignoring stdin)
//    block every other stream of the session, resize and error streams included.
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { Duplex } from "node:stream";
import {
  encodeFrame,
  type Frame,
  FrameParser,
  GoAwayStatus,
  MAX_31BIT,
  RstStatus,
  SettingsId,
  SpdyProtocolError,
} from "./frames";
import {
  decodeHeaderBlock,
  encodeHeaderBlock,
  type HeaderInput,
  type HeaderMap,
  HeaderDeflater,
  HeaderInflater,
  normalizeHeaders,
  SpdyCompressionError,
  SpdyHeaderError,
} from "./headers";

export interface SpdySessionOptions {
  isServer: boolean;
  /** Receive window of each stream, advertised in SETTINGS. Default 65536. */
  initialWindow?: number;
  /** Streams the peer may have open at once; more are refused. Advertised in SETTINGS. Default 1000. */
  maxStreams?: number;
  /** With no frame either way for this long, streams are cancelled and the session goes away. */
  idleTimeoutMs?: number;
  /**
   * Largest frame payload accepted from the peer; a longer one is a session error. Default 1 MiB:
   * Go peers send a DATA frame per Write (32 KiB from io.Copy), and any ASCII text read as a frame
   * header claims at least 2 MiB, so a peer speaking HTTP or garbage fails at once instead of
   * being waited on for megabytes.
   */
  maxFrameSize?: number;
  /** Payload of the DATA frames this side sends. Default 16 KiB. */
  dataFrameSize?: number;
  /** Largest inflated header block accepted. Default 1 MiB. */
  maxHeaderBlockSize?: number;
}

/** The session ended under a stream, or a call needs a session that has ended or is going away. */
export class SpdySessionClosedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The session saw no frame for idleTimeoutMs. */
export class SpdyIdleTimeoutError extends SpdySessionClosedError {}

/** A stream ended by RST_STREAM: sent by the peer (remote) or by this side over a peer's error. */
export class SpdyStreamResetError extends Error {
  /** The RstStatus code. */
  readonly status: number;
  readonly remote: boolean;
  constructor(status: number, remote: boolean, message?: string) {
    super(message ?? `stream reset by ${remote ? "peer" : "this side"} with status ${rstName(status)}`);
    this.name = new.target.name;
    this.status = status;
    this.remote = remote;
  }
}

/** A call the stream or session cannot honour in its state (reply twice, too many streams, ...). */
export class SpdyStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

function rstName(status: number): string {
  const name = Object.entries(RstStatus).find(([, v]) => v === status)?.[0];
  return name ?? String(status);
}

const DEFAULT_WINDOW = 65536;
const DEFAULT_MAX_STREAMS = 1000;
const DEFAULT_DATA_FRAME = 16 * 1024;
const DEFAULT_MAX_FRAME = 1024 * 1024;

const kState = Symbol("spdyStream");

interface PendingWrite {
  data: Buffer;
  cb: (err?: Error | null) => void;
}

/** The session's side of a stream's Duplex methods. */
interface StreamHost {
  reply(stream: SpdyStream, headers: HeaderInput, fin: boolean): void;
  reset(stream: SpdyStream, status: number): void;
  write(stream: SpdyStream, chunk: Buffer, cb: (err?: Error | null) => void): void;
  final(stream: SpdyStream, cb: (err?: Error | null) => void): void;
  consumed(stream: SpdyStream): void;
  destroyed(stream: SpdyStream, err: Error | null): void;
}

/** What the session knows of a stream; kept off the public surface. */
interface StreamState {
  readonly host: StreamHost;
  readonly incoming: boolean;
  /** This side sent FIN, or may not send (unidirectional). */
  localFin: boolean;
  remoteFin: boolean;
  /** RST_STREAM sent or received: no frame goes either way any more. */
  reset: boolean;
  replySent: boolean;
  replyReceived: boolean;
  /** Bytes the peer lets this side send. */
  sendWindow: number;
  /** Bytes the peer may still send, as this side has told it (negative: the peer overran it). */
  recvWindow: number;
  /** Bytes received and not yet returned to the peer by WINDOW_UPDATE. */
  uncredited: number;
  pending: PendingWrite | null;
  /** A write callback held until the socket drains. */
  drainCb: ((err?: Error | null) => void) | null;
  settleReply: { resolve(h: HeaderMap): void; reject(err: Error): void } | null;
  creditScheduled: boolean;
}

/**
 * One SPDY stream. Writable side: DATA frames (end() sends an empty DATA with FIN). Readable
 * side: the peer's DATA; it ends on the peer's FIN. A peer's RST_STREAM destroys it with a
 * SpdyStreamResetError. It always has an 'error' listener of its own, so an error nobody listens
 * for cannot crash the process: watch 'close' and `errored`, or add a listener.
 * Events besides Duplex's: 'headers' (HeaderMap) for a HEADERS frame from the peer.
 */
export class SpdyStream extends Duplex {
  readonly id: number;
  /** Incoming: the peer's SYN_STREAM headers. Opened here: the headers sent. */
  readonly headers: HeaderMap;
  /**
   * Opened here: resolves with the peer's SYN_REPLY headers, rejects on RST_STREAM or when the
   * stream or session ends first. Incoming: already resolved with {}. Never an unhandled rejection.
   */
  readonly replied: Promise<HeaderMap>;
  readonly [kState]: StreamState;

  constructor(host: StreamHost, id: number, headers: HeaderMap, incoming: boolean, sendWindow: number, recvWindow: number) {
    // The reader's buffer is kept at most half the window: credit is computed when the buffer
    // falls under it, and that must free at least half the window or a full peer would stall.
    const hwm = Math.max(1, Math.min(DEFAULT_DATA_FRAME, Math.floor(recvWindow / 2)));
    super({ allowHalfOpen: true, readableHighWaterMark: hwm });
    this.id = id;
    this.headers = headers;
    let settle: StreamState["settleReply"] = null;
    this.replied = incoming
      ? Promise.resolve({})
      : new Promise<HeaderMap>((resolve, reject) => {
          settle = { resolve, reject };
        });
    this.replied.catch(() => {});
    this[kState] = {
      host,
      incoming,
      localFin: false,
      remoteFin: false,
      reset: false,
      replySent: false,
      replyReceived: false,
      sendWindow,
      recvWindow,
      uncredited: 0,
      pending: null,
      drainCb: null,
      settleReply: settle,
      creditScheduled: false,
    };
    this.on("error", () => {});
  }

  /** Sends SYN_REPLY for a stream the peer opened (writing before it sends an empty one). */
  reply(headers: HeaderInput = {}, opts: { fin?: boolean } = {}): void {
    this[kState].host.reply(this, headers, opts.fin === true);
  }

  /** Sends RST_STREAM with the status (an RstStatus) and destroys the stream. */
  reset(status: number): void {
    this[kState].host.reset(this, status);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this[kState].host.write(this, chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this[kState].host.final(this, cb);
  }

  override _read(): void {
    this[kState].host.consumed(this);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this[kState].host.destroyed(this, err);
    cb(err);
  }
}

interface PendingPing {
  start: number;
  resolve(ms: number): void;
  reject(err: Error): void;
}

/**
 * A SPDY/3.1 session. Events: 'stream' (SpdyStream) for each stream the peer opens; 'close'
 * (err?: Error) once, after every stream is destroyed and the socket has closed; 'error' (Error)
 * for a session error, emitted only when someone listens (the same error reaches 'close').
 */
export class SpdySession extends EventEmitter {
  private readonly socket: Duplex;
  private readonly isServer: boolean;
  private readonly initialWindow: number;
  private readonly maxStreams: number;
  private readonly dataFrameSize: number;
  private readonly parser: FrameParser;
  private readonly deflater = new HeaderDeflater();
  private readonly inflater: HeaderInflater;

  private readonly streams = new Map<number, SpdyStream>();
  private nextStreamId: number;
  /** Highest id of a SYN_STREAM the peer sent, and of one accepted (GOAWAY's last-good id). */
  private lastPeerStreamId = 0;
  private lastAcceptedPeerId = 0;

  /** The peer's window for new streams and the session's send window (SPDY/3.1: starts at 64 KiB). */
  private peerInitialWindow = DEFAULT_WINDOW;
  private sendWindow = DEFAULT_WINDOW;
  private peerMaxStreams = Number.POSITIVE_INFINITY;
  private peerFlowControl = false;
  private sessionUncredited = 0;
  private readonly sessionRecvWindow: number;
  private readonly blocked = new Set<SpdyStream>();
  private readonly overrun = new Set<SpdyStream>();
  private readonly drainWaiting = new Set<SpdyStream>();
  private congested = false;

  /** Frames for the wire in order; a slot without bytes waits for header compression. */
  private readonly outq: { buf?: Buffer }[] = [];
  private corked = false;
  /** Frames parsed but not yet handled, held while a header block inflates. */
  private readonly inbox: Frame[] = [];
  private inboxHead = 0;
  private inflating = false;

  private nextPingId: number;
  private readonly pings = new Map<number, PendingPing>();
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly idleTimeoutMs: number | undefined;

  private goawaySent = false;
  private goawayReceived = false;
  /** Ending the socket once the out queue is flushed. */
  private ending = false;
  private tornDown = false;
  private closeEmitted = false;
  private closeError: Error | undefined;
  private socketClosed = false;

  constructor(socket: Duplex, opts: SpdySessionOptions) {
    super();
    this.socket = socket;
    this.isServer = opts.isServer;
    this.initialWindow = opts.initialWindow ?? DEFAULT_WINDOW;
    if (!Number.isInteger(this.initialWindow) || this.initialWindow < 1 || this.initialWindow > MAX_31BIT) {
      throw new RangeError(`initialWindow ${this.initialWindow} is not 1..2^31-1`);
    }
    this.maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
    if (!Number.isInteger(this.maxStreams) || this.maxStreams < 0 || this.maxStreams > 0xffffffff) {
      throw new RangeError(`maxStreams ${this.maxStreams} is not 0..2^32-1`);
    }
    this.dataFrameSize = Math.max(1, Math.min(opts.dataFrameSize ?? DEFAULT_DATA_FRAME, 0xffffff));
    this.parser = new FrameParser({ maxFrameSize: opts.maxFrameSize ?? DEFAULT_MAX_FRAME });
    this.inflater = new HeaderInflater(opts.maxHeaderBlockSize);
    this.nextStreamId = this.isServer ? 2 : 1;
    this.nextPingId = this.isServer ? 2 : 1;
    this.sessionRecvWindow = Math.max(DEFAULT_WINDOW, this.initialWindow);
    this.idleTimeoutMs = opts.idleTimeoutMs;

    // Frames are batched per tick already (cork); Nagle would only hold back a keystroke or a
    // PING behind an unacknowledged segment (a 40 ms stall against a delayed-ACK peer).
    (socket as { setNoDelay?: (noDelay: boolean) => void }).setNoDelay?.(true);
    socket.on("data", (chunk: Buffer) => this.onSocketData(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("end", () => this.onSocketEnd());
    socket.on("error", (err: Error) => {
      this.closeError ??= new SpdySessionClosedError(`connection failed: ${err.message}`, { cause: err });
    });
    socket.on("close", () => this.onSocketClose());

    if (this.idleTimeoutMs !== undefined && this.idleTimeoutMs > 0) {
      this.idleTimer = setTimeout(() => this.onIdle(), this.idleTimeoutMs);
      this.idleTimer.unref();
    }

    const entries = [
      { id: SettingsId.MAX_CONCURRENT_STREAMS, value: this.maxStreams, flags: 0 },
      { id: SettingsId.INITIAL_WINDOW_SIZE, value: this.initialWindow, flags: 0 },
    ];
    this.send({ type: "SETTINGS", clearSettings: false, entries });
    if (this.sessionRecvWindow > DEFAULT_WINDOW) {
      this.send({ type: "WINDOW_UPDATE", streamId: 0, delta: this.sessionRecvWindow - DEFAULT_WINDOW });
    }
    if ((socket as { destroyed?: boolean }).destroyed) process.nextTick(() => this.onSocketClose());
  }

  /** True once the session is torn down (destroyed, failed, or its socket closed). */
  get closed(): boolean {
    return this.tornDown;
  }

  /**
   * Opens a stream with SYN_STREAM (fin: nothing will be written). Throws SpdySessionClosedError
   * when the session is closed or going away, SpdyStateError at the peer's stream limit,
   * SpdyHeaderError for headers SPDY cannot carry.
   */
  openStream(headers: HeaderInput, opts: { fin?: boolean } = {}): SpdyStream {
    if (this.tornDown || this.ending) throw new SpdySessionClosedError("session is closed");
    if (this.goawaySent || this.goawayReceived) throw new SpdySessionClosedError("session is going away");
    let mine = 0;
    for (const s of this.streams.values()) if (!s[kState].incoming) mine++;
    if (mine >= this.peerMaxStreams) throw new SpdyStateError(`peer allows ${this.peerMaxStreams} concurrent streams`);
    if (this.nextStreamId > MAX_31BIT) throw new SpdyStateError("stream ids of this session are used up");
    const block = encodeHeaderBlock(headers);
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new SpdyStream(this.host, id, normalizeHeaders(headers), false, this.peerInitialWindow, this.initialWindow);
    this.streams.set(id, stream);
    const fin = opts.fin === true;
    this.sendWithHeaders(block, (headerBlock) => ({
      type: "SYN_STREAM",
      streamId: id,
      associatedId: 0,
      priority: 0,
      slot: 0,
      fin,
      unidirectional: false,
      headerBlock,
    }));
    if (fin) {
      stream[kState].localFin = true;
      stream.end();
    }
    return stream;
  }

  /** Round-trip time of a PING, in ms. Rejects with SpdySessionClosedError if the session ends first. */
  ping(): Promise<number> {
    if (this.tornDown || this.ending) return Promise.reject(new SpdySessionClosedError("session is closed"));
    const id = this.nextPingId;
    this.nextPingId = this.nextPingId + 2 > 0xffffffff ? (this.isServer ? 2 : 1) : this.nextPingId + 2;
    return new Promise<number>((resolve, reject) => {
      this.pings.set(id, { start: performance.now(), resolve, reject });
      this.send({ type: "PING", id });
    });
  }

  /** Sends GOAWAY: no new streams either way; open ones finish, then the socket is ended. */
  goaway(status: number = GoAwayStatus.OK): void {
    if (this.tornDown || this.goawaySent) return;
    this.goawaySent = true;
    this.send({ type: "GOAWAY", lastGoodStreamId: this.lastAcceptedPeerId, status });
    this.maybeFinish();
  }

  /** Ends at once: every stream is destroyed (with err as cause), the socket too. */
  destroy(err?: Error): void {
    if (this.tornDown) return;
    if (err) this.closeError = err;
    this.teardown(err);
    this.socket.destroy();
  }

  // ---- the streams' side ----

  private readonly host: StreamHost = {
    reply: (s, h, fin) => this.replyStream(s, h, fin),
    reset: (s, status) => this.resetByUser(s, status),
    write: (s, chunk, cb) => this.writeStream(s, chunk, cb),
    final: (s, cb) => this.finalStream(s, cb),
    consumed: (s) => this.consumed(s),
    destroyed: (s, err) => this.streamDestroyed(s, err),
  };

  private replyStream(stream: SpdyStream, headers: HeaderInput, fin: boolean): void {
    const st = stream[kState];
    if (!st.incoming) throw new SpdyStateError("reply() is for streams the peer opened");
    if (st.replySent) throw new SpdyStateError(`stream ${stream.id} has already replied`);
    if (st.localFin) throw new SpdyStateError(`stream ${stream.id} cannot send (unidirectional or ended)`);
    if (st.reset || this.tornDown) throw new SpdyStateError(`stream ${stream.id} is closed`);
    const block = encodeHeaderBlock(headers);
    this.sendReply(stream, block, fin);
    if (fin) {
      st.localFin = true;
      stream.end();
      this.maybeRelease(stream);
    }
  }

  private resetByUser(stream: SpdyStream, status: number): void {
    const st = stream[kState];
    if (!st.reset && !this.tornDown) {
      this.send({ type: "RST_STREAM", streamId: stream.id, status }); // throws for a status that is not 32-bit
      st.reset = true;
    }
    stream.destroy();
  }

  private writeStream(stream: SpdyStream, chunk: Buffer, cb: (err?: Error | null) => void): void {
    const st = stream[kState];
    if (st.reset || this.tornDown) {
      cb(new SpdySessionClosedError(`stream ${stream.id} is closed`));
      return;
    }
    if (st.localFin) {
      cb(new SpdyStateError(`stream ${stream.id} may not send`));
      return;
    }
    this.ensureReplied(stream);
    st.pending = { data: chunk, cb };
    this.pump(stream);
  }

  private finalStream(stream: SpdyStream, cb: (err?: Error | null) => void): void {
    const st = stream[kState];
    if (!st.localFin && !st.reset && !this.tornDown) {
      this.ensureReplied(stream);
      st.localFin = true;
      this.send({ type: "DATA", streamId: stream.id, fin: true, data: Buffer.alloc(0) });
      this.maybeRelease(stream);
    }
    cb();
  }

  /** The consumer wants more: return what it has read to the peer's window. */
  private consumed(stream: SpdyStream): void {
    const st = stream[kState];
    // Deferred: read() calls _read before taking its chunk off the buffer, so readableLength is
    // only right once the current read() has returned.
    if (st.creditScheduled) return;
    st.creditScheduled = true;
    process.nextTick(() => {
      st.creditScheduled = false;
      this.credit(stream);
    });
  }

  private streamDestroyed(stream: SpdyStream, err: Error | null): void {
    const st = stream[kState];
    if (!st.reset && !(st.localFin && st.remoteFin) && !this.tornDown) {
      st.reset = true;
      this.send({ type: "RST_STREAM", streamId: stream.id, status: RstStatus.CANCEL });
    }
    st.reset = true;
    const closed = err ?? new SpdyStreamResetError(RstStatus.CANCEL, false, `stream ${stream.id} was destroyed`);
    st.settleReply?.reject(closed);
    st.settleReply = null;
    const p = st.pending;
    st.pending = null;
    const d = st.drainCb;
    st.drainCb = null;
    p?.cb(err);
    d?.(err);
    this.release(stream);
  }

  // ---- sending ----

  private send(frame: Frame): void {
    this.enqueue(encodeFrame(frame));
  }

  private enqueue(buf: Buffer): void {
    if (this.outq.length === 0) this.writeSocket(buf);
    else this.outq.push({ buf });
  }

  /** Reserves the frame's place on the wire now; it is written once its block is compressed. */
  private sendWithHeaders(block: Buffer, frameOf: (compressed: Buffer) => Frame): void {
    const slot: { buf?: Buffer } = {};
    this.outq.push(slot);
    this.deflater.deflate(block).then(
      (compressed) => {
        if (this.tornDown) return;
        try {
          slot.buf = encodeFrame(frameOf(compressed));
        } catch (err) {
          this.fail(err as Error, GoAwayStatus.INTERNAL_ERROR);
          return;
        }
        this.flushOut();
      },
      (err: Error) => this.fail(err, GoAwayStatus.INTERNAL_ERROR),
    );
  }

  private flushOut(): void {
    while (this.outq.length > 0 && this.outq[0].buf !== undefined) {
      const slot = this.outq.shift()!;
      this.writeSocket(slot.buf!);
    }
    if (this.outq.length === 0 && this.ending) this.endSocket();
  }

  private writeSocket(buf: Buffer): void {
    if (this.tornDown || this.socketClosed || !this.socket.writable) return;
    // Frames written in one tick go out in one syscall.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        if (!this.socket.destroyed) this.socket.uncork();
      });
    }
    if (!this.socket.write(buf)) this.congested = true;
    this.idleTimer?.refresh();
  }

  private sendReply(stream: SpdyStream, block: Buffer, fin: boolean): void {
    stream[kState].replySent = true;
    this.sendWithHeaders(block, (headerBlock) => ({ type: "SYN_REPLY", streamId: stream.id, fin, headerBlock }));
  }

  /** SPDY needs SYN_REPLY before DATA on a stream the peer opened. */
  private ensureReplied(stream: SpdyStream): void {
    const st = stream[kState];
    if (st.incoming && !st.replySent) this.sendReply(stream, encodeHeaderBlock({}), false);
  }

  /** Sends as much of the stream's pending write as the windows allow. */
  private pump(stream: SpdyStream): void {
    const st = stream[kState];
    const p = st.pending;
    if (!p) return;
    while (p.data.length > 0) {
      let n = Math.min(p.data.length, this.dataFrameSize);
      if (this.peerFlowControl) n = Math.min(n, st.sendWindow, this.sendWindow);
      if (n <= 0) {
        this.blocked.add(stream);
        return;
      }
      const piece = p.data.subarray(0, n);
      p.data = p.data.subarray(n);
      st.sendWindow -= n;
      this.sendWindow -= n;
      this.send({ type: "DATA", streamId: stream.id, fin: false, data: piece });
    }
    st.pending = null;
    this.blocked.delete(stream);
    // The callback is what lets the writer go on: held while the socket is congested.
    if (this.congested) {
      st.drainCb = p.cb;
      this.drainWaiting.add(stream);
    } else {
      p.cb();
    }
  }

  private pumpBlocked(): void {
    for (const s of [...this.blocked]) {
      this.pump(s);
      if (this.peerFlowControl && this.sendWindow <= 0) return;
    }
  }

  private onDrain(): void {
    this.congested = false;
    for (const s of [...this.drainWaiting]) {
      this.drainWaiting.delete(s);
      const cb = s[kState].drainCb;
      s[kState].drainCb = null;
      cb?.();
      if (this.congested) return;
    }
  }

  // ---- receiving ----

  private onSocketData(chunk: Buffer): void {
    if (this.tornDown) return;
    this.idleTimer?.refresh();
    const { frames, error } = this.parser.push(chunk);
    for (const f of frames) this.inbox.push(f);
    this.drainInbox();
    if (error) this.fail(error, error.status);
  }

  /** Handles frames in wire order; a header block's inflate holds back the frames after it. */
  private drainInbox(): void {
    while (!this.inflating && !this.tornDown && this.inboxHead < this.inbox.length) {
      const f = this.inbox[this.inboxHead++];
      if (f.type === "SYN_STREAM" || f.type === "SYN_REPLY" || f.type === "HEADERS") {
        this.inflating = true;
        this.inflater.inflate(f.headerBlock).then(
          (raw) => {
            this.inflating = false;
            if (this.tornDown) return;
            this.onHeaderFrame(f, raw);
            this.drainInbox();
          },
          (err: Error) => {
            this.inflating = false;
            this.fail(err, GoAwayStatus.PROTOCOL_ERROR);
          },
        );
      } else {
        this.handle(f);
      }
    }
    if (this.inboxHead === this.inbox.length) {
      this.inbox.length = 0;
      this.inboxHead = 0;
    }
  }

  private handle(f: Exclude<Frame, { type: "SYN_STREAM" | "SYN_REPLY" | "HEADERS" }>): void {
    switch (f.type) {
      case "DATA":
        this.onData(f.streamId, f.data, f.fin);
        return;
      case "RST_STREAM":
        this.onRst(f.streamId, f.status);
        return;
      case "SETTINGS":
        this.onSettings(f.entries);
        return;
      case "PING":
        this.onPing(f.id);
        return;
      case "GOAWAY":
        this.onGoaway(f.lastGoodStreamId, f.status);
        return;
      case "WINDOW_UPDATE":
        this.onWindowUpdate(f.streamId, f.delta);
        return;
      case "UNKNOWN":
        return; // the spec: ignore control frames of unknown types
    }
  }

  private onHeaderFrame(f: Extract<Frame, { type: "SYN_STREAM" | "SYN_REPLY" | "HEADERS" }>, raw: Buffer): void {
    let headers: HeaderMap | SpdyHeaderError;
    try {
      headers = decodeHeaderBlock(raw);
    } catch (err) {
      if (!(err instanceof SpdyHeaderError)) throw err;
      headers = err;
    }
    if (f.type === "SYN_STREAM") this.onSynStream(f.streamId, f.fin, f.unidirectional, headers);
    else if (f.type === "SYN_REPLY") this.onSynReply(f.streamId, f.fin, headers);
    else this.onHeaders(f.streamId, f.fin, headers);
  }

  private onSynStream(id: number, fin: boolean, unidirectional: boolean, headers: HeaderMap | SpdyHeaderError): void {
    const peerParity = this.isServer ? 1 : 0;
    if (id % 2 !== peerParity || id <= this.lastPeerStreamId) {
      const existing = this.streams.get(id);
      if (existing) this.resetStream(existing, RstStatus.PROTOCOL_ERROR, `stream id ${id} opened twice`);
      else this.sendRst(id, RstStatus.PROTOCOL_ERROR);
      return;
    }
    this.lastPeerStreamId = id;
    if (this.goawaySent || this.ending) {
      this.sendRst(id, RstStatus.REFUSED_STREAM);
      return;
    }
    let theirs = 0;
    for (const s of this.streams.values()) if (s[kState].incoming) theirs++;
    if (theirs >= this.maxStreams || this.listenerCount("stream") === 0) {
      this.sendRst(id, RstStatus.REFUSED_STREAM);
      return;
    }
    if (headers instanceof SpdyHeaderError) {
      this.sendRst(id, RstStatus.PROTOCOL_ERROR);
      return;
    }
    this.lastAcceptedPeerId = id;
    const stream = new SpdyStream(this.host, id, headers, true, this.peerInitialWindow, this.initialWindow);
    this.streams.set(id, stream);
    const st = stream[kState];
    if (unidirectional) {
      st.localFin = true;
      stream.end();
    }
    if (fin) {
      st.remoteFin = true;
      stream.push(null);
    }
    this.maybeRelease(stream);
    this.emit("stream", stream);
  }

  private onSynReply(id: number, fin: boolean, headers: HeaderMap | SpdyHeaderError): void {
    const stream = this.streams.get(id);
    if (!stream) {
      this.sendRst(id, RstStatus.INVALID_STREAM);
      return;
    }
    const st = stream[kState];
    if (st.incoming) {
      this.resetStream(stream, RstStatus.PROTOCOL_ERROR, "SYN_REPLY on a stream the peer opened");
      return;
    }
    if (st.replyReceived) {
      this.resetStream(stream, RstStatus.STREAM_IN_USE, "second SYN_REPLY");
      return;
    }
    if (headers instanceof SpdyHeaderError) {
      this.resetStream(stream, RstStatus.PROTOCOL_ERROR, headers.message);
      return;
    }
    st.replyReceived = true;
    st.settleReply?.resolve(headers);
    st.settleReply = null;
    if (fin) this.remoteEnded(stream);
  }

  private onHeaders(id: number, fin: boolean, headers: HeaderMap | SpdyHeaderError): void {
    const stream = this.streams.get(id);
    if (!stream) {
      this.sendRst(id, RstStatus.INVALID_STREAM);
      return;
    }
    if (stream[kState].remoteFin) {
      this.resetStream(stream, RstStatus.STREAM_ALREADY_CLOSED, "HEADERS after FIN");
      return;
    }
    if (headers instanceof SpdyHeaderError) {
      this.resetStream(stream, RstStatus.PROTOCOL_ERROR, headers.message);
      return;
    }
    stream.emit("headers", headers);
    if (fin) this.remoteEnded(stream);
  }

  private onData(id: number, data: Buffer, fin: boolean): void {
    this.creditSession(data.length);
    const stream = this.streams.get(id);
    if (!stream) {
      // After GOAWAY the spec has this side ignore frames of streams it will not open.
      if (!this.goawaySent) this.sendRst(id, RstStatus.INVALID_STREAM);
      return;
    }
    const st = stream[kState];
    if (st.remoteFin) {
      this.resetStream(stream, RstStatus.STREAM_ALREADY_CLOSED, "DATA after FIN");
      return;
    }
    if (!st.incoming && !st.replyReceived) {
      this.resetStream(stream, RstStatus.PROTOCOL_ERROR, "DATA before SYN_REPLY");
      return;
    }
    if (data.length > 0) {
      st.recvWindow -= data.length;
      st.uncredited += data.length;
      if (st.recvWindow < 0 && !this.overrun.has(stream)) {
        this.overrun.add(stream);
        this.socket.pause();
      }
      stream.push(data);
    }
    if (fin) this.remoteEnded(stream);
  }

  private onRst(id: number, status: number): void {
    const stream = this.streams.get(id);
    if (!stream) return; // answering an RST with an RST could loop
    const st = stream[kState];
    st.reset = true;
    const err = new SpdyStreamResetError(status, true);
    st.settleReply?.reject(err);
    st.settleReply = null;
    stream.destroy(err);
  }

  private onSettings(entries: { id: number; value: number }[]): void {
    for (const e of entries) {
      if (e.id === SettingsId.INITIAL_WINDOW_SIZE) {
        if (e.value > MAX_31BIT) {
          this.fail(new SpdyProtocolError(`INITIAL_WINDOW_SIZE ${e.value} exceeds 2^31-1`), GoAwayStatus.PROTOCOL_ERROR);
          return;
        }
        const delta = e.value - this.peerInitialWindow;
        this.peerInitialWindow = e.value;
        this.peerFlowControl = true;
        // SPDY/3.1: a new initial window shifts the send window of every open stream.
        for (const s of this.streams.values()) s[kState].sendWindow += delta;
      } else if (e.id === SettingsId.MAX_CONCURRENT_STREAMS) {
        this.peerMaxStreams = e.value;
      }
    }
    this.pumpBlocked();
  }

  private onWindowUpdate(id: number, delta: number): void {
    this.peerFlowControl = true;
    if (id === 0) {
      this.sendWindow += delta;
      if (this.sendWindow > MAX_31BIT) {
        this.fail(new SpdyProtocolError("session window grew past 2^31-1"), GoAwayStatus.PROTOCOL_ERROR);
        return;
      }
      this.pumpBlocked();
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) return; // a stream that has just closed
    const st = stream[kState];
    st.sendWindow += delta;
    if (st.sendWindow > MAX_31BIT) {
      this.resetStream(stream, RstStatus.FLOW_CONTROL_ERROR, "stream window grew past 2^31-1");
      return;
    }
    this.pump(stream);
  }

  private onPing(id: number): void {
    if (id === 0) return; // invalid, and a Go peer drops the connection over an echoed one
    const mine = this.isServer ? 0 : 1;
    if (id % 2 !== mine) {
      this.send({ type: "PING", id });
      return;
    }
    const p = this.pings.get(id);
    if (!p) return;
    this.pings.delete(id);
    p.resolve(performance.now() - p.start);
  }

  private onGoaway(lastGood: number, status: number): void {
    this.goawayReceived = true;
    if (status !== GoAwayStatus.OK) this.closeError ??= new SpdySessionClosedError(`peer went away with status ${status}`);
    // Streams this side opened past lastGood were never seen by the peer: safe to retry elsewhere.
    for (const s of [...this.streams.values()]) {
      if (!s[kState].incoming && s.id > lastGood) {
        s[kState].reset = true;
        s.destroy(new SpdyStreamResetError(RstStatus.REFUSED_STREAM, true, `stream ${s.id} refused by the peer's GOAWAY`));
      }
    }
    this.maybeFinish();
  }

  private remoteEnded(stream: SpdyStream): void {
    const st = stream[kState];
    st.remoteFin = true;
    stream.push(null);
    this.maybeRelease(stream);
  }

  // ---- flow control ----

  private credit(stream: SpdyStream): void {
    const st = stream[kState];
    if (st.reset || this.tornDown) return;
    const consumed = st.uncredited - stream.readableLength;
    if (consumed <= 0) return;
    if (consumed >= Math.max(1, Math.floor(this.initialWindow / 2)) || st.recvWindow < 0) {
      st.uncredited -= consumed;
      st.recvWindow += consumed;
      if (!st.remoteFin) this.send({ type: "WINDOW_UPDATE", streamId: stream.id, delta: consumed });
    }
    if (st.recvWindow >= 0 && this.overrun.delete(stream)) this.maybeResume();
  }

  private creditSession(n: number): void {
    if (n === 0) return;
    this.sessionUncredited += n;
    if (this.sessionUncredited >= Math.floor(this.sessionRecvWindow / 2)) {
      this.send({ type: "WINDOW_UPDATE", streamId: 0, delta: this.sessionUncredited });
      this.sessionUncredited = 0;
    }
  }

  private maybeResume(): void {
    if (this.overrun.size === 0 && !this.tornDown) this.socket.resume();
  }

  // ---- stream and session ends ----

  private sendRst(id: number, status: number): void {
    this.send({ type: "RST_STREAM", streamId: id, status });
  }

  /** A stream error found here: RST_STREAM to the peer, the stream destroyed with the same status. */
  private resetStream(stream: SpdyStream, status: number, why: string): void {
    const st = stream[kState];
    if (!st.reset) {
      st.reset = true;
      this.sendRst(stream.id, status);
    }
    stream.destroy(new SpdyStreamResetError(status, false, `stream ${stream.id}: ${why}`));
  }

  private maybeRelease(stream: SpdyStream): void {
    const st = stream[kState];
    if (st.localFin && st.remoteFin) this.release(stream);
  }

  private release(stream: SpdyStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    this.drainWaiting.delete(stream);
    if (this.overrun.delete(stream)) this.maybeResume();
    this.maybeFinish();
  }

  /** After a GOAWAY either way, the session ends with its last stream. */
  private maybeFinish(): void {
    if (this.tornDown || this.ending) return;
    if (!(this.goawaySent || this.goawayReceived) || this.streams.size > 0) return;
    this.ending = true;
    if (this.outq.length === 0) this.endSocket();
  }

  private endSocket(): void {
    if (!this.socket.writableEnded) this.socket.end();
  }

  private onSocketEnd(): void {
    // The peer sends nothing more: streams still waiting on it can never finish.
    if (this.tornDown) return;
    if (this.streams.size > 0) {
      this.closeError ??= new SpdySessionClosedError(`peer closed the connection with ${this.streams.size} open streams`);
      this.teardown(this.closeError);
    }
    this.endSocket();
  }

  private onSocketClose(): void {
    this.socketClosed = true;
    if (!this.tornDown) {
      if (this.streams.size > 0) {
        this.closeError ??= new SpdySessionClosedError(`connection closed with ${this.streams.size} open streams`);
      }
      this.teardown(this.closeError);
    }
    this.emitClose();
  }

  private onIdle(): void {
    if (this.tornDown) return;
    this.outq.length = 0; // as in fail(): what follows must not wait on a header block
    const err = new SpdyIdleTimeoutError(`no frames for ${this.idleTimeoutMs} ms`);
    for (const s of [...this.streams.values()]) {
      if (!s[kState].reset) this.sendRst(s.id, RstStatus.CANCEL);
      s[kState].reset = true;
    }
    this.send({ type: "GOAWAY", lastGoodStreamId: this.lastAcceptedPeerId, status: GoAwayStatus.OK });
    this.closeError = err;
    this.teardown(err);
    this.hangUp();
  }

  /** A session error: GOAWAY with the status, every stream destroyed, the socket ended. */
  private fail(err: Error, status: number): void {
    if (this.tornDown) return;
    const why = err instanceof SpdyProtocolError || err instanceof SpdyCompressionError ? err : new SpdyProtocolError(err.message);
    this.closeError = why;
    // Straight to the socket: a frame queued behind a header block that never compresses
    // would never leave.
    this.outq.length = 0;
    this.send({ type: "GOAWAY", lastGoodStreamId: this.lastAcceptedPeerId, status });
    this.teardown(why);
    this.hangUp();
    if (this.listenerCount("error") > 0) process.nextTick(() => this.emit("error", why));
  }

  /** Ends the socket after what is written, then destroys it so 'close' follows even if the peer lingers. */
  private hangUp(): void {
    if (this.socketClosed) return;
    if (this.socket.writableEnded) {
      this.socket.destroy();
      return;
    }
    this.socket.end(() => this.socket.destroy());
  }

  /** Frees everything; 'close' follows when the socket has closed. */
  private teardown(cause: Error | undefined): void {
    if (this.tornDown) return;
    if (this.corked && !this.socket.destroyed) {
      this.corked = false;
      this.socket.uncork();
    }
    this.tornDown = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.deflater.close();
    this.inflater.close();
    this.outq.length = 0;
    this.inbox.length = 0;
    this.inboxHead = 0;
    const closed = new SpdySessionClosedError("session closed", { cause });
    for (const p of this.pings.values()) p.reject(closed);
    this.pings.clear();
    for (const s of [...this.streams.values()]) {
      s[kState].reset = true;
      s.destroy(closed);
    }
    this.streams.clear();
    this.blocked.clear();
    this.overrun.clear();
    this.drainWaiting.clear();
  }

  private emitClose(): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    // After the streams' own 'error'/'close', which destroy() queued on the same tick queue.
    process.nextTick(() => this.emit("close", this.closeError));
  }
}
