import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame } from "./codec.ts";
import type { PublishFrame } from "./frames.ts";

describe("frame codec", () => {
  it("json-encodes-node-buffers-as-base64-like-uint8arrays", () => {
    const frame: PublishFrame = {
      op: "publish",
      id: 1,
      topic: "t",
      key: Buffer.from("k"),
      value: Buffer.from([0, 1, 2, 255]),
      headers: { h: Buffer.from("v") },
    };
    const text = encodeFrame(frame, "json") as string;
    expect(JSON.parse(text)).toMatchObject({ key: "aw==", value: "AAEC/w==", headers: { h: "dg==" } });
    const back = decodeFrame(text, "json") as PublishFrame;
    expect(Array.from(back.value!)).toEqual([0, 1, 2, 255]);
    expect(new TextDecoder().decode(back.headers!.h)).toBe("v");
  });

  it("cbor-round-trips-bytes-natively", () => {
    const frame: PublishFrame = { op: "publish", id: 2, topic: "t", key: null, value: new Uint8Array([9, 8]) };
    const back = decodeFrame(encodeFrame(frame, "cbor") as Uint8Array, "cbor") as PublishFrame;
    expect(back.key).toBeNull();
    expect(Array.from(back.value!)).toEqual([9, 8]);
  });
});
