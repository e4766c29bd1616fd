// SPDY/3.1 framing: the wire layout of every frame, and a parser that takes bytes as they arrive.
// Header blocks stay compressed bytes here; headers.ts owns the zlib context they need.
//
// Every frame starts with 8 bytes. A control frame: C=1, version (15 bits), type (16 bits),
// flags (8 bits), length (24 bits). A DATA frame: C=0, stream id (31 bits), flags, length. The
// length counts the bytes after these 8.

export const SPDY_VERSION = 3;

/** Control frame types of SPDY/3.1 (NOOP, 5, went with SPDY/2; CREDENTIAL, 10, with 3.1). */
export const ControlType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** FLAG_FIN: SYN_STREAM, SYN_REPLY, HEADERS and DATA; the sender sends nothing more on the stream. */
export const FLAG_FIN = 0x01;
/** FLAG_UNIDIRECTIONAL: SYN_STREAM only; the recipient must not send on the stream. */
export const FLAG_UNIDIRECTIONAL = 0x02;
/** FLAG_SETTINGS_CLEAR_SETTINGS: SETTINGS only; forget persisted settings. */
export const FLAG_SETTINGS_CLEAR_SETTINGS = 0x01;

/** Per-entry flags of a SETTINGS frame. */
export const SettingsFlag = { PERSIST_VALUE: 0x01, PERSISTED: 0x02 } as const;

export const SettingsId = {
  UPLOAD_BANDWIDTH: 1,
  DOWNLOAD_BANDWIDTH: 2,
  ROUND_TRIP_TIME: 3,
  MAX_CONCURRENT_STREAMS: 4,
  CURRENT_CWND: 5,
  DOWNLOAD_RETRANS_RATE: 6,
  INITIAL_WINDOW_SIZE: 7,
  CLIENT_CERTIFICATE_VECTOR_SIZE: 8,
} as const;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  // 10 was INVALID_CREDENTIALS, gone with CREDENTIAL frames in 3.1.
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes. */
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** The 24-bit length field's ceiling: no frame can say it is longer. */
export const MAX_FRAME_LENGTH = 0xffffff;
/** Stream ids, window sizes and deltas are 31-bit. */
export const MAX_31BIT = 0x7fffffff;

export interface SynStreamFrame {
  type: "SYN_STREAM";
  streamId: number;
  associatedId: number;
  /** 0 (highest) to 7. */
  priority: number;
  slot: number;
  fin: boolean;
  unidirectional: boolean;
  /** The compressed name/value block. */
  headerBlock: Buffer;
}
export interface SynReplyFrame {
  type: "SYN_REPLY";
  streamId: number;
  fin: boolean;
  headerBlock: Buffer;
}
export interface RstStreamFrame {
  type: "RST_STREAM";
  streamId: number;
  status: number;
}
export interface SettingsEntry {
  id: number;
  value: number;
  /** SettingsFlag bits. */
  flags: number;
}
export interface SettingsFrame {
  type: "SETTINGS";
  clearSettings: boolean;
  entries: SettingsEntry[];
}
export interface PingFrame {
  type: "PING";
  id: number;
}
export interface GoAwayFrame {
  type: "GOAWAY";
  lastGoodStreamId: number;
  status: number;
}
export interface HeadersFrame {
  type: "HEADERS";
  streamId: number;
  fin: boolean;
  headerBlock: Buffer;
}
export interface WindowUpdateFrame {
  type: "WINDOW_UPDATE";
  /** 0 for the session's window (SPDY/3.1). */
  streamId: number;
  delta: number;
}
export interface DataFrame {
  type: "DATA";
  streamId: number;
  fin: boolean;
  data: Buffer;
}
/** A control frame of a type this version does not know; the spec says to ignore it. */
export interface UnknownControlFrame {
  type: "UNKNOWN";
  controlType: number;
  flags: number;
  payload: Buffer;
}

export type Frame =
  | SynStreamFrame
  | SynReplyFrame
  | RstStreamFrame
  | SettingsFrame
  | PingFrame
  | GoAwayFrame
  | HeadersFrame
  | WindowUpdateFrame
  | DataFrame
  | UnknownControlFrame;

