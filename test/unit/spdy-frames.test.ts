import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { constants, inflateSync } from "node:zlib";
import {
  encodeFrame,
  type Frame,
  FrameParser,
  GoAwayStatus,
  RstStatus,
  SettingsFlag,
  SettingsId,
  SpdyFrameEncodeError,
  SpdyProtocolError,
} from "../../cri/streaming/spdy/frames";
import {
  decodeHeaderBlock,
  encodeHeaderBlock,
  HeaderDeflater,
  HeaderInflater,
  SPDY3_DICTIONARY,
  SpdyCompressionError,
  SpdyHeaderError,
} from "../../cri/streaming/spdy/headers";

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ""), "hex");

function parseAll(bytes: Buffer, opts?: { maxFrameSize?: number }) {
  return new FrameParser(opts).push(bytes);
}

/** One frame of each type, with values that reach the edges of their fields. */
const everyFrame: Frame[] = [
  {
    type: "SYN_STREAM",
    streamId: 0x7fffffff,
    associatedId: 3,
    priority: 7,
    slot: 9,
    fin: true,
    unidirectional: true,
    headerBlock: Buffer.from("compressed"),
  },
  { type: "SYN_STREAM", streamId: 1, associatedId: 0, priority: 0, slot: 0, fin: false, unidirectional: false, headerBlock: Buffer.alloc(0) },
  { type: "SYN_REPLY", streamId: 2, fin: true, headerBlock: Buffer.from([1, 2, 3]) },
  { type: "RST_STREAM", streamId: 5, status: RstStatus.FRAME_TOO_LARGE },
  {
    type: "SETTINGS",
    clearSettings: true,
    entries: [
      { id: SettingsId.INITIAL_WINDOW_SIZE, value: 0x7fffffff, flags: SettingsFlag.PERSIST_VALUE },
      { id: SettingsId.MAX_CONCURRENT_STREAMS, value: 100, flags: SettingsFlag.PERSISTED },
      { id: 0xffffff, value: 0xffffffff, flags: 0 },
    ],
  },
  { type: "SETTINGS", clearSettings: false, entries: [] },
  { type: "PING", id: 0xffffffff },
  { type: "GOAWAY", lastGoodStreamId: 41, status: GoAwayStatus.INTERNAL_ERROR },
  { type: "HEADERS", streamId: 7, fin: false, headerBlock: Buffer.from("h") },
  { type: "WINDOW_UPDATE", streamId: 0, delta: 0x7fffffff },
  { type: "WINDOW_UPDATE", streamId: 9, delta: 1 },
  { type: "DATA", streamId: 11, fin: true, data: Buffer.from("payload") },
  { type: "DATA", streamId: 13, fin: false, data: Buffer.alloc(0) },
  { type: "UNKNOWN", controlType: 10, flags: 0x80, payload: Buffer.from("credential") },
];

