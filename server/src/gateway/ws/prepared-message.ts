import { encodeFrame, type Frame, type MessageFrame, type WireFormat } from "@tributary/client/protocol";
import type { LogRecord } from "../../log/log-engine.ts";

/**
 * A record's `message` frame encoded once and specialised per subscription cheaply: the
 * frames for N subscribers of one partition differ only in `sub`.
 *
 * CBOR: the frame without `sub` is encoded once (a map of n entries: header 0xA0|n, or
 * 0xB8 n, or 0xB9 n16, which cbor-x writes for objects); for a subscriber the count is
 * bumped to n+1 and `"sub": <uint>` appended, in a
 * scratch buffer reused across subscribers (uWS copies on send, so reuse is safe as long
 * as the bytes are sent before the next `bytesFor` call). JSON: `{"sub":N,` + the rest.
 * Key order differs from `encodeFrame` output; both decode to the same frame.
 */
export class PreparedMessage {
  readonly offset: number;
  readonly key: Uint8Array | null;
  readonly #frame: Omit<MessageFrame, "sub">;
  #cbor: Uint8Array | null = null;
  #cborBodyLength = 0;
  #jsonTail: string | null = null;
  #lastCborSub = -1;
  #lastCbor: Uint8Array | null = null;
  #lastJsonSub = -1;
  #lastJson: string | null = null;

  constructor(topic: string, partition: number, record: LogRecord) {
    this.offset = record.offset;
    this.key = record.key;
    const frame: Omit<MessageFrame, "sub"> = {
      op: "message",
      topic,
      partition,
      offset: record.offset,
      timestamp: record.timestamp,
      key: record.key,
      value: record.value,
    };
    if (Object.keys(record.headers).length > 0) frame.headers = record.headers;
    this.#frame = frame;
  }

  /** The encoded frame for subscription `sub`; valid until the next call. */
  bytesFor(sub: number, format: WireFormat): Uint8Array | string {
    if (format === "cbor") {
      if (sub !== this.#lastCborSub || this.#lastCbor === null) {
        this.#lastCbor = this.#cborFor(sub);
        this.#lastCborSub = sub;
      }
      return this.#lastCbor;
    }
    if (sub !== this.#lastJsonSub || this.#lastJson === null) {
      this.#lastJson = this.#jsonFor(sub);
      this.#lastJsonSub = sub;
    }
    return this.#lastJson;
  }

  #cborFor(sub: number): Uint8Array {
    if (this.#cbor === null) {
      const body = encodeFrame(this.#frame as Frame, "cbor") as Uint8Array;
      const header = body[0]!;
      const patched = new Uint8Array(body.length + 4 + 9);
      patched.set(body);
      if (header >= 0xa0 && header < 0xb7) patched[0] = header + 1;
      else if (header === 0xb8 && body[1]! < 0xff) patched[1] = body[1]! + 1;
      else if (header === 0xb9 && ((body[1]! << 8) | body[2]!) < 0xffff) {
        const n = ((body[1]! << 8) | body[2]!) + 1;
        patched[1] = n >>> 8;
        patched[2] = n & 0xff;
      } else {
        // Not a definite-length map (never expected): encode per subscriber.
        return encodeFrame({ ...this.#frame, sub } as Frame, "cbor") as Uint8Array;
      }
      this.#cbor = patched;
      this.#cbor.set([0x63, 0x73, 0x75, 0x62], body.length); // text(3) "sub"
      this.#cborBodyLength = body.length + 4;
    }
    const out = this.#cbor;
    const end = writeCborUint(out, this.#cborBodyLength, sub);
    return out.subarray(0, end);
  }

  #jsonFor(sub: number): string {
    this.#jsonTail ??= (encodeFrame(plainBytes(this.#frame) as Frame, "json") as string).slice(1);
    return `{"sub":${sub},${this.#jsonTail}`;
  }
}

/** Writes a CBOR unsigned integer (major type 0; float64 from 2^32) at `at`; returns the end position. */
export function writeCborUint(out: Uint8Array, at: number, n: number): number {
  if (n < 24) {
    out[at] = n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = 0x18;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = 0x19;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  if (n < 0x100000000) {
    out[at] = 0x1a;
    out[at + 1] = n >>> 24;
    out[at + 2] = (n >>> 16) & 0xff;
    out[at + 3] = (n >>> 8) & 0xff;
    out[at + 4] = n & 0xff;
    return at + 5;
  }
  // As cbor-x does: a float64, which decoders read back as a number (a uint64 would decode as a BigInt).
  // (Every timestamp takes this branch: through a scratch array, not a DataView made per record.)
  out[at] = 0xfb;
  F64[0] = n;
  for (let i = 0; i < 8; i++) out[at + 1 + i] = F64_BYTES[LITTLE_ENDIAN ? 7 - i : i]!;
  return at + 9;
}

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const plain = (b: Uint8Array): Uint8Array => (b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength));

/**
 * The frame with Node Buffers (what engines and cbor-x hand out) as plain Uint8Array
 * views: JSON.stringify would call Buffer#toJSON before the codec's base64 replacer.
 */
export function plainBytes<F extends { key?: Uint8Array | null; value?: Uint8Array | null; headers?: Record<string, Uint8Array> }>(frame: F): F {
  const out = { ...frame };
  if (out.key) out.key = plain(out.key);
  if (out.value) out.value = plain(out.value);
  if (out.headers) out.headers = Object.fromEntries(Object.entries(out.headers).map(([k, v]) => [k, plain(v)]));
  return out;
}