/** Bytes that break the framing: a session error, answered with GOAWAY. */
export class SpdyProtocolError extends Error {
  /** The GOAWAY status to answer with. */
  readonly status: number;
  constructor(message: string, status: number = GoAwayStatus.PROTOCOL_ERROR) {
    super(message);
    this.name = new.target.name;
    this.status = status;
  }
}

/** A frame this side was asked to encode that the wire cannot carry (a caller's bug). */
export class SpdyFrameEncodeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

function check31(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > MAX_31BIT) throw new SpdyFrameEncodeError(`${what} ${v} is not a 31-bit number`);
}

function check32(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new SpdyFrameEncodeError(`${what} ${v} is not a 32-bit number`);
}

function controlFrame(type: number, flags: number, payloadLength: number): Buffer {
  if (payloadLength > MAX_FRAME_LENGTH) {
    throw new SpdyFrameEncodeError(`frame payload of ${payloadLength} bytes exceeds the 24-bit length`);
  }
  const b = Buffer.allocUnsafe(8 + payloadLength);
  b.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  b.writeUInt16BE(type, 2);
  b[4] = flags & 0xff;
  b.writeUIntBE(payloadLength, 5, 3);
  return b;
}

/** The frame as bytes on the wire. Throws SpdyFrameEncodeError for values the layout cannot hold. */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.type) {
    case "SYN_STREAM": {
      check31("stream id", frame.streamId);
      check31("associated stream id", frame.associatedId);
      if (!Number.isInteger(frame.priority) || frame.priority < 0 || frame.priority > 7) {
        throw new SpdyFrameEncodeError(`priority ${frame.priority} is not 0..7`);
      }
      const flags = (frame.fin ? FLAG_FIN : 0) | (frame.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
      const b = controlFrame(ControlType.SYN_STREAM, flags, 10 + frame.headerBlock.length);
      b.writeUInt32BE(frame.streamId, 8);
      b.writeUInt32BE(frame.associatedId, 12);
      b[16] = frame.priority << 5;
      b[17] = frame.slot & 0xff;
      frame.headerBlock.copy(b, 18);
      return b;
    }
    case "SYN_REPLY":
    case "HEADERS": {
      check31("stream id", frame.streamId);
      const type = frame.type === "SYN_REPLY" ? ControlType.SYN_REPLY : ControlType.HEADERS;
      const b = controlFrame(type, frame.fin ? FLAG_FIN : 0, 4 + frame.headerBlock.length);
      b.writeUInt32BE(frame.streamId, 8);
      frame.headerBlock.copy(b, 12);
      return b;
    }
    case "RST_STREAM": {
      check31("stream id", frame.streamId);
      check32("status", frame.status);
      const b = controlFrame(ControlType.RST_STREAM, 0, 8);
      b.writeUInt32BE(frame.streamId, 8);
      b.writeUInt32BE(frame.status, 12);
      return b;
    }
    case "SETTINGS": {
      const b = controlFrame(
        ControlType.SETTINGS,
        frame.clearSettings ? FLAG_SETTINGS_CLEAR_SETTINGS : 0,
        4 + 8 * frame.entries.length,
      );
      b.writeUInt32BE(frame.entries.length, 8);
      let off = 12;
      for (const e of frame.entries) {
        if (!Number.isInteger(e.id) || e.id < 0 || e.id > 0xffffff) throw new SpdyFrameEncodeError(`setting id ${e.id} is not 24-bit`);
        check32("setting value", e.value);
        b[off] = e.flags & 0xff;
        b.writeUIntBE(e.id, off + 1, 3);
        b.writeUInt32BE(e.value, off + 4);
        off += 8;
      }
      return b;
    }
    case "PING": {
      check32("ping id", frame.id);
      const b = controlFrame(ControlType.PING, 0, 4);
      b.writeUInt32BE(frame.id, 8);
      return b;
    }
    case "GOAWAY": {
      check31("last good stream id", frame.lastGoodStreamId);
      check32("status", frame.status);
      const b = controlFrame(ControlType.GOAWAY, 0, 8);
      b.writeUInt32BE(frame.lastGoodStreamId, 8);
      b.writeUInt32BE(frame.status, 12);
      return b;
    }
    case "WINDOW_UPDATE": {
      check31("stream id", frame.streamId);
      check31("window delta", frame.delta);
      const b = controlFrame(ControlType.WINDOW_UPDATE, 0, 8);
      b.writeUInt32BE(frame.streamId, 8);
      b.writeUInt32BE(frame.delta, 12);
      return b;
    }
    case "DATA": {
      check31("stream id", frame.streamId);
      if (frame.data.length > MAX_FRAME_LENGTH) {
        throw new SpdyFrameEncodeError(`DATA payload of ${frame.data.length} bytes exceeds the 24-bit length`);
      }
      const b = Buffer.allocUnsafe(8 + frame.data.length);
      b.writeUInt32BE(frame.streamId, 0);
      b[4] = frame.fin ? FLAG_FIN : 0;
      b.writeUIntBE(frame.data.length, 5, 3);
      frame.data.copy(b, 8);
      return b;
    }
    case "UNKNOWN": {
      if (!Number.isInteger(frame.controlType) || frame.controlType < 0 || frame.controlType > 0xffff) {
        throw new SpdyFrameEncodeError(`control type ${frame.controlType} is not 16-bit`);
      }
      const b = controlFrame(frame.controlType, frame.flags, frame.payload.length);
      frame.payload.copy(b, 8);
      return b;
    }
  }
}

