/**
 * Value codecs: how the SDK turns an application value into record bytes and back.
 * The log stores bytes; the codec is a client-side choice, so producers and consumers of a
 * topic must agree on it (the console and the SDK default to CBOR).
 */
import { Decoder, Encoder } from "cbor-x";

export interface ValueCodec<T = unknown> {
  /** Short name, for logs and the console. */
  readonly name: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

const cborEncoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const cborDecoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** CBOR (RFC 8949): any CBOR-able value (objects, arrays, strings, numbers, bytes, null...). */
export const cborCodec: ValueCodec<unknown> = {
  name: "cbor",
  encode: (value) => cborEncoder.encode(value),
  decode: (bytes) => cborDecoder.decode(bytes),
};

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** JSON text in UTF-8: any JSON-able value. */
export const jsonCodec: ValueCodec<unknown> = {
  name: "json",
  encode: (value) => utf8Encoder.encode(JSON.stringify(value === undefined ? null : value)),
  decode: (bytes) => JSON.parse(utf8Decoder.decode(bytes)),
};

/** Raw bytes, passed through untouched; strings are sent as UTF-8. Decodes to Uint8Array. */
export const rawCodec: ValueCodec<Uint8Array | string> = {
  name: "raw",
  encode: (value) => {
    if (value instanceof Uint8Array) return value;
    if (typeof value === "string") return utf8Encoder.encode(value);
    throw new TypeError("the raw codec takes a Uint8Array or a string");
  },
  decode: (bytes) => bytes,
};

/** UTF-8 text: strings in, strings out. */
export const stringCodec: ValueCodec<string> = {
  name: "string",
  encode: (value) => utf8Encoder.encode(String(value)),
  decode: (bytes) => utf8Decoder.decode(bytes),
};

export type CodecName = "cbor" | "json" | "raw" | "string";

const BY_NAME: Record<CodecName, ValueCodec<any>> = { cbor: cborCodec, json: jsonCodec, raw: rawCodec, string: stringCodec };

/** Resolves a codec option (a name or a codec object); default CBOR. */
export function resolveCodec(codec: CodecName | ValueCodec<any> | undefined): ValueCodec<any> {
  if (codec === undefined) return cborCodec;
  if (typeof codec === "string") {
    const found = BY_NAME[codec];
    if (!found) throw new TypeError(`unknown codec "${codec}" (cbor, json, raw, string or a codec object)`);
    return found;
  }
  return codec;
}

/** Record keys: strings go as UTF-8 bytes, bytes as they are. */
export function encodeKey(key: string | Uint8Array | null | undefined): Uint8Array | null {
  if (key === undefined || key === null) return null;
  return typeof key === "string" ? utf8Encoder.encode(key) : key;
}

/** Header values: strings go as UTF-8 bytes, bytes as they are. */
export function encodeHeaders(headers: Record<string, string | Uint8Array> | undefined): Record<string, Uint8Array> | undefined {
  if (!headers) return undefined;
  const out: Record<string, Uint8Array> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = typeof value === "string" ? utf8Encoder.encode(value) : value;
  return out;
}

/** Decodes UTF-8 bytes to text (invalid sequences become U+FFFD). */
export function bytesToString(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}
