import fc from "fast-check";
import mqtt, { type Packet } from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { FastPacketReader } from "./fast-packets.ts";

/** What mqtt-packet makes of `buf`: the packets it emits (plain objects) and its first error. */
function reference(buf: Buffer, protocolVersion: number): { packets: Record<string, unknown>[]; error: Error | null } {
  const parser = mqtt.parser({ protocolVersion });
  const packets: Record<string, unknown>[] = [];
  let error: Error | null = null;
  parser.on("packet", (p: Packet) => packets.push({ ...p }));
  parser.on("error", (e: Error) => (error ??= e));
  parser.parse(buf);
  return { packets, error };
}

const versions = fc.constantFrom(4, 5);
const topic = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("sensors/a/temp", "t", "", "ünï/cödé"));
const publish = fc.record({
  qos: fc.constantFrom(0, 1, 2),
  retain: fc.boolean(),
  dup: fc.boolean(),
  topic,
  messageId: fc.integer({ min: 1, max: 65535 }),
  payload: fc.uint8Array({ maxLength: 300 }),
  withProperties: fc.boolean(),
});

function generate(p: { qos: number; retain: boolean; dup: boolean; topic: string; messageId: number; payload: Uint8Array; withProperties: boolean }, protocolVersion: number): Buffer {
  const packet = { cmd: "publish", qos: p.qos, retain: p.retain, dup: p.dup, topic: p.topic, payload: Buffer.from(p.payload), messageId: p.qos > 0 ? p.messageId : undefined } as Record<string, unknown>;
  if (protocolVersion === 5 && p.withProperties) packet.properties = { contentType: "text/plain", userProperties: { a: "b" } };
  return mqtt.generate(packet as unknown as Packet, { protocolVersion });
}

describe("FastPacketReader", () => {
  it("decodes-publish-and-puback-exactly-as-mqtt-packet-or-declines", () => {
    const puback = fc.record({ messageId: fc.integer({ min: 1, max: 65535 }), reasonCode: fc.constantFrom(0, 0x10, 0x80) });
    let taken = 0;
    fc.assert(
      fc.property(versions, fc.array(fc.oneof(publish.map((p) => ({ kind: "publish" as const, p })), puback.map((a) => ({ kind: "puback" as const, a }))), { minLength: 1, maxLength: 4 }), fc.nat(), (version, items, cut) => {
        const bufs = items.map((item) =>
          item.kind === "publish" ? generate(item.p, version) : mqtt.generate({ cmd: "puback", messageId: item.a.messageId, ...(version === 5 && item.a.reasonCode !== 0 ? { reasonCode: item.a.reasonCode } : {}) } as Packet, { protocolVersion: version }),
        );
        const whole = Buffer.concat(bufs);
        // Also a buffer cut short: a packet cut by the end of a read is declined, never guessed.
        const buf = cut % 3 === 0 ? whole.subarray(0, cut % whole.length) : whole;
        const expected = reference(buf, version).packets;
        const reader = new FastPacketReader();
        const fast: Record<string, unknown>[] = [];
        let pos = 0;
        while (pos < buf.length) {
          const packet = reader.read(buf, pos, version);
          if (packet === null) break;
          fast.push({ ...packet });
          pos += reader.consumed;
        }
        taken += fast.length;
        // The packets taken, then what mqtt-packet makes of the rest: exactly what it makes of the whole.
        expect([...fast, ...reference(buf.subarray(pos), version).packets]).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
    expect(taken).toBeGreaterThan(2000); // the common shapes do take the fast path
  });

  it("random-bytes-are-declined-or-decoded-as-mqtt-packet-does", () => {
    fc.assert(
      fc.property(versions, fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.constantFrom(0x30, 0x32, 0x34, 0x36, 0x3b, 0x40, 0x41), (version, bytes, head) => {
        const buf = Buffer.from([head, ...bytes]);
        const reader = new FastPacketReader();
        const packet = reader.read(buf, 0, version);
        if (packet === null) return;
        const ref = reference(buf.subarray(0, reader.consumed), version);
        expect(ref.error).toBeNull();
        expect({ ...packet }).toEqual(ref.packets[0]);
      }),
      { numRuns: 5000 },
    );
  });

  it("reuses-the-topic-string-of-a-repeated-topic", () => {
    const reader = new FastPacketReader();
    const a = reader.read(generate({ qos: 1, retain: false, dup: false, topic: "s/1", messageId: 1, payload: new Uint8Array(3), withProperties: false }, 4), 0, 4);
    const b = reader.read(generate({ qos: 1, retain: false, dup: false, topic: "s/1", messageId: 2, payload: new Uint8Array(3), withProperties: false }, 4), 0, 4);
    const c = reader.read(generate({ qos: 1, retain: false, dup: false, topic: "s/2", messageId: 3, payload: new Uint8Array(3), withProperties: false }, 4), 0, 4);
    expect([(a as { topic: string }).topic, (b as { topic: string }).topic, (c as { topic: string }).topic]).toEqual(["s/1", "s/1", "s/2"]);
  });
});
