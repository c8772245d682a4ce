/**
 * A small CBOR (RFC 8949) encoder/decoder with the `Encoder`/`Decoder` surface of cbor-x
 * that the SDK uses. The browser bundle aliases `cbor-x` to this file (build.mjs): cbor-x
 * is ~11 KB gzip, this is ~1.5 KB. Wire-compatible with cbor-x as the protocol configures
 * it (`useRecords: false`, `mapsAsObjects: true`, plain byte strings); cbor-lite.test.ts
 * checks both directions against cbor-x on generated values.
 *
 * Decodes: all major types, definite and indefinite lengths, float16/32/64, 64-bit ints
 * (BigInt beyond 2^53), tags 1 (Date), 2/3 (bignum), 64-87 (typed arrays), 258 (Set);
 * other tags yield their content. Maps decode to plain objects (keys stringified).
 * Encodes: numbers (shortest int up to 32 bits, else float64, as cbor-x does), bigint, strings, booleans, null,
 * undefined, Uint8Array/ArrayBuffer/views (byte strings), arrays, plain objects (undefined
 * properties skipped), Map, Set (tag 258), Date (tag 1, seconds).
 */

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

export interface CborOptions {
  useRecords?: boolean;
  mapsAsObjects?: boolean;
  tagUint8Array?: boolean;
}

export class Encoder {
  #buf: Uint8Array = new Uint8Array(256);
  #view: DataView = new DataView(this.#buf.buffer);
  #pos = 0;

  constructor(_options: CborOptions = {}) {}

  encode(value: unknown): Uint8Array {
    this.#pos = 0;
    this.#write(value);
    return this.#buf.slice(0, this.#pos);
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  #head(major: number, n: number | bigint): void {
    this.#ensure(9);
    const m = major << 5;
    if (typeof n === "bigint" || n > 0xffffffff) {
      this.#buf[this.#pos++] = m | 27;
      this.#view.setBigUint64(this.#pos, BigInt(n));
      this.#pos += 8;
    } else if (n < 24) {
      this.#buf[this.#pos++] = m | n;
    } else if (n < 0x100) {
      this.#buf[this.#pos++] = m | 24;
      this.#buf[this.#pos++] = n;
    } else if (n < 0x10000) {
      this.#buf[this.#pos++] = m | 25;
      this.#view.setUint16(this.#pos, n);
      this.#pos += 2;
    } else {
      this.#buf[this.#pos++] = m | 26;
      this.#view.setUint32(this.#pos, n);
      this.#pos += 4;
    }
  }

  #bytes(major: number, bytes: Uint8Array): void {
    this.#head(major, bytes.length);
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  #write(value: unknown): void {
    switch (typeof value) {
      case "number":
        // Like cbor-x: integers beyond 32 bits go as float64 (exact up to 2^53).
        if (Number.isInteger(value) && value >= -0x100000000 && value < 0x100000000) {
          if (value >= 0) this.#head(0, value);
          else this.#head(1, -1 - value);
        } else {
          this.#ensure(9);
          this.#buf[this.#pos++] = 0xfb;
          this.#view.setFloat64(this.#pos, value);
          this.#pos += 8;
        }
        return;
      case "bigint":
        if (value >= 0n && value < 1n << 64n) this.#head(0, value);
        else if (value < 0n && value >= -(1n << 64n)) this.#head(1, -1n - value);
        else {
          const negative = value < 0n;
          let hex = (negative ? -1n - value : value).toString(16);
          if (hex.length % 2) hex = "0" + hex;
          this.#head(6, negative ? 3 : 2);
          this.#bytes(2, Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16)));
        }
        return;
      case "string":
        this.#bytes(3, utf8Encoder.encode(value));
        return;
      case "boolean":
        this.#head(7, value ? 21 : 20);
        return;
      case "undefined":
        this.#head(7, 23);
        return;
      case "object":
        break;
      default:
        throw new TypeError(`cannot encode a ${typeof value} as CBOR`);
    }
    if (value === null) {
      this.#head(7, 22);
    } else if (value instanceof Uint8Array) {
      this.#bytes(2, value);
    } else if (value instanceof ArrayBuffer) {
      this.#bytes(2, new Uint8Array(value));
    } else if (ArrayBuffer.isView(value)) {
      this.#bytes(2, new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    } else if (Array.isArray(value)) {
      this.#head(4, value.length);
      for (const item of value) this.#write(item);
    } else if (value instanceof Date) {
      this.#head(6, 1);
      this.#write(value.getTime() / 1000);
    } else if (value instanceof Map) {
      this.#head(5, value.size);
      for (const [k, v] of value) {
        this.#write(k);
        this.#write(v);
      }
    } else if (value instanceof Set) {
      this.#head(6, 258);
      this.#write([...value]);
    } else {
      const entries = Object.entries(value).filter(([, v]) => v !== undefined && typeof v !== "function");
      this.#head(5, entries.length);
      for (const [k, v] of entries) {
        this.#write(k);
        this.#write(v);
      }
    }
  }
}

