import fc from "fast-check";
import mqtt, { type IPublishPacket } from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { encodePacket, encodePlainPublish } from "./encode.ts";

describe("encodePlainPublish", () => {
  it("writes the bytes mqtt-packet generates for a PUBLISH without properties (property)", () => {
    const publish = fc.record({
      topic: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }), fc.constantFrom("a/b/c", "sensor-data", "x".repeat(300))),
      payload: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 120, max: 20_000 }).map((n) => new Uint8Array(n).fill(7))),
      qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
      retain: fc.boolean(),
      dup: fc.boolean(),
      messageId: fc.integer({ min: 1, max: 65_535 }),
      version: fc.constantFrom(4, 5),
    });
    fc.assert(
      fc.property(publish, ({ topic, payload, qos, retain, dup, messageId, version }) => {
        const packet = { cmd: "publish", topic, payload: Buffer.from(payload), qos, retain, dup, messageId: qos > 0 ? messageId : undefined } as IPublishPacket;
        const fast = encodePlainPublish(topic, payload, qos, retain, dup, messageId, version);
        expect(fast).not.toBeNull();
        expect(Buffer.from(fast!).equals(mqtt.generate(packet, { protocolVersion: version }))).toBe(true);
        expect(Buffer.from(fast!).equals(encodePacket(packet, version))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("writes four length bytes past 2 MB as mqtt-packet does", () => {
    const payload = new Uint8Array(0x200000).fill(3);
    const packet = { cmd: "publish", topic: "big", payload: Buffer.from(payload), qos: 1, retain: false, dup: false, messageId: 9 } as IPublishPacket;
    expect(Buffer.from(encodePlainPublish("big", payload, 1, false, false, 9, 4)!).equals(mqtt.generate(packet))).toBe(true);
  });

  it("leaves an empty topic to mqtt-packet", () => {
    expect(encodePlainPublish("", Uint8Array.of(1), 0, false, false, 0, 4)).toBeNull();
  });
});
