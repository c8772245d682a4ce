import fc from "fast-check";
import { Decoder } from "cbor-x";
import { describe, expect, it } from "vitest";
import { encodeFrame, parseClientFrame, type Frame } from "@tributary/client/protocol";
import { decodePublishCbor } from "./publish-decoder.ts";

// The generic path of ws-gateway.ts: cbor-x (byte strings copied) then validation.
const generic = new Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });
const viaGeneric = (bytes: Uint8Array): unknown => {
  try {
    return parseClientFrame(generic.decode(bytes));
  } catch (err) {
    return err;
  }
};
/** Byte fields as plain arrays, so a Buffer and a Uint8Array with the same bytes compare equal. */
const plain = (frame: unknown): unknown => JSON.parse(JSON.stringify(frame, (_k, v: unknown) => (v instanceof Uint8Array ? { bytes: [...v] } : v)));
const encode = (frame: Record<string, unknown>) => Uint8Array.from(encodeFrame(frame as unknown as Frame, "cbor") as Uint8Array);

/** Returns whether the fast path took the frame. */
function expectSameAsGeneric(bytes: Uint8Array): boolean {
  const fast = decodePublishCbor(bytes);
  if (fast === null) return false;
  const slow = viaGeneric(bytes);
  expect(slow).not.toBeInstanceOf(Error);
  expect(plain(fast)).toEqual(plain(slow));
  return true;
}

describe("decodePublishCbor", () => {
  it("takes every publish frame the SDK writes, and reads it as the generic path does", () => {
    const value = new Uint8Array(64).fill(0x61);
    const frames = [
      { op: "publish", id: 1, topic: "t", value, acks: 1 },
      { op: "publish", id: 70_000, topic: "sensor-data", key: new TextEncoder().encode("dev-1"), value, acks: "all", producerId: "p-0123456789abcdef", seq: 4_000_000_000 },
      { op: "publish", id: 2 ** 32 - 1, topic: "x".repeat(249), key: null, value: null, partition: 65_536, acks: 0 },
      { op: "publish", id: 23, topic: "orders.eu_west-1", value: new Uint8Array(70_000) },
    ];
    for (const frame of frames) {
      const bytes = encode(frame);
      const fast = decodePublishCbor(bytes);
      expect(fast).not.toBeNull();
      expect(plain(fast)).toEqual(plain(viaGeneric(bytes)));
    }
  });

  it("copies byte fields out of the buffer it was given", () => {
    const bytes = encode({ op: "publish", id: 5, topic: "t", key: Uint8Array.of(1, 2), value: Uint8Array.of(3, 4, 5) });
    const frame = decodePublishCbor(bytes)!;
    bytes.fill(0);
    expect([...frame.key!, ...frame.value!]).toEqual([1, 2, 3, 4, 5]);
  });

  it("leaves everything else to the generic path: headers, unknown fields, wrong types, trailing bytes", () => {
    const value = Uint8Array.of(1);
    for (const frame of [
      { op: "publish", id: 1, topic: "t", value, headers: { a: Uint8Array.of(1) } },
      { op: "publish", id: 1, topic: "t", value, extra: 1 },
      { op: "publish", id: -1, topic: "t", value },
      { op: "publish", id: 1.5, topic: "t", value },
      { op: "publish", id: 1, topic: "tøpic", value },
      { op: "publish", id: 1, topic: "x".repeat(250), value },
      { op: "publish", id: 1, topic: "t", value: "text" },
      { op: "publish", id: 1, topic: "t", value, acks: 2 },
      { op: "publish", id: 1, topic: "t", value, producerId: "p" },
      { op: "publish", id: 1, topic: "t" },
      { op: "subscribe", id: 1, sub: 1, topic: "t" },
    ]) {
      expect(decodePublishCbor(encode(frame))).toBeNull();
    }
    const ok = encode({ op: "publish", id: 1, topic: "t", value });
    expect(decodePublishCbor(ok)).not.toBeNull();
    expect(decodePublishCbor(Uint8Array.from([...ok, 0x00]))).toBeNull();
    expect(decodePublishCbor(ok.subarray(0, ok.length - 1))).toBeNull();
    expect(decodePublishCbor(new Uint8Array(0))).toBeNull();
  });

  it("reuses the last topic's string only for the same bytes", () => {
    const value = Uint8Array.of(1);
    const first = decodePublishCbor(encode({ op: "publish", id: 1, topic: "sensor-data", value }))!;
    const again = decodePublishCbor(encode({ op: "publish", id: 2, topic: "sensor-data", value }))!;
    expect(again.topic).toBe(first.topic);
    expect(decodePublishCbor(encode({ op: "publish", id: 3, topic: "sensor-datum", value }))!.topic).toBe("sensor-datum");
    expect(decodePublishCbor(encode({ op: "publish", id: 4, topic: "sensor", value }))!.topic).toBe("sensor");
    decodePublishCbor(encode({ op: "publish", id: 5, topic: "sensor-data", value }));
    const cut = encode({ op: "publish", topic: "sensor-data", id: 6, value });
    const at = Buffer.from(cut).indexOf("sensor-data");
    expect(decodePublishCbor(cut.subarray(0, at + 5))).toBeNull(); // cut inside the topic
  });

  it("never answers differently from the generic path (property)", () => {
    // Mostly valid fields (so the fast path takes many frames), sometimes anything.
    const mostly = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>) => fc.oneof({ arbitrary: valid, weight: 12 }, { arbitrary: other, weight: 1 });
    const anyText = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("publish", "all", "x".repeat(250), "ü"));
    const anyInt = fc.oneof(fc.integer({ min: -5, max: 2 ** 33 }), fc.constant(1.5));
    const uint = fc.oneof(fc.nat(30), fc.constantFrom(23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1));
    // Topics from a small pool too, so the reused last-topic string is exercised (repeats, prefixes, other lengths).
    const topic = fc.oneof(fc.stringMatching(/^[a-zA-Z0-9._-]{1,40}$/), fc.constantFrom("t", "ta", "tb", "sensor-data", "sensor-datb", "x".repeat(24)));
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(null));
    const optional = <T>(arb: fc.Arbitrary<T>, freq = 2) => fc.option(arb, { nil: undefined, freq });
    const frame = fc.record({
      op: mostly(fc.constant("publish"), anyText),
      id: optional(mostly(uint, anyInt), 20),
      topic: optional(mostly(topic, anyText), 20),
      key: optional(mostly(bytes, anyText)),
      value: optional(mostly(bytes, anyText), 20),
      partition: optional(mostly(uint, anyInt)),
      acks: optional(mostly(fc.constantFrom(0, 1, "all"), fc.oneof(anyInt, anyText))),
      producer: optional(fc.record({ producerId: optional(mostly(topic, anyText), 20), seq: optional(mostly(uint, anyInt), 20) })),
      extra: optional(fc.oneof(anyInt, anyText), 10),
    });
    let taken = 0;
    fc.assert(
      fc.property(frame, ({ producer, ...f }) => {
        const defined = Object.fromEntries(Object.entries({ ...f, ...producer }).filter(([, v]) => v !== undefined));
        if (expectSameAsGeneric(encode(defined))) taken++;
      }),
      { numRuns: 5000 },
    );
    expect(taken).toBeGreaterThan(150); // the comparison ran on frames the fast path took, not only on refusals
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => void expectSameAsGeneric(bytes)), { numRuns: 3000 });
  });
});