describe("SPDY/3.1 frames", () => {
  test("every frame type survives encode then decode", () => {
    for (const frame of everyFrame) {
      const { frames, error } = parseAll(encodeFrame(frame));
      assert.equal(error, undefined, frame.type);
      assert.deepEqual(frames, [frame], frame.type);
    }
  });

  test("hand-built control frames decode as the spec lays them out", () => {
    // C=1 | version 3 | type | flags | 24-bit length | payload
    const cases: [string, Frame][] = [
      // SYN_STREAM, FIN|UNIDIRECTIONAL, stream 1, associated 0, priority 2 (top 3 bits), slot 0
      [
        "8003 0001 | 03 00000c | 00000001 | 00000000 | 40 00 | aabb",
        {
          type: "SYN_STREAM",
          streamId: 1,
          associatedId: 0,
          priority: 2,
          slot: 0,
          fin: true,
          unidirectional: true,
          headerBlock: hex("aabb"),
        },
      ],
      // The reserved top bit of a stream id is not part of the id.
      ["8003 0002 | 00 000005 | 80000003 | ff", { type: "SYN_REPLY", streamId: 3, fin: false, headerBlock: hex("ff") }],
      ["8003 0003 | 00 000008 | 00000001 | 00000005", { type: "RST_STREAM", streamId: 1, status: RstStatus.CANCEL }],
      // SETTINGS: count 1; entry = flags(8) id(24) value(32): PERSIST_VALUE, INITIAL_WINDOW_SIZE=65536
      [
        "8003 0004 | 00 00000c | 00000001 | 01 000007 | 00010000",
        { type: "SETTINGS", clearSettings: false, entries: [{ flags: 1, id: SettingsId.INITIAL_WINDOW_SIZE, value: 65536 }] },
      ],
      ["8003 0006 | 00 000004 | 00000001", { type: "PING", id: 1 }],
      ["8003 0007 | 00 000008 | 00000005 | 00000001", { type: "GOAWAY", lastGoodStreamId: 5, status: GoAwayStatus.PROTOCOL_ERROR }],
      ["8003 0008 | 01 000005 | 00000007 | 00", { type: "HEADERS", streamId: 7, fin: true, headerBlock: hex("00") }],
      // WINDOW_UPDATE on stream 0: the session window (SPDY/3.1)
      ["8003 0009 | 00 000008 | 00000000 | 00008000", { type: "WINDOW_UPDATE", streamId: 0, delta: 0x8000 }],
      // DATA: C=0 | stream id | flags FIN | length 5
      ["00000001 | 01 000005 | 68656c6c6f", { type: "DATA", streamId: 1, fin: true, data: Buffer.from("hello") }],
    ];
    for (const [bytes, want] of cases) {
      const { frames, error } = parseAll(hex(bytes));
      assert.equal(error, undefined, bytes);
      assert.deepEqual(frames, [want], bytes);
    }
  });

  test("encoding writes the spec's layout byte for byte", () => {
    assert.deepEqual(encodeFrame({ type: "PING", id: 2 }), hex("8003 0006 00 000004 00000002"));
    assert.deepEqual(
      encodeFrame({ type: "WINDOW_UPDATE", streamId: 3, delta: 1000 }),
      hex("8003 0009 00 000008 00000003 000003e8"),
    );
    assert.deepEqual(encodeFrame({ type: "DATA", streamId: 1, fin: true, data: Buffer.alloc(0) }), hex("00000001 01 000000"));
    assert.deepEqual(
      encodeFrame({ type: "SETTINGS", clearSettings: false, entries: [{ id: 4, value: 100, flags: 0 }] }),
      hex("8003 0004 00 00000c 00000001 00000004 00000064"),
    );
  });

  test("frames captured from Go's spdy framer (moby/spdystream) decode, headers included", async () => {
    // Written by spdy.Framer.WriteFrame in one framer, in this order, so the three header blocks
    // share one zlib stream: SYN_STREAM 1 {Streamtype: stdout, X-Multi: [a, b]}, SYN_STREAM 3
    // {Streamtype: stderr}, SYN_REPLY 1 {}, SETTINGS (PERSIST_VALUE INITIAL_WINDOW_SIZE=65536),
    // DATA 1 FIN "hello".
    const captured = hex(
      "80030001000000370000000100000000000078f9e3c6a7c202e50e703a2b294a4dcc8516256cc52529f9e08298bd4237b734a724135c5a322401000000ffff" +
        "80030001000000190000000300000000000062606060c4aa3ab5a808000000ffff" +
        "800300020000000e000000016260606000000000ffff" +
        "800300040000000c000000010100000700010000" +
        "000000010100000568656c6c6f",
    );
    const { frames, error } = parseAll(captured);
    assert.equal(error, undefined);
    assert.deepEqual(
      frames.map((f) => f.type),
      ["SYN_STREAM", "SYN_STREAM", "SYN_REPLY", "SETTINGS", "DATA"],
    );
    const inflater = new HeaderInflater();
    try {
      const blocks: Buffer[] = [];
      for (const f of frames) if ("headerBlock" in f) blocks.push(await inflater.inflate(f.headerBlock));
      assert.deepEqual(decodeHeaderBlock(blocks[0]), { streamtype: "stdout", "x-multi": "a\0b" });
      assert.deepEqual(decodeHeaderBlock(blocks[1]), { streamtype: "stderr" });
      assert.deepEqual(decodeHeaderBlock(blocks[2]), {});
    } finally {
      inflater.close();
    }
    assert.deepEqual(frames[3], {
      type: "SETTINGS",
      clearSettings: false,
      entries: [{ flags: SettingsFlag.PERSIST_VALUE, id: SettingsId.INITIAL_WINDOW_SIZE, value: 65536 }],
    });
    assert.deepEqual(frames[4], { type: "DATA", streamId: 1, fin: true, data: Buffer.from("hello") });
  });

  test("the parser fed one byte at a time yields the same frames", () => {
    const wire = Buffer.concat(everyFrame.map(encodeFrame));
    const parser = new FrameParser();
    const got: Frame[] = [];
    for (let i = 0; i < wire.length; i++) {
      const { frames, error } = parser.push(wire.subarray(i, i + 1));
      assert.equal(error, undefined);
      got.push(...frames);
    }
    assert.deepEqual(got, everyFrame);
    assert.equal(parser.buffered, 0);
  });

  test("several frames in one chunk, and a frame split across uneven chunks", () => {
    const wire = Buffer.concat(everyFrame.map(encodeFrame));
    const parser = new FrameParser();
    const got: Frame[] = [];
    for (const cut of [[0, 3], [3, 40], [40, 41], [41, wire.length]]) {
      got.push(...parser.push(wire.subarray(cut[0], cut[1])).frames);
    }
    assert.deepEqual(got, everyFrame);
  });

  test("an oversized frame is a protocol error result, before its payload arrives", () => {
    const parser = new FrameParser({ maxFrameSize: 1024 });
    const r = parser.push(hex("00000001 00 000401"));
    assert.deepEqual(r.frames, []);
    assert.ok(r.error instanceof SpdyProtocolError);
    assert.equal(r.error.status, GoAwayStatus.PROTOCOL_ERROR);
    assert.match(r.error.message, /exceeds the limit/);
    // A failed parser stays failed.
    assert.ok(parser.push(encodeFrame({ type: "PING", id: 1 })).error instanceof SpdyProtocolError);
  });

  test("frames before the bad one are still returned", () => {
    const good = encodeFrame({ type: "PING", id: 1 });
    const r = parseAll(Buffer.concat([good, hex("8002 0006 00 000004 00000001")]));
    assert.deepEqual(r.frames, [{ type: "PING", id: 1 }]);
    assert.match(r.error?.message ?? "", /unsupported SPDY version 2/);
  });

  test("garbage is an error result, never a throw", () => {
    const bad = [
      Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), // 'G' has the top bit clear: a huge DATA frame on stream 0x47455420
      hex("8003 0003 00 000004 00000001"), // RST_STREAM too short
      hex("8003 0006 00 000008 00000001 00000002"), // PING too long
      hex("8003 0004 00 000008 00000002 00000007"), // SETTINGS says 2 entries, holds none
      hex("8003 0001 00 000006 000000010000"), // SYN_STREAM shorter than its fixed part
      hex("8003 0001 00 00000a 00000000 00000000 0000"), // SYN_STREAM on stream 0
      hex("00000000 00 000001 ff"), // DATA on stream 0
      hex("ffff ffff ffff ffff"),
    ];
    for (const b of bad) {
      const r = parseAll(b, { maxFrameSize: 1 << 20 });
      assert.ok(r.error instanceof SpdyProtocolError, b.toString("hex"));
    }
    // Random bytes: any outcome but an exception.
    let seed = 1;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed & 0xff;
    };
    for (let i = 0; i < 200; i++) {
      const junk = Buffer.from(Array.from({ length: 64 }, rnd));
      parseAll(junk);
    }
  });

  test("values the layout cannot hold are refused when encoding", () => {
    assert.throws(() => encodeFrame({ type: "PING", id: -1 }), SpdyFrameEncodeError);
    assert.throws(() => encodeFrame({ type: "RST_STREAM", streamId: 2 ** 31, status: 1 }), SpdyFrameEncodeError);
    assert.throws(
      () =>
        encodeFrame({
          type: "SYN_STREAM",
          streamId: 1,
          associatedId: 0,
          priority: 8,
          slot: 0,
          fin: false,
          unidirectional: false,
          headerBlock: Buffer.alloc(0),
        }),
      SpdyFrameEncodeError,
    );
    assert.throws(() => encodeFrame({ type: "DATA", streamId: 1, fin: false, data: Buffer.alloc(0x1000000) }), SpdyFrameEncodeError);
  });
});