export interface FrameParserOptions {
  /** The largest frame payload accepted; a longer one is a protocol error. Default: MAX_FRAME_LENGTH. */
  maxFrameSize?: number;
}

export interface ParseResult {
  /** The frames completed by this chunk, in wire order (those before an error included). */
  frames: Frame[];
  /** Set when the bytes stopped being SPDY/3; the parser then takes nothing more. */
  error?: SpdyProtocolError;
}

/**
 * Cuts a byte stream into frames. Chunks may split frames anywhere or hold several; a frame is
 * decoded once its last byte is in. The payload of a frame that arrived in one chunk is a view
 * of that chunk, not a copy.
 */
export class FrameParser {
  private readonly maxFrameSize: number;
  private chunks: Buffer[] = [];
  private length = 0;
  private failed: SpdyProtocolError | undefined;

  constructor(opts: FrameParserOptions = {}) {
    this.maxFrameSize = Math.min(opts.maxFrameSize ?? MAX_FRAME_LENGTH, MAX_FRAME_LENGTH);
  }

  /** Bytes held for a frame not yet complete. */
  get buffered(): number {
    return this.length;
  }

  push(chunk: Buffer): ParseResult {
    if (this.failed) return { frames: [], error: this.failed };
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.length >= 8) {
      const head = this.peek(8);
      const payloadLength = head.readUIntBE(5, 3);
      // Checked before waiting for the payload, so a bogus length fails now rather than after
      // buffering up to 16 MiB of garbage.
      const early = this.checkHeader(head, payloadLength);
      if (early) return this.fail(frames, early);
      if (this.length < 8 + payloadLength) break;
      this.take(8);
      const payload = this.take(payloadLength);
      const decoded = decodeBody(head, payload);
      if (decoded instanceof SpdyProtocolError) return this.fail(frames, decoded);
      frames.push(decoded);
    }
    return { frames };
  }

  private fail(frames: Frame[], error: SpdyProtocolError): ParseResult {
    this.failed = error;
    this.chunks = [];
    this.length = 0;
    return { frames, error };
  }

  private checkHeader(head: Buffer, payloadLength: number): SpdyProtocolError | undefined {
    if (payloadLength > this.maxFrameSize) {
      return new SpdyProtocolError(`frame of ${payloadLength} bytes exceeds the limit of ${this.maxFrameSize}`);
    }
    if ((head[0] & 0x80) === 0) return undefined;
    const version = head.readUInt16BE(0) & 0x7fff;
    if (version !== SPDY_VERSION) return new SpdyProtocolError(`unsupported SPDY version ${version}`);
    return undefined;
  }

  /** The first n buffered bytes, without consuming them. */
  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0].subarray(0, n);
  }

  /** Removes and returns the first n buffered bytes (a view when they lie in one chunk). */
  private take(n: number): Buffer {
    this.length -= n;
    const first = this.chunks[0];
    if (first === undefined) return Buffer.alloc(0);
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const want = n - off;
      if (c.length <= want) {
        c.copy(out, off);
        off += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, off, 0, want);
        this.chunks[0] = c.subarray(want);
        off = n;
      }
    }
    return out;
  }
}

