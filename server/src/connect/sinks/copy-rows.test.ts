import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { SinkRecord } from "../connector.ts";
import { copyText, encodeCopyRows } from "./copy-rows.ts";

function record(over: Partial<SinkRecord>): SinkRecord {
  return { topic: "orders", partition: 0, offset: 0, timestamp: 0, key: null, keyBytes: null, value: null, contentType: null, headers: {}, ...over };
}

/** The rows as COPY text built from strings (what the byte writer must match). */
function reference(rows: SinkRecord[]): string {
  return rows
    .map((r) => {
      const value = r.value === null ? "\\N" : copyText(Buffer.from(r.value).toString("utf8"));
      return `${copyText(r.topic)}\t${r.partition}\t${r.offset}\t${r.key === null ? "\\N" : copyText(r.key)}\t${new Date(r.timestamp).toISOString()}\t${value}\n`;
    })
    .join("");
}

describe("encodeCopyRows", () => {
  it("writes-tab-separated-rows-with-NULLs-and-ISO-times", () => {
    const rows = [
      record({ partition: 3, offset: 1234567890123, timestamp: Date.UTC(2026, 0, 2, 3, 4, 5, 6), key: "d-7", value: Buffer.from('{"n":1}') }),
      record({ offset: 9, timestamp: Date.UTC(2026, 0, 2, 3, 4, 5, 6) }),
    ];
    expect(encodeCopyRows(rows).toString("utf8")).toBe(
      'orders\t3\t1234567890123\td-7\t2026-01-02T03:04:05.006Z\t{"n":1}\n' + "orders\t0\t9\t\\N\t2026-01-02T03:04:05.006Z\t\\N\n",
    );
  });

  it("escapes-backslash-tab-newline-and-carriage-return-in-keys-values-and-topics-keeping-non-ASCII-text", () => {
    const rows = [record({ topic: "a.b", key: "k\t1\\é\n", value: Buffer.from('{"s":"tab\there\r\nback\\\\slash ✓"}') })];
    expect(encodeCopyRows(rows).toString("utf8")).toBe('a.b\t0\t0\tk\\t1\\\\é\\n\t1970-01-01T00:00:00.000Z\t{"s":"tab\\there\\r\\nback\\\\\\\\slash ✓"}\n');
  });

  it("matches-the-text-built-from-strings-for-any-records", () => {
    const text = fc.string({ unit: fc.constantFrom("a", "Z", "0", "\t", "\n", "\r", "\\", "é", "✓", "😀", "\u0001", " ") });
    const anyRecord = fc.record({
      topic: fc.stringMatching(/^[a-zA-Z0-9._-]{1,20}$/),
      partition: fc.integer({ min: 0, max: 10_000 }),
      offset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      timestamp: fc.integer({ min: 0, max: 4_102_444_800_000 }),
      key: fc.option(text, { nil: null }),
      value: fc.option(text.map((s) => new Uint8Array(Buffer.from(s, "utf8"))), { nil: null }),
    });
    fc.assert(
      fc.property(fc.array(anyRecord, { maxLength: 20 }), (parts) => {
        const rows = parts.map((p) => record(p));
        expect(encodeCopyRows(rows).toString("utf8")).toBe(reference(rows));
      }),
    );
  });

  it("reads-value-bytes-from-a-view-into-a-larger-buffer", () => {
    const frame = Buffer.from('xx{"v":2}yy');
    const value = new Uint8Array(frame.buffer, frame.byteOffset + 2, 7);
    expect(encodeCopyRows([record({ value })]).toString("utf8")).toBe('orders\t0\t0\t\\N\t1970-01-01T00:00:00.000Z\t{"v":2}\n');
  });
});
