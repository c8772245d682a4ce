import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame, type Frame } from "@tributary/client/protocol";
import { PreparedMessage } from "./prepared-message.ts";

describe("PreparedMessage", () => {
  const record = { offset: 41, timestamp: 1_764_098_000_000, key: new Uint8Array([7]), value: new Uint8Array([1, 2, 3]), headers: { h: new Uint8Array([9]) } };

  it("patches `sub` into the once-encoded CBOR frame (cbor-x map16 header) and decodes like a full encode", () => {
    const pm = new PreparedMessage("orders", 3, record);
    const buffers = new Set<ArrayBufferLike>();
    for (const sub of [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      const bytes = pm.bytesFor(sub, "cbor") as Uint8Array;
      buffers.add(bytes.buffer);
      const full = { op: "message", sub, topic: "orders", partition: 3, offset: 41, timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers };
      expect(decodeFrame(bytes, "cbor")).toEqual(decodeFrame(new Uint8Array(encodeFrame(full as Frame, "cbor") as Uint8Array), "cbor"));
    }
    // One scratch buffer for every subscriber: the record was encoded once.
    expect(buffers.size).toBe(1);
  });

  it("prefixes `sub` to the once-encoded JSON frame", () => {
    const pm = new PreparedMessage("orders", 0, { ...record, headers: {} });
    expect(decodeFrame(pm.bytesFor(12, "json") as string, "json")).toMatchObject({ op: "message", sub: 12, topic: "orders", offset: 41, value: record.value });
  });
});
