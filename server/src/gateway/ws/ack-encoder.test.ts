import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame } from "@tributary/client/protocol";
import { encodeAck } from "./ack-encoder.ts";

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
