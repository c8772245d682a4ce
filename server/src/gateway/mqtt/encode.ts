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

/**
 * PUBLISH without properties (MQTT 3.1.1, or MQTT 5 with an empty property list): the
 * bytes `mqtt.generate` would produce, written straight into one buffer. Null when the
 * packet is out of this fast path's range (the caller then uses `encodePacket`).
 */
export function encodePlainPublish(topic: string, payload: Uint8Array, qos: number, retain: boolean, dup: boolean, packetId: number, v5: boolean): Buffer | null {
  const topicLength = topic.length <= 0x3fff && isAscii(topic) ? topic.length : Buffer.byteLength(topic);
  if (topicLength > 0xffff) return null;
  const remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + (v5 ? 1 : 0) + payload.length;
  if (remaining > 268_435_455) return null;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  const out = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  out[0] = 0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
  let pos = 1;
  let n = remaining;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out[pos++] = b;
  } while (n > 0);
  out[pos++] = topicLength >> 8;
  out[pos++] = topicLength & 0xff;
  if (topicLength === topic.length) {
    for (let i = 0; i < topicLength; i++) out[pos + i] = topic.charCodeAt(i);
  } else out.write(topic, pos, "utf8");
  pos += topicLength;
  if (qos > 0) {
    out[pos++] = packetId >> 8;
    out[pos++] = packetId & 0xff;
  }
  if (v5) out[pos++] = 0; // property length
  out.set(payload, pos);
  return out;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