function expectLength(name: string, p: Buffer, want: number): SpdyProtocolError | undefined {
  if (p.length === want) return undefined;
  return new SpdyProtocolError(`${name} frame of ${p.length} bytes, expected ${want}`);
}

function expectStreamId(name: string, id: number): SpdyProtocolError | undefined {
  if (id !== 0) return undefined;
  return new SpdyProtocolError(`${name} frame on stream 0`);
}

/** One frame from its 8-byte header and payload, or the reason it is not a frame. */
function decodeBody(head: Buffer, p: Buffer): Frame | SpdyProtocolError {
  const flags = head[4];
  if ((head[0] & 0x80) === 0) {
    const streamId = head.readUInt32BE(0) & MAX_31BIT;
    return expectStreamId("DATA", streamId) ?? { type: "DATA", streamId, fin: (flags & FLAG_FIN) !== 0, data: p };
  }
  const type = head.readUInt16BE(2);
  switch (type) {
    case ControlType.SYN_STREAM: {
      if (p.length < 10) return new SpdyProtocolError(`SYN_STREAM frame of ${p.length} bytes, expected at least 10`);
      const streamId = p.readUInt32BE(0) & MAX_31BIT;
      return (
        expectStreamId("SYN_STREAM", streamId) ?? {
          type: "SYN_STREAM",
          streamId,
          associatedId: p.readUInt32BE(4) & MAX_31BIT,
          priority: p[8] >> 5,
          slot: p[9],
          fin: (flags & FLAG_FIN) !== 0,
          unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0,
          headerBlock: p.subarray(10),
        }
      );
    }
    case ControlType.SYN_REPLY:
    case ControlType.HEADERS: {
      const name = type === ControlType.SYN_REPLY ? "SYN_REPLY" : "HEADERS";
      if (p.length < 4) return new SpdyProtocolError(`${name} frame of ${p.length} bytes, expected at least 4`);
      const streamId = p.readUInt32BE(0) & MAX_31BIT;
      return (
        expectStreamId(name, streamId) ?? {
          type: name,
          streamId,
          fin: (flags & FLAG_FIN) !== 0,
          headerBlock: p.subarray(4),
        }
      );
    }
    case ControlType.RST_STREAM: {
      const bad = expectLength("RST_STREAM", p, 8);
      if (bad) return bad;
      const streamId = p.readUInt32BE(0) & MAX_31BIT;
      return expectStreamId("RST_STREAM", streamId) ?? { type: "RST_STREAM", streamId, status: p.readUInt32BE(4) };
    }
    case ControlType.SETTINGS: {
      if (p.length < 4) return new SpdyProtocolError(`SETTINGS frame of ${p.length} bytes, expected at least 4`);
      const count = p.readUInt32BE(0);
      if (p.length !== 4 + 8 * count) {
        return new SpdyProtocolError(`SETTINGS frame of ${p.length} bytes cannot hold its ${count} entries`);
      }
      const entries: SettingsEntry[] = [];
      for (let off = 4; off < p.length; off += 8) {
        entries.push({ flags: p[off], id: p.readUIntBE(off + 1, 3), value: p.readUInt32BE(off + 4) });
      }
      return { type: "SETTINGS", clearSettings: (flags & FLAG_SETTINGS_CLEAR_SETTINGS) !== 0, entries };
    }
    case ControlType.PING:
      return expectLength("PING", p, 4) ?? { type: "PING", id: p.readUInt32BE(0) };
    case ControlType.GOAWAY:
      return (
        expectLength("GOAWAY", p, 8) ?? {
          type: "GOAWAY",
          lastGoodStreamId: p.readUInt32BE(0) & MAX_31BIT,
          status: p.readUInt32BE(4),
        }
      );
    case ControlType.WINDOW_UPDATE:
      return (
        expectLength("WINDOW_UPDATE", p, 8) ?? {
          type: "WINDOW_UPDATE",
          streamId: p.readUInt32BE(0) & MAX_31BIT,
          delta: p.readUInt32BE(4) & MAX_31BIT,
        }
      );
    default:
      return { type: "UNKNOWN", controlType: type, flags, payload: p };
  }
}
