import { Decoder as XDecoder, Encoder as XEncoder } from "cbor-x";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeFrame } from "../protocol/codec.ts";
import { Decoder, Encoder } from "./cbor-lite.ts";

// The options the protocol codec gives cbor-x (codec.ts).
const xEncoder = new XEncoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const xDecoder = new XDecoder({ useRecords: false, mapsAsObjects: true });
const lite = { encoder: new Encoder(), decoder: new Decoder() };

/** Values the protocol and the CBOR value codec carry. */
const value = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    fc.string({ unit: "grapheme", maxLength: 40 }),
    fc.string({ minLength: 300, maxLength: 400 }),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 300 }),
  ),
  node: fc.oneof({ depthSize: "small" }, tie("leaf"), fc.array(tie("node"), { maxLength: 5 }), fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== "__proto__"), tie("node"), { maxKeys: 5 })),
})).node;

/** Normalises Buffers (cbor-x in Node) to plain Uint8Arrays for comparison. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe("cbor-lite (the browser bundle's CBOR)", () => {
  it("decodes whatever cbor-x encodes, to the same value", () => {
    fc.assert(fc.property(value, (v) => { expect(plain(lite.decoder.decode(xEncoder.encode(v)))).toEqual(plain(v)); }), { numRuns: 400 });
  });

  it("encodes values cbor-x decodes to the same value", () => {
    fc.assert(fc.property(value, (v) => { expect(plain(xDecoder.decode(lite.encoder.encode(v)))).toEqual(plain(v)); }), { numRuns: 400 });
  });

  it("round-trips protocol frames both ways", () => {
    const frames = [
      { op: "message", sub: 3, topic: "sensor-data", partition: 2, offset: 2 ** 40 + 7, timestamp: Date.now(), key: new Uint8Array([1, 2]), value: new Uint8Array(70_000).fill(9), headers: { h: new Uint8Array([5]) } },
      { op: "subscribe", id: 1, sub: 1, topic: "t", from: { offsets: { 0: 5, 1: 0 }, epochs: { 0: "e1", 1: "e2" } }, reset: "earliest", credit: 1000 },
      { op: "welcome", id: 1, sessionId: "s", clientId: "c", node: "n", limits: { maxFrameBytes: 2097152, maxRecordBytes: 1048576, maxSubscriptions: 100, defaultCredit: 1000, maxCredit: 100000 } },
    ];
    for (const frame of frames) {
      expect(plain(lite.decoder.decode(encodeFrame(frame as never, "cbor") as Uint8Array))).toEqual(plain(frame));
      expect(plain(xDecoder.decode(lite.encoder.encode(frame)))).toEqual(plain(frame));
    }
  });

  it("handles 64-bit integers, floats of every width, dates, sets and indefinite lengths", () => {
    expect(lite.decoder.decode(xEncoder.encode(2n ** 60n))).toBe(2n ** 60n);
    expect(xDecoder.decode(lite.encoder.encode(2n ** 60n))).toBe(2n ** 60n);
    expect(lite.decoder.decode(Uint8Array.from([0xf9, 0x3c, 0x00]))).toBe(1); // float16 1.0
    expect(lite.decoder.decode(Uint8Array.from([0xfa, 0x3f, 0xc0, 0x00, 0x00]))).toBe(1.5); // float32
    expect(lite.decoder.decode(xEncoder.encode(0.1))).toBe(0.1);
    const date = new Date(1_700_000_000_123);
    expect((lite.decoder.decode(xEncoder.encode(date)) as Date).getTime()).toBe(date.getTime());
    expect((xDecoder.decode(lite.encoder.encode(date)) as Date).getTime()).toBe(date.getTime());
    expect(lite.decoder.decode(xEncoder.encode(new Set([1, 2])))).toEqual(new Set([1, 2]));
    // [_ 1, {_ "a": 2}] , (_ "ab" "c")
    expect(lite.decoder.decode(Uint8Array.from([0x9f, 0x01, 0xbf, 0x61, 0x61, 0x02, 0xff, 0xff]))).toEqual([1, { a: 2 }]);
    expect(lite.decoder.decode(Uint8Array.from([0x7f, 0x62, 0x61, 0x62, 0x61, 0x63, 0xff]))).toBe("abc");
  });

  it("refuses truncated input and trailing bytes", () => {
    const bytes = lite.encoder.encode({ a: "hello" });
    expect(() => lite.decoder.decode(bytes.subarray(0, bytes.length - 2))).toThrow(/end of data/);
    expect(() => lite.decoder.decode(Uint8Array.from([...bytes, 0]))).toThrow(/after the value/);
  });
});
