import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame } from "@tributary/client/protocol";
import { encodeAck, encodeAcks } from "./ack-encoder.ts";

describe("encodeAck", () => {
  it("writes acks that decode like the generic codec's, in both formats and at every integer width", () => {
    for (const [id, partition, offset] of [
      [0, 0, 0],
      [23, 24, 255],
      [256, 65_535, 65_536],
      [2 ** 32 - 1, 7, 2 ** 32],
      [Number.MAX_SAFE_INTEGER, 1, 2 ** 40 + 3],
    ]) {
      const ack = { op: "ack" as const, id: id!, partition: partition!, offset: offset! };
      expect(decodeFrame(new Uint8Array(encodeAck(ack, "cbor") as Uint8Array), "cbor")).toEqual(decodeFrame(new Uint8Array(encodeFrame(ack, "cbor") as Uint8Array), "cbor"));
      expect(decodeFrame(encodeAck(ack, "json") as string, "json")).toEqual(ack);
    }
  });
});

describe("encodeAcks", () => {
  it("writes one acks frame that decodes to every [id, partition, offset] in order, in both formats", () => {
    for (const n of [2, 23, 24, 300]) {
      const acks = Array.from({ length: n }, (_, i) => ({ op: "ack" as const, id: i * 977, partition: i % 3, offset: 2 ** 33 + i }));
      const expected = { op: "acks", acks: acks.map((a) => [a.id, a.partition, a.offset]) };
      expect(decodeFrame(new Uint8Array(encodeAcks(acks, "cbor") as Uint8Array), "cbor")).toEqual(expected);
      expect(decodeFrame(encodeAcks(acks, "json") as string, "json")).toEqual(expected);
    }
  });
});
