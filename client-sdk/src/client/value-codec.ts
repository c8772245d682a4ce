/**
 * Value codecs: how the SDK turns an application value into record bytes and back, and the
 * content-type convention every protocol shares (docs/semantics.md, "Values and content
 * types"): a record's `content-type` header says how to read its value.
 *
 * The default codec (`jsonCodec`) writes objects, arrays, numbers, booleans and null as
 * JSON (`application/json`), strings as UTF-8 text (`text/plain; charset=utf-8`) and bytes
 * as they are (`application/octet-stream`), and reads any record by its content type. A
 * record without a content type (MQTT 3.1.1, older producers) is given as bytes; the
 * message's `text()` / `json()` read it as text or JSON.
 */
import { Decoder, Encoder } from "cbor-x";

/** The record header naming the value's media type (lower case, like HTTP/2 header names). */
export const CONTENT_TYPE_HEADER = "content-type";
export const JSON_TYPE = "application/json";
export const TEXT_TYPE = "text/plain; charset=utf-8";
export const BYTES_TYPE = "application/octet-stream";
export const CBOR_TYPE = "application/cbor";

export interface ValueCodec<T = unknown> {
  /** Short name, for logs and the console. */
  readonly name: string;
  /**
   * The content type recorded (`content-type` header) with what `encode` returns: one type,
   * or a function of the value; undefined = no header. A `content-type` in the publish's
   * own headers (or its `contentType` option) wins.
   */
  readonly contentType?: string | ((value: T) => string | undefined);
  encode(value: T): Uint8Array;
  /** Decodes a record value; `contentType` is the record's `content-type` header, undefined when it has none. */
  decode(bytes: Uint8Array, contentType?: string): T;
}

const cborEncoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const cborDecoder = new Decoder({ useRecords: false, mapsAsObjects: true });
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The media type of a content type, lower case, without parameters: `Text/Plain; charset=utf-8` → `text/plain`. */
export function mediaType(contentType: string): string {
  const semi = contentType.indexOf(";");
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/** JSON media types: `application/json` and any `+json` suffix type (`application/ld+json`). */
export function isJsonType(contentType: string): boolean {
  const type = mediaType(contentType);
  return type === JSON_TYPE || type.endsWith("+json");
}

/** Text media types: `text/*`. Their bytes are read as UTF-8. */
export function isTextType(contentType: string): boolean {
  return mediaType(contentType).startsWith("text/");
}

/**
 * Decodes record bytes by their content type: JSON types → the parsed value (throws on
 * invalid JSON), `text/*` → a string (UTF-8), `application/cbor` → the CBOR value;
 * anything else, and no content type, → the bytes themselves.
 */
export function decodeByContentType(bytes: Uint8Array, contentType: string | undefined): unknown {
  if (contentType === undefined) return bytes;
  if (isJsonType(contentType)) return JSON.parse(utf8Decoder.decode(bytes));
  if (isTextType(contentType)) return utf8Decoder.decode(bytes);
  if (mediaType(contentType) === CBOR_TYPE) return cborDecoder.decode(bytes);
  return bytes;
}

function isBytes(value: unknown): value is Uint8Array | ArrayBuffer {
  return value instanceof Uint8Array || value instanceof ArrayBuffer;
}

/**
 * The default: objects, arrays, numbers, booleans and null as JSON (`application/json`),
 * strings as UTF-8 text (`text/plain; charset=utf-8`), bytes (Uint8Array, ArrayBuffer) as
 * they are (`application/octet-stream`). Reads every record by its content type
 * (`decodeByContentType`): records without one come as bytes.
 */
export const jsonCodec: ValueCodec<unknown> = {
  name: "json",
  contentType: (value) => (isBytes(value) ? BYTES_TYPE : typeof value === "string" ? TEXT_TYPE : JSON_TYPE),
  encode: (value) => {
    if (value instanceof Uint8Array) return value;
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    if (typeof value === "string") return utf8Encoder.encode(value);
    const text = JSON.stringify(value === undefined ? null : value);
    if (text === undefined) throw new TypeError(`a ${typeof value} is not a JSON value`);
    return utf8Encoder.encode(text);
  },
  decode: decodeByContentType,
};

/**
 * CBOR (RFC 8949), `application/cbor`: any CBOR-able value (objects, arrays, strings,
 * numbers, bytes, null...). Reads `application/cbor` records and records without a content
 * type (what SDKs before the content-type convention wrote by default) as CBOR, others by
 * their content type.
 */
export const cborCodec: ValueCodec<unknown> = {
  name: "cbor",
  contentType: CBOR_TYPE,
  encode: (value) => cborEncoder.encode(value),
  decode: (bytes, contentType) => (contentType === undefined || mediaType(contentType) === CBOR_TYPE ? cborDecoder.decode(bytes) : decodeByContentType(bytes, contentType)),
};

/**
 * Raw bytes, passed through untouched; strings are sent as UTF-8. No content type is
 * recorded (set one with the `contentType` publish option). Always decodes to Uint8Array.
 */
export const rawCodec: ValueCodec<Uint8Array | string> = {
  name: "raw",
  encode: (value) => {
    if (value instanceof Uint8Array) return value;
    if (typeof value === "string") return utf8Encoder.encode(value);
    throw new TypeError("the raw codec takes a Uint8Array or a string");
  },
  decode: (bytes) => bytes,
};

/** UTF-8 text (`text/plain; charset=utf-8`): strings in, strings out, whatever the content type. */
export const stringCodec: ValueCodec<string> = {
  name: "string",
  contentType: TEXT_TYPE,
  encode: (value) => utf8Encoder.encode(String(value)),
  decode: (bytes) => utf8Decoder.decode(bytes),
};

export type CodecName = "cbor" | "json" | "raw" | "string";

const BY_NAME: Record<CodecName, ValueCodec<any>> = { cbor: cborCodec, json: jsonCodec, raw: rawCodec, string: stringCodec };

/** Resolves a codec option (a name or a codec object); default JSON (by content type). */
export function resolveCodec(codec: CodecName | ValueCodec<any> | undefined): ValueCodec<any> {
  if (codec === undefined) return jsonCodec;
  if (typeof codec === "string") {
    const found = BY_NAME[codec];
    if (!found) throw new TypeError(`unknown codec "${codec}" (json, cbor, raw, string or a codec object)`);
    return found;
  }
  return codec;
}

/** The content type `codec` records for `value`, if any. */
export function contentTypeOf(codec: ValueCodec<any>, value: unknown): string | undefined {
  const type = codec.contentType;
  return typeof type === "function" ? type(value) : type;
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

/** The bytes as text when they are valid UTF-8, else null. */
export function utf8OrNull(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Header values as the application reads them: valid UTF-8 as a string, anything else as
 * its bytes. The log stores header values as bytes with no type (like Kafka), so a string
 * comes back as a string; bytes that happen to be valid UTF-8 come back as a string too
 * (`headerBytes` always has the bytes).
 */
export function decodeHeaders(headers: Record<string, Uint8Array>): Record<string, string | Uint8Array> {
  const out: Record<string, string | Uint8Array> = {};
  for (const name in headers) {
    const bytes = headers[name]!;
    out[name] = utf8OrNull(bytes) ?? bytes;
  }
  return out;
}
