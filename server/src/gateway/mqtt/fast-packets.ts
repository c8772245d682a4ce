import type { IPubackPacket, IPublishPacket, Parser } from "mqtt-packet";

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
    const size = packetSize(buf, pos);
    if (size < 0 || pos + size > buf.length) return null;
    const end = pos + size;
    let p = pos + 1;
    while (buf[p]! & 0x80) p++; // past the remaining length's bytes: the variable header starts after them
    p++;
    const length = end - p;
    const packet = type === 3 ? this.#publish(buf, first, p, end, length, protocolVersion) : puback(buf, first, p, length, protocolVersion);
    if (packet !== null) this.consumed = size;
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

/**
 * Bytes of the packet starting at `buf[pos]` (fixed header included), read from its
 * remaining length, whether or not they are all in `buf`: -1 when the header itself is cut
 * by the end of `buf`, -2 when the remaining length runs past 4 bytes (malformed).
 */
export function packetSize(buf: Uint8Array, pos: number): number {
  let p = pos + 1;
  let length = 0;
  let mul = 1;
  for (let i = 0; ; i++) {
    if (i === 4) return -2;
    if (p >= buf.length) return -1;
    const b = buf[p++]!;
    length += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 0x80;
  }
  return p - pos + length;
}

/** The parts of mqtt-packet's parser state its typings leave out (parser.js). */
interface ParserInternals {
  /** Index into its states: 0 = before a packet's first byte (header, length, payload, new packet). */
  _stateCounter: number;
  /** The packet being parsed; its length is -1 until the remaining-length field is read. */
  packet: { length: number };
}

/**
 * After `parser.parse` returned `left` (bytes it holds unparsed): whether it is part-way
 * through a packet, so the next bytes must go to it. Unparsed bytes count, and so does a
 * packet begun but not finished (its state is past the header): its first byte alone may have
 * ended a read, and mqtt-packet consumes that byte at once (nothing left, length still -1).
 */
export function parserHoldsPart(parser: Parser, left: number): boolean {
  const state = parser as unknown as ParserInternals;
  return left > 0 || state._stateCounter !== 0;
}

/** The remaining length the packet mqtt-packet is parsing announced, or -1 before it is read. */
export function parserPacketLength(parser: Parser): number {
  return (parser as unknown as ParserInternals).packet.length;
}

/** Where the framer's packets go (one object per connection: no closure per read). */
export interface FramerSink {
  /** A PUBLISH or PUBACK the fast reader decoded; false stops (the connection closed). */
  packet(packet: IPublishPacket | IPubackPacket): boolean;
  /** Bytes for mqtt-packet, in stream order; false stops. */
  fallback(bytes: Buffer): boolean;
  /** mqtt-packet holds part of a packet (the next bytes must go to it). */
  partial(): boolean;
}

/**
 * The most bytes of a packet cut by the end of a read that the framer holds for the next
 * read; larger ones go to mqtt-packet, whose buffer list appends without copying. Holding
 * copies what is held on every read until the packet is whole, so a client dripping a packet
 * byte by byte costs at most HOLD_MAX²/2 bytes copied per packet.
 */
export const HOLD_MAX = 4096;

/**
 * Splits a connection's byte stream into packets: the fast reader's (PUBLISH, PUBACK)
 * straight to `sink.packet`, every other whole packet to mqtt-packet (`sink.fallback`) one
 * at a time, so mqtt-packet never holds part of a packet while the fast reader runs. A
 * packet cut by the end of a read (pipelined PUBLISH split between two reads, the common
 * case) is held, at most HOLD_MAX bytes, and completed from the front of the next read; a
 * larger one, or a malformed length, goes to mqtt-packet with the rest of the stream until
 * it holds nothing again. `fast` false (before CONNECT is done) sends everything to mqtt-packet.
 */
export class PacketFramer {
  readonly #reader = new FastPacketReader();
  #held: Buffer | null = null;
  readonly #maxHold: number;

  /** `maxPacketBytes`: a cut packet announced larger goes to mqtt-packet at once (the caller refuses it from its header). */
  constructor(maxPacketBytes = Infinity) {
    this.#maxHold = Math.min(HOLD_MAX, maxPacketBytes);
  }

  /** Bytes held from the last read (for tests and limits). */
  get heldBytes(): number {
    return this.#held?.length ?? 0;
  }

  push(data: Buffer, protocolVersion: number, fast: boolean, sink: FramerSink): void {
    if (this.#held !== null) {
      const held = this.#held;
      this.#held = null;
      const size = packetSize(held, 0);
      if (size < 0 || !fast || sink.partial()) data = Buffer.concat([held, data]); // a cut header: a few bytes
      else {
        // Complete the held packet from the front of this read; the rest is parsed from where it ends.
        const need = size - held.length;
        if (data.length < need) {
          this.#held = Buffer.concat([held, data]);
          return;
        }
        if (!this.#whole(Buffer.concat([held, data.subarray(0, need)]), protocolVersion, sink)) return;
        data = data.subarray(need);
      }
    }
    if (!fast || sink.partial()) {
      if (data.length > 0) sink.fallback(data);
      return;
    }
    let pos = 0;
    while (pos < data.length) {
      const packet = this.#reader.read(data, pos, protocolVersion);
      if (packet !== null) {
        pos += this.#reader.consumed;
        if (!sink.packet(packet)) return;
        continue;
      }
      const size = packetSize(data, pos);
      if (size > 0 && pos + size <= data.length) {
        if (!sink.fallback(data.subarray(pos, pos + size))) return;
        pos += size;
        continue;
      }
      if (size === -1 || (size > 0 && size <= this.#maxHold)) {
        this.#held = Buffer.from(data.subarray(pos));
        return;
      }
      break; // malformed length, or a large packet: mqtt-packet takes the rest
    }
    if (pos < data.length) sink.fallback(pos === 0 ? data : data.subarray(pos));
  }

  /** One whole packet in `buf`: the fast reader's, or mqtt-packet's. False: stop. */
  #whole(buf: Buffer, protocolVersion: number, sink: FramerSink): boolean {
    const packet = this.#reader.read(buf, 0, protocolVersion);
    return packet !== null ? sink.packet(packet) : sink.fallback(buf);
  }

  clear(): void {
    this.#held = null;
  }
}
