import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isTributaryError } from "../../errors.ts";
import type { RecordInput } from "../log-engine.ts";
import { checkBatch, decodeBatch, encodeBatch, measureBatch } from "./batch-codec.ts";

const bytesArb = (maxLength: number) => fc.uint8Array({ maxLength });
const recordArb: fc.Arbitrary<RecordInput> = fc.record(
  {
    key: fc.option(bytesArb(64), { nil: null }),
    value: fc.option(fc.oneof({ weight: 5, arbitrary: bytesArb(300) }, { weight: 1, arbitrary: bytesArb(70_000) }), { nil: null }),
    headers: fc.dictionary(fc.string({ unit: "grapheme", maxLength: 20 }), bytesArb(40), { maxKeys: 4 }),
    timestamp: fc.integer({ min: 0, max: 2 ** 50 }),
  },
  { requiredKeys: ["key", "value"] },
);
const batchArb = fc.record({
  records: fc.array(recordArb, { minLength: 1, maxLength: 20 }),
  baseOffset: fc.integer({ min: 0, max: 2 ** 52 }),
  now: fc.integer({ min: 0, max: 2 ** 50 }),
});

function encode(b: { records: RecordInput[]; baseOffset: number; now: number }): Buffer {
  return encodeBatch(b.records, b.now, b.baseOffset, measureBatch(b.records, b.now));
}

describe("batch codec", () => {
  it("decode-of-encode-returns-the-same-records", () => {
    fc.assert(
      fc.property(batchArb, (b) => {
        const buf = encode(b);
        const { header, records } = decodeBatch(buf);
        expect(header.baseOffset).toBe(b.baseOffset);
        expect(header.recordCount).toBe(b.records.length);
        expect(header.size).toBe(buf.length);
        const stamps = b.records.map((r) => r.timestamp ?? b.now);
        expect(header.firstTimestamp).toBe(stamps[0]);
        expect(header.maxTimestamp).toBe(Math.max(...stamps));
        records.forEach((r, i) => {
          const input = b.records[i]!;
          expect(r.offset).toBe(b.baseOffset + i);
          expect(r.timestamp).toBe(stamps[i]);
          expect(r.key === null ? null : Buffer.from(r.key)).toEqual(input.key === null ? null : Buffer.from(input.key));
          expect(r.value === null ? null : Buffer.from(r.value)).toEqual(input.value === null ? null : Buffer.from(input.value));
          const want = Object.fromEntries(Object.entries(input.headers ?? {}).map(([k, v]) => [k, Buffer.from(v)]));
          const got = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, Buffer.from(v)]));
          expect(got).toEqual(want);
        });
      }),
      { numRuns: 300 },
    );
  });

  it("null-and-empty-keys-and-values-stay-distinct", () => {
    const records: RecordInput[] = [
      { key: null, value: null },
      { key: new Uint8Array(0), value: new Uint8Array(0) },
    ];
    const { records: out } = decodeBatch(encode({ records, baseOffset: 0, now: 1 }));
    expect(out[0]!.key).toBeNull();
    expect(out[0]!.value).toBeNull();
    expect(out[1]!.key).toEqual(new Uint8Array(0));
    expect(out[1]!.value).toEqual(new Uint8Array(0));
  });

  it("a-flipped-byte-anywhere-is-never-decoded-silently", () => {
    fc.assert(
      fc.property(batchArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (b, where, mask) => {
        const buf = encode(b);
        const at = where % buf.length;
        buf[at] = buf[at]! ^ mask;
        const check = checkBatch(buf, 0, buf.length);
        expect(check.status).not.toBe("ok");
        expect(() => decodeBatch(buf)).toThrow();
        try {
          decodeBatch(buf);
        } catch (err) {
          expect(isTributaryError(err, "CORRUPT_RECORD")).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("a-truncated-batch-is-reported-torn-and-never-decoded", () => {
    fc.assert(
      fc.property(batchArb, fc.nat(), (b, cut) => {
        const buf = encode(b);
        const short = buf.subarray(0, cut % buf.length);
        expect(checkBatch(short, 0, short.length).status).toBe("torn");
        expect(() => decodeBatch(short)).toThrow(expect.objectContaining({ code: "CORRUPT_RECORD" }));
      }),
      { numRuns: 300 },
    );
  });

  it("random-garbage-never-decodes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 2000 }), (garbage) => {
        const check = checkBatch(garbage, 0, garbage.length);
        expect(check.status).not.toBe("ok");
        expect(() => decodeBatch(garbage)).toThrow(expect.objectContaining({ code: "CORRUPT_RECORD" }));
      }),
      { numRuns: 300 },
    );
  });

  it("records-of-the-wrong-shape-are-refused-with-BAD_REQUEST", () => {
    for (const bad of [{ key: "str", value: null }, { key: null, value: 5 }, { key: null, value: null, timestamp: -1 }, { key: null, value: null, timestamp: 1.5 }, { key: null, value: null, headers: { h: "x" } }]) {
      expect(() => measureBatch([bad as unknown as RecordInput], 0)).toThrow(expect.objectContaining({ code: "BAD_REQUEST" }));
    }
  });
});