describe("SPDY/3 header blocks", () => {
  test("the dictionary is the 1423 bytes of Go's spdy package", () => {
    assert.equal(SPDY3_DICTIONARY.length, 1423);
    assert.equal(
      createHash("sha256").update(SPDY3_DICTIONARY).digest("hex"),
      "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02",
    );
    // Its start and end, as the spec prints them.
    assert.deepEqual(SPDY3_DICTIONARY.subarray(0, 11), Buffer.from("\0\0\0\x07options", "latin1"));
    assert.equal(SPDY3_DICTIONARY.subarray(-8).toString("latin1"), "*,enq=0.");
  });

  test("a block: 32-bit count, then 32-bit length-prefixed names and values", () => {
    const block = encodeHeaderBlock({ Host: "x", accept: ["a", "b"] });
    assert.deepEqual(block, hex("00000002 00000004 686f7374 00000001 78 00000006 616363657074 00000003 610062"));
    assert.deepEqual(decodeHeaderBlock(block), { host: "x", accept: "a\0b" });
  });

  test("names colliding once lower-cased are merged, empty values are kept", () => {
    assert.deepEqual(decodeHeaderBlock(encodeHeaderBlock({ "X-A": "1", "x-a": ["2", "3"], empty: "" })), {
      "x-a": "1\x002\x003",
      empty: "",
    });
    // "__proto__" is a header like any other.
    const odd = decodeHeaderBlock(encodeHeaderBlock(JSON.parse('{"__proto__": "v"}')));
    assert.equal(Object.getOwnPropertyDescriptor(odd, "__proto__")?.value, "v");
  });

  test("malformed blocks and header sets are SpdyHeaderError", () => {
    assert.throws(() => encodeHeaderBlock({ "": "x" }), SpdyHeaderError);
    assert.throws(() => encodeHeaderBlock({ a: ["x", ""] }), SpdyHeaderError);
    assert.throws(() => encodeHeaderBlock({ a: [] }), SpdyHeaderError);
    assert.throws(() => decodeHeaderBlock(hex("0000")), SpdyHeaderError);
    assert.throws(() => decodeHeaderBlock(hex("00000001 00000005 6162")), SpdyHeaderError); // name past the end
    assert.throws(() => decodeHeaderBlock(hex("00000001 00000000 00000000")), SpdyHeaderError); // empty name
    assert.throws(() => decodeHeaderBlock(hex("00000001 00000001 61 00000002 0061")), SpdyHeaderError); // leading NUL
    assert.throws(() => decodeHeaderBlock(hex("00000000 ff")), SpdyHeaderError); // trailing bytes
    assert.throws(() => decodeHeaderBlock(hex("ffffffff")), SpdyHeaderError); // count with no pairs
  });

  test("the first compressed block inflates alone with the dictionary", async () => {
    const deflater = new HeaderDeflater();
    try {
      const headers = { ":method": "POST", streamtype: "stdin", port: ["80", "443"] };
      const compressed = await deflater.deflate(encodeHeaderBlock(headers));
      // zlib header with FDICT set and the dictionary's Adler-32, 0xe3c6a7c2
      assert.equal(compressed.readUInt32BE(2), 0xe3c6a7c2);
      // A sync flush ends every block.
      assert.deepEqual(compressed.subarray(-4), hex("0000ffff"));
      // finishFlush: a block ends in a sync flush, not at the end of a zlib stream.
      const raw = inflateSync(compressed, { dictionary: SPDY3_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH });
      assert.deepEqual(decodeHeaderBlock(raw), { ":method": "POST", streamtype: "stdin", port: "80\x00443" });
    } finally {
      deflater.close();
    }
  });

  test("blocks share one zlib stream: the second needs the first", async () => {
    const deflater = new HeaderDeflater();
    const inflater = new HeaderInflater();
    const lone = new HeaderInflater();
    try {
      const h = { streamtype: "stdout", "x-long-header-name": "the same value both times" };
      // Submitted together: results come back in submission order.
      const [first, second] = await Promise.all([
        deflater.deflate(encodeHeaderBlock(h)),
        deflater.deflate(encodeHeaderBlock(h)),
      ]);
      // Alone, the second block has no zlib header and refers to the first one's bytes.
      assert.throws(() => inflateSync(second, { dictionary: SPDY3_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH }));
      await assert.rejects(lone.inflate(second), SpdyCompressionError);
      // The second is smaller: it points back into the first block.
      assert.ok(second.length < first.length, `${second.length} < ${first.length}`);
      assert.deepEqual(decodeHeaderBlock(await inflater.inflate(first)), h);
      assert.deepEqual(decodeHeaderBlock(await inflater.inflate(second)), h);
    } finally {
      deflater.close();
      inflater.close();
      lone.close();
    }
  });

  test("many blocks in flight, large and small, keep their order", async () => {
    const deflater = new HeaderDeflater();
    const inflater = new HeaderInflater();
    try {
      const sets = Array.from({ length: 50 }, (_, i) => ({
        n: String(i),
        big: i % 10 === 0 ? createHash("sha512").update(String(i)).digest("hex").repeat(500) : "small",
      }));
      const compressed = await Promise.all(sets.map((h) => deflater.deflate(encodeHeaderBlock(h))));
      const decoded = await Promise.all(compressed.map((c) => inflater.inflate(c)));
      assert.deepEqual(decoded.map(decodeHeaderBlock), sets);
    } finally {
      deflater.close();
      inflater.close();
    }
  });

  test("corrupt or oversized compressed input rejects, and the inflater stays failed", async () => {
    const inflater = new HeaderInflater();
    await assert.rejects(inflater.inflate(Buffer.from("definitely not zlib")), SpdyCompressionError);
    await assert.rejects(inflater.inflate(Buffer.alloc(4)), SpdyCompressionError);
    inflater.close();

    const deflater = new HeaderDeflater();
    const small = new HeaderInflater(1000);
    try {
      const bomb = await deflater.deflate(encodeHeaderBlock({ a: "x".repeat(100_000) }));
      await assert.rejects(small.inflate(bomb), /exceeds 1000 bytes/);
    } finally {
      deflater.close();
      small.close();
    }
  });
});
