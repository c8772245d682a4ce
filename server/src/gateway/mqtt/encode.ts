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
