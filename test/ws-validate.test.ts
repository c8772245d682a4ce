import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CLIENT_OPS, decodeFrame, encodeFrame, FrameValidationError, parseClientFrame, type Frame } from "@tributary/client/protocol";

/** Bytes as plain arrays, null-prototype maps as plain objects, for deep comparison. */
function normalize(x: unknown): unknown {
  if (x instanceof Uint8Array) return { bytes: [...x] };
  if (x && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, normalize(v)]));
  return x;
}

const CODES = new Set(["MALFORMED_FRAME", "UNKNOWN_OP", "BAD_REQUEST"]);

function outcome(input: unknown): "ok" | string {
  try {
    parseClientFrame(input);
    return "ok";
  } catch (err) {
    if (!(err instanceof FrameValidationError)) throw new Error(`untyped error: ${String(err)}`);
    if (!CODES.has(err.code)) throw new Error(`unexpected code ${err.code}`);
    return err.code;
  }
}

const fieldValue = fc.oneof(
  fc.anything(),
  fc.uint8Array({ maxLength: 8 }),
  fc.constantFrom("earliest", "latest", "error", "all", 0, 1, -1, 1.5, null),
  fc.record({ offsets: fc.dictionary(fc.string({ maxLength: 3 }), fc.anything()), epochs: fc.anything() }, { requiredKeys: [] }),
  fc.record({ timestamp: fc.anything() }),
);
const fields = ["id", "sub", "topic", "key", "value", "headers", "partition", "acks", "producerId", "seq", "from", "reset", "credit", "protocol", "clientId", "token"];
const frameLike = fc.record({
  op: fc.oneof(fc.constantFrom(...CLIENT_OPS), fc.anything()),
  ...Object.fromEntries(fields.map((f) => [f, fieldValue])),
}, { requiredKeys: ["op"] });

describe("parseClientFrame", () => {
  it("never crashes on random input: it returns a frame or throws a typed MALFORMED_FRAME/UNKNOWN_OP/BAD_REQUEST", () => {
    fc.assert(fc.property(fc.anything(), (x) => void outcome(x)), { numRuns: 2000 });
    fc.assert(fc.property(frameLike, (x) => void outcome(x)), { numRuns: 5000 });
  });

  it("accepts every valid frame shape and keeps its fields", () => {
    const bytes = fc.uint8Array({ maxLength: 16 });
    const id = fc.nat();
    const valid = fc.oneof(
      fc.record({ op: fc.constant("hello" as const), id, protocol: fc.constant(1), clientId: fc.string({ maxLength: 10 }) }),
      fc.record({
        op: fc.constant("publish" as const),
        id,
        topic: fc.stringMatching(/^[a-z.-]{1,20}$/),
        key: fc.option(bytes, { nil: null }),
        value: fc.option(bytes, { nil: null }),
        headers: fc.dictionary(fc.stringMatching(/^[a-z]{1,5}$/), bytes),
        acks: fc.constantFrom(0 as const, 1 as const, "all" as const),
      }),
      fc.record({
        op: fc.constant("subscribe" as const),
        id,
        sub: fc.nat(),
        topic: fc.constantFrom("t", "t/+/x", "t/#"),
        from: fc.oneof(
          fc.constantFrom("earliest" as const, "latest" as const),
          fc.record({ timestamp: fc.nat() }),
          fc.record({ offsets: fc.dictionary(fc.nat(99).map(String), fc.nat()) }),
        ),
        reset: fc.constantFrom("earliest" as const, "latest" as const, "error" as const),
        credit: fc.nat(),
      }),
      fc.record({ op: fc.constant("unsubscribe" as const), id, sub: fc.nat() }),
      fc.record({ op: fc.constant("credit" as const), sub: fc.nat(), credit: fc.nat() }),
      fc.record({ op: fc.constant("ping" as const), id }),
    );
    fc.assert(
      fc.property(valid, fc.constantFrom("cbor" as const, "json" as const), (frame, format) => {
        const decoded = decodeFrame(encodeFrame(frame as Frame, format), format);
        expect(normalize(parseClientFrame(decoded))).toEqual(normalize(frame));
      }),
      { numRuns: 500 },
    );
  });

  it("names the offending field in BAD_REQUEST and carries the request id", () => {
    try {
      parseClientFrame({ op: "subscribe", id: 3, sub: 1, topic: "t", credit: "lots" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FrameValidationError);
      expect((err as FrameValidationError).code).toBe("BAD_REQUEST");
      expect((err as FrameValidationError).field).toBe("credit");
      expect((err as FrameValidationError).id).toBe(3);
      expect((err as FrameValidationError).message).toContain('"credit"');
    }
    expect(outcome({ op: "nope", id: 1 })).toBe("UNKNOWN_OP");
    expect(outcome([1, 2])).toBe("MALFORMED_FRAME");
    expect(outcome({ op: 5 })).toBe("MALFORMED_FRAME");
    expect(outcome({ op: "publish", id: 1, topic: "t", value: null, producerId: "p" })).toBe("BAD_REQUEST");
    expect(outcome({ op: "constructor", id: 1 })).toBe("UNKNOWN_OP");
  });
});
