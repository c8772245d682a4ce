import mqtt, { type Packet } from "mqtt-packet";

/**
 * mqtt-packet's `generate` without its per-call EventEmitter: `writeToStream` into a
 * plain collector, then one copy into a Buffer. Same bytes as `mqtt.generate`.
 */
class Collector {
  readonly parts: (Uint8Array | string)[] = [];
  length = 0;

  write(chunk: Uint8Array | string): boolean {
    this.parts.push(chunk);
    this.length += typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.length;
    return true;
  }

  /** mqtt-packet reports an unencodable packet by destroying the stream. */
  destroy(err: Error): void {
    throw err;
  }
}

export function encodePacket(packet: Packet, protocolVersion: number): Buffer {
  const c = new Collector();
  mqtt.writeToStream(packet, c as unknown as NodeJS.WritableStream, { protocolVersion });
  const out = Buffer.allocUnsafe(c.length);
  let pos = 0;
  for (const part of c.parts) {
    if (typeof part === "string") pos += out.write(part, pos);
    else {
      out.set(part, pos);
      pos += part.length;
    }
  }
  return out;
}

/** Largest MQTT remaining length (four length bytes). */
const MAX_REMAINING_LENGTH = 268_435_455;

/**
 * A PUBLISH without properties (MQTT 3.1.1, or 5.0 with none), written straight into one
 * Buffer: the bytes mqtt-packet writes (property-tested against `mqtt.generate` in
 * encode.test.ts), without its field-by-field writes and string parts. Null for a packet
 * it leaves to `encodePacket` (an empty or over-long topic, a remaining length past the
 * MQTT maximum), which then encodes it or names what is wrong.
 */
export function encodePlainPublish(topic: string, payload: Uint8Array, qos: 0 | 1 | 2, retain: boolean, dup: boolean, messageId: number, protocolVersion: number): Buffer | null {
  const topicBytes = Buffer.byteLength(topic);
  if (topicBytes === 0 || topicBytes > 0xffff) return null;
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + (protocolVersion === 5 ? 1 : 0) + payload.length;
  if (remaining > MAX_REMAINING_LENGTH) return null;
  const lengthBytes = remaining < 0x80 ? 1 : remaining < 0x4000 ? 2 : remaining < 0x200000 ? 3 : 4;
  const out = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  out[0] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  let at = 1;
  for (let n = remaining; ; ) {
    const digit = n % 0x80;
    n = Math.floor(n / 0x80);
    out[at++] = n > 0 ? digit | 0x80 : digit;
    if (n === 0) break;
  }
  out[at++] = topicBytes >> 8;
  out[at++] = topicBytes & 0xff;
  at += out.write(topic, at, topicBytes, "utf8");
  if (qos > 0) {
    out[at++] = (messageId >> 8) & 0xff;
    out[at++] = messageId & 0xff;
  }
  if (protocolVersion === 5) out[at++] = 0; // property length 0
  out.set(payload, at);
  return out;
}
