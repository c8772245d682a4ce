import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame, type Frame } from "@tributary/client/protocol";
import type { LogRecord } from "../../log/log-engine.ts";
import { encodeMessagesCbor } from "./messages-encoder.ts";

// Decoded from plain Uint8Array copies, as a client receives them (cbor-x returns Buffers for Buffer input).

const bytes = (n: number, fill = 0x61) => new Uint8Array(n).fill(fill);

function generic(feed: number, topic: string, partition: number, records: LogRecord[]): unknown {
  const frame = {
    op: "messages",
    feed,
    topic,
    partition,
    records: records.map((r) => ({ offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value, ...(Object.keys(r.headers).length > 0 ? { headers: r.headers } : {}) })),
  };
  return decodeFrame(new Uint8Array(encodeFrame(frame as Frame, "cbor") as Uint8Array), "cbor");
}

describe("encodeMessagesCbor", () => {
  it("decodes to the same feed frame as the generic codec, for every length and integer size", () => {
    const records: LogRecord[] = [
      { offset: 0, timestamp: 0, key: null, value: null, headers: {} },
      { offset: 23, timestamp: 1_764_098_000_123, key: bytes(1), value: bytes(64), headers: {} },
      { offset: 24, timestamp: 2 ** 32 - 1, key: bytes(23), value: bytes(24), headers: { trace: bytes(3), "ü-name": bytes(0) } },
      { offset: 65_536, timestamp: 2 ** 32, key: null, value: bytes(256), headers: Object.assign(Object.create(null) as Record<string, Uint8Array>, { a: bytes(1) }) },
      { offset: Number.MAX_SAFE_INTEGER, timestamp: 255, key: bytes(65_536, 7), value: bytes(0), headers: {} },
    ];
    for (const [feed, topic, partition] of [
      [1, "t", 0],
      [300, "orders.eu-west_1", 65_535],
      [2 ** 31, "tøpic-ünïcode-" + "x".repeat(40), 2 ** 32 + 1],
    ] as const) {
      const encoded = encodeMessagesCbor(feed, topic, partition, records, 0, records.length);
      expect(encoded).not.toBeNull();
      expect(decodeFrame(Uint8Array.from(encoded!), "cbor")).toEqual(generic(feed, topic, partition, records));
    }
  });

  it("encodes only records [from, to) of the batch", () => {
    const records: LogRecord[] = Array.from({ length: 30 }, (_, i) => ({ offset: 100 + i, timestamp: 1_000 + i, key: null, value: bytes(i), headers: {} }));
    const encoded = encodeMessagesCbor(9, "t", 2, records, 5, 29)!;
    expect(decodeFrame(Uint8Array.from(encoded), "cbor")).toEqual(generic(9, "t", 2, records.slice(5, 29)));
  });

  it("addresses the frame to one subscription with \"sub\" instead of \"feed\"", () => {
    const records: LogRecord[] = Array.from({ length: 4 }, (_, i) => ({ offset: 7 + i, timestamp: 1_000 + i, key: bytes(2, i), value: bytes(64), headers: {} }));
    const { feed: _feed, ...rest } = generic(0, "sensor-data", 3, records) as Record<string, unknown>;
    const encoded = encodeMessagesCbor(300, "sensor-data", 3, records, 0, records.length, "sub")!;
    expect(decodeFrame(Uint8Array.from(encoded), "cbor")).toEqual({ ...rest, sub: 300 });
  });

  it("re-encodes the frame head whenever the address, id, topic or partition differs from the last frame's", () => {
    const records: LogRecord[] = [{ offset: 5, timestamp: Date.now(), key: null, value: bytes(8), headers: {} }];
    // Each differs from the one before in one field (the kept head must not be reused for it).
    const heads: [number, string, number, "feed" | "sub"][] = [[1, "a", 0, "feed"], [1, "a", 0, "feed"], [2, "a", 0, "feed"], [2, "b", 0, "feed"], [2, "b", 1, "feed"], [2, "b", 1, "sub"], [2, "bb", 1, "sub"], [1, "a", 0, "feed"]];
    for (const [id, topic, partition, address] of heads) {
      const { feed: _feed, ...rest } = generic(id, topic, partition, records) as Record<string, unknown>;
      const encoded = encodeMessagesCbor(id, topic, partition, records, 0, 1, address)!;
      expect(decodeFrame(Uint8Array.from(encoded), "cbor")).toEqual({ ...rest, [address]: id });
    }
  });

  it("returns null for a negative or fractional timestamp, which the generic codec must write", () => {
    const record = (timestamp: number): LogRecord => ({ offset: 1, timestamp, key: null, value: bytes(2), headers: {} });
    expect(encodeMessagesCbor(1, "t", 0, [record(-5)], 0, 1)).toBeNull();
    expect(encodeMessagesCbor(1, "t", 0, [record(1.5)], 0, 1)).toBeNull();
  });
});
