import fc from "fast-check";
import mqtt, { type Packet } from "mqtt-packet";
import { describe, expect, it } from "vitest";
import { FastPacketReader, HOLD_MAX, PacketFramer, parserHoldsPart, type FramerSink } from "./fast-packets.ts";

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

/** `reads` through a PacketFramer whose fallback is mqtt-packet (as the MQTT connection's): every packet, in order. */
function frame(reads: Buffer[], version: number): { got: Record<string, unknown>[]; fast: number; held: number } {
  const got: Record<string, unknown>[] = [];
  let fast = 0;
  const parser = mqtt.parser({ protocolVersion: version });
  parser.on("packet", (p: Packet) => got.push({ ...p }));
  let left = 0;
  const sink: FramerSink = {
    packet: (p) => {
      fast++;
      got.push({ ...p });
      return true;
    },
    fallback: (bytes) => {
      left = parser.parse(bytes);
      return true;
    },
    partial: () => parserHoldsPart(parser, left),
  };
  const framer = new PacketFramer();
  for (const read of reads) framer.push(read, version, true, sink);
  return { got, fast, held: framer.heldBytes };
}

describe("PacketFramer", () => {
  it("a read that ends one byte into the packet after a large one: the next read completes it through mqtt-packet", () => {
    // mqtt-packet consumes a packet's first byte at once: it holds no bytes and no length, yet is mid-packet.
    const big = mqtt.generate({ cmd: "publish", topic: "big", payload: Buffer.alloc(HOLD_MAX + 100, 1), qos: 0, retain: false, dup: false } as Packet, { protocolVersion: 4 });
    const next = mqtt.generate({ cmd: "publish", topic: "t", payload: Buffer.from("after"), qos: 0, retain: false, dup: false } as Packet, { protocolVersion: 4 });
    const stream = Buffer.concat([big, next]);
    for (const headerBytes of [1, 2, 3]) {
      const cut = big.length + headerBytes;
      const { got, held } = frame([stream.subarray(0, 1000), stream.subarray(1000, cut), stream.subarray(cut)], 4);
      expect(got.map((p) => p.topic), `cut ${headerBytes} byte(s) into the next packet`).toEqual(["big", "t"]);
      expect((got[1]!.payload as Buffer).toString()).toBe("after");
      expect(held).toBe(0);
    }
  });

  const other = fc.oneof(
    fc.constant({ cmd: "pingreq" }),
    fc.integer({ min: 1, max: 65535 }).map((messageId) => ({ cmd: "subscribe", messageId, subscriptions: [{ topic: "a/+", qos: 1 }] })),
    fc.integer({ min: 1, max: 65535 }).map((messageId) => ({ cmd: "pubrel", messageId })),
    // Larger than HOLD_MAX: goes to mqtt-packet with the rest of the stream.
    fc.constant({ cmd: "publish", topic: "big", payload: Buffer.alloc(HOLD_MAX + 100, 1), qos: 0, retain: false, dup: false }),
  );
  const items = fc.array(fc.oneof({ weight: 5, arbitrary: publish.map((p) => ({ p })) }, { weight: 1, arbitrary: other.map((b) => ({ b })) }), { minLength: 1, maxLength: 12 });
  const packetsOf = (list: Array<{ p: Parameters<typeof generate>[0] } | { b: unknown }>, version: number): Buffer[] =>
    list.map((item) => ("p" in item ? generate(item.p, version) : mqtt.generate(item.b as Packet, { protocolVersion: version })));

  it("any-chunking-of-a-stream-gives-the-packets-mqtt-packet-gives-for-the-whole-stream", () => {
    let fastTaken = 0;
    fc.assert(
      fc.property(versions, items, fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 30 }), (version, list, cuts) => {
        const stream = Buffer.concat(packetsOf(list, version));
        // Reads of the sizes `cuts` gives, over and over, like a socket's.
        const reads: Buffer[] = [];
        for (let pos = 0, i = 0; pos < stream.length; i++) {
          const n = cuts[i % cuts.length]! * (i % 7 === 6 ? 200 : 1);
          reads.push(stream.subarray(pos, pos + n));
          pos += n;
        }
        const { got, fast, held } = frame(reads, version);
        fastTaken += fast;
        expect(got).toEqual(reference(stream, version).packets);
        expect(held).toBe(0);
      }),
      { numRuns: 300 },
    );
    expect(fastTaken).toBeGreaterThan(300); // the fast reader does take most publishes
  });

  it("reads-ending-a-few-bytes-either-side-of-packet-boundaries-give-the-packets-mqtt-packet-gives", () => {
    // Where the framer hands over between itself and mqtt-packet: every read ends within 3 bytes of a packet's end.
    fc.assert(
      fc.property(versions, items, fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 12, maxLength: 12 }), (version, list, offsets) => {
        const packets = packetsOf(list, version);
        const stream = Buffer.concat(packets);
        const reads: Buffer[] = [];
        let pos = 0;
        let end = 0;
        packets.forEach((packet, i) => {
          end += packet.length;
          const cut = Math.min(stream.length, end + offsets[i]!);
          if (cut > pos) {
            reads.push(stream.subarray(pos, cut));
            pos = cut;
          }
        });
        if (pos < stream.length) reads.push(stream.subarray(pos));
        const { got, held } = frame(reads, version);
        expect(got).toEqual(reference(stream, version).packets);
        expect(held).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe("PacketFramer limits", () => {
  it("holds-a-cut-packet-only-up-to-the-max-packet-size-and-HOLD_MAX", () => {
    const calls: string[] = [];
    const sink: FramerSink = { packet: () => (calls.push("packet"), true), fallback: (b) => (calls.push(`fallback ${b.length}`), true), partial: () => false };
    const header = (size: number) => Buffer.from([0x30, ...(size < 128 ? [size] : [(size & 0x7f) | 0x80, size >> 7])]);
    // Announced 200 bytes, max packet size 100: to mqtt-packet at once (which refuses it from its header).
    new PacketFramer(100).push(header(200), 4, true, sink);
    // Announced 200 bytes, allowed: held until the rest arrives.
    const framer = new PacketFramer(1000);
    framer.push(header(200), 4, true, sink);
    expect(framer.heldBytes).toBe(3);
    // Larger than HOLD_MAX: to mqtt-packet (its buffer list appends without copying).
    new PacketFramer().push(header(HOLD_MAX + 10), 4, true, sink);
    expect(calls).toEqual(["fallback 3", "fallback 3"]);
  });
});