const BREAK = Symbol("break");
const TYPED_ARRAYS: Record<number, new (buffer: ArrayBuffer) => ArrayBufferView> = {
  64: Uint8Array,
  65: Uint16Array,
  66: Uint32Array,
  68: Uint8ClampedArray,
  69: Uint16Array,
  70: Uint32Array,
  72: Int8Array,
  77: Int16Array,
  78: Int32Array,
  85: Float32Array,
  86: Float64Array,
};

export class Decoder {
  #bytes: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(this.#bytes.buffer);
  #pos = 0;

  constructor(_options: CborOptions = {}) {}

  decode(input: Uint8Array): unknown {
    this.#bytes = input;
    this.#view = new DataView(input.buffer, input.byteOffset, input.byteLength);
    this.#pos = 0;
    const value = this.#read();
    if (value === BREAK) throw new Error("CBOR: unexpected break");
    if (this.#pos !== input.length) throw new Error(`CBOR: ${input.length - this.#pos} bytes after the value`);
    return value;
  }

  #need(n: number): void {
    if (this.#pos + n > this.#bytes.length) throw new Error("CBOR: unexpected end of data");
  }

  #length(info: number): number | bigint {
    if (info < 24) return info;
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (!size) throw new Error(`CBOR: invalid additional info ${info}`);
    this.#need(size);
    const at = this.#pos;
    this.#pos += size;
    if (size === 1) return this.#view.getUint8(at);
    if (size === 2) return this.#view.getUint16(at);
    if (size === 4) return this.#view.getUint32(at);
    const big = this.#view.getBigUint64(at);
    return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }

  #count(info: number): number {
    const n = this.#length(info);
    if (typeof n === "bigint") throw new Error("CBOR: length too large");
    return n;
  }

  #chunk(n: number): Uint8Array {
    this.#need(n);
    const out = this.#bytes.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  #read(): unknown {
    this.#need(1);
    const initial = this.#bytes[this.#pos++]!;
    const major = initial >> 5;
    const info = initial & 31;
    switch (major) {
      case 0:
        return this.#length(info);
      case 1: {
        const n = this.#length(info);
        return typeof n === "bigint" ? -1n - n : -1 - n;
      }
      case 2:
      case 3: {
        let bytes: Uint8Array;
        if (info === 31) {
          const parts: Uint8Array[] = [];
          for (let part = this.#read(); part !== BREAK; part = this.#read()) parts.push(major === 3 ? utf8Encoder.encode(part as string) : (part as Uint8Array));
          bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let at = 0;
          for (const p of parts) (bytes.set(p, at), (at += p.length));
        } else {
          bytes = this.#chunk(this.#count(info));
        }
        return major === 3 ? utf8Decoder.decode(bytes) : bytes.slice();
      }
      case 4: {
        const out: unknown[] = [];
        if (info === 31) for (let item = this.#read(); item !== BREAK; item = this.#read()) out.push(item);
        else for (let i = this.#count(info); i > 0; i--) out.push(this.#read());
        return out;
      }
      case 5: {
        const out: Record<string, unknown> = {};
        const entry = (key: unknown) => {
          const k = typeof key === "string" ? key : String(key);
          const v = this.#read();
          if (k === "__proto__") Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
          else out[k] = v;
        };
        if (info === 31) for (let key = this.#read(); key !== BREAK; key = this.#read()) entry(key);
        else for (let i = this.#count(info); i > 0; i--) entry(this.#read());
        return out;
      }
      case 6: {
        const tag = Number(this.#length(info));
        const content = this.#read();
        if (tag === 1 || tag === 0) return new Date(tag === 1 ? (content as number) * 1000 : (content as string));
        if ((tag === 2 || tag === 3) && content instanceof Uint8Array) {
          let n = 0n;
          for (const b of content) n = (n << 8n) | BigInt(b);
          return tag === 2 ? n : -1n - n;
        }
        const Typed = TYPED_ARRAYS[tag];
        if (Typed && content instanceof Uint8Array) return tag === 64 ? content : new Typed(content.slice().buffer);
        if (tag === 258 && Array.isArray(content)) return new Set(content);
        return content;
      }
      default: {
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 23) return undefined;
        if (info === 31) return BREAK;
        if (info === 25) {
          const half = this.#count(info);
          const exp = (half >> 10) & 0x1f;
          const mant = half & 0x3ff;
          const sign = half & 0x8000 ? -1 : 1;
          if (exp === 0) return sign * mant * 2 ** -24;
          if (exp === 31) return mant ? NaN : sign * Infinity;
          return sign * (1 + mant / 1024) * 2 ** (exp - 15);
        }
        if (info === 26) {
          this.#need(4);
          const v = this.#view.getFloat32(this.#pos);
          this.#pos += 4;
          return v;
        }
        if (info === 27) {
          this.#need(8);
          const v = this.#view.getFloat64(this.#pos);
          this.#pos += 8;
          return v;
        }
        if (info === 24) return this.#chunk(1)[0]; // simple value
        return info; // simple value 0..19
      }
    }
  }
}
