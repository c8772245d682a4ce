import type { IPubackPacket, IPublishPacket } from "mqtt-packet";

/**
 * PUBLISH and PUBACK, the packets of the message path, decoded straight from a read buffer
 * instead of through mqtt-packet's parser (its buffer list, per-field reads and packet
 * object took about a third of the MQTT gateway's CPU per message at QoS 1).
 *
 * Only packets that lie whole in the buffer and have the plainest shape are taken:
 * PUBLISH with QoS 0–2 and, in MQTT 5, no properties; PUBACK of 2 bytes (or, in MQTT 5,
 * 3 bytes with reason code 0). `read` returns null for anything else (another packet type,
 * properties, a packet cut by the end of the buffer, a field that would run past its
 * packet) and the caller hands the bytes from there to mqtt-packet, which then parses and
 * reports errors exactly as before. A packet taken here has the fields and values
 * mqtt-packet would give it (property-tested against mqtt-packet).
 */
export class FastPacketReader {
  /** Bytes of the packet the last non-null `read` returned. */
  consumed = 0;
  /** The last PUBLISH topic and its bytes: devices repeat topics, so most packets make no string. */
  #topic = "";
  #topicBytes: Buffer = Buffer.alloc(0);

  /** The packet starting at `buf[pos]` for a client of `protocolVersion` (4 or 5), or null. */
  read(buf: Buffer, pos: number, protocolVersion: number): IPublishPacket | IPubackPacket | null {
    const first = buf[pos]!;
    const type = first >> 4;
    if (type !== 3 && type !== 4) return null;
    // Remaining length: 1 to 4 bytes.
    let p = pos + 1;
    let length = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      if (i === 4 || p >= buf.length) return null;
      const b = buf[p++]!;
      length += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) break;
      mul *= 0x80;
    }
    const end = p + length;
    if (end > buf.length) return null;
    const packet = type === 3 ? this.#publish(buf, first, p, end, length, protocolVersion) : puback(buf, first, p, length, protocolVersion);
    if (packet !== null) this.consumed = end - pos;
    return packet;
  }

  #publish(buf: Buffer, first: number, p: number, end: number, length: number, protocolVersion: number): IPublishPacket | null {
    const qos = (first >> 1) & 3;
    if (qos === 3 || p + 2 > end) return null;
    const topicLength = (buf[p]! << 8) | buf[p + 1]!;
    p += 2;
    if (p + topicLength > end) return null;
    const topic = this.#topicAt(buf, p, topicLength);
    p += topicLength;
    let messageId = 0;
    if (qos > 0) {
      if (p + 2 > end) return null;
      messageId = (buf[p]! << 8) | buf[p + 1]!;
      p += 2;
    }
    if (protocolVersion === 5) {
      if (p >= end || buf[p] !== 0) return null; // properties: mqtt-packet's business
      p += 1;
    }
    const packet: IPublishPacket = { cmd: "publish", retain: (first & 1) !== 0, qos: qos as 0 | 1 | 2, dup: (first & 8) !== 0, length, topic, payload: buf.subarray(p, end) };
    if (qos > 0) packet.messageId = messageId;
    return packet;
  }

  #topicAt(buf: Buffer, at: number, length: number): string {
    const last = this.#topicBytes;
    if (last.length === length && buf.compare(last, 0, length, at, at + length) === 0) return this.#topic;
    this.#topic = buf.toString("utf8", at, at + length);
    this.#topicBytes = Buffer.from(buf.subarray(at, at + length)); // a copy: the read buffer is not kept
    return this.#topic;
  }
}

function puback(buf: Buffer, first: number, p: number, length: number, protocolVersion: number): IPubackPacket | null {
  if ((first & 0x0f) !== 0) return null;
  const messageId = (buf[p]! << 8) | buf[p + 1]!;
  if (length === 2) {
    const packet: IPubackPacket = { cmd: "puback", retain: false, qos: 0, dup: false, length, topic: null, payload: null, messageId } as unknown as IPubackPacket;
    if (protocolVersion === 5) packet.reasonCode = 0;
    return packet;
  }
  if (protocolVersion === 5 && length === 3 && buf[p + 2] === 0) {
    return { cmd: "puback", retain: false, qos: 0, dup: false, length, topic: null, payload: null, messageId, reasonCode: 0 } as unknown as IPubackPacket;
  }
  return null;
}
