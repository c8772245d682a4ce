/**
 * How records travel in HTTP bodies (documented in docs/http-api.md).
 *
 * Request (JSON): key / value / header values are
 *   - a string → its UTF-8 bytes,
 *   - `{ "base64": "..." }` → the decoded bytes (standard alphabet, padding optional),
 *   - `null` → no key / no value (tombstone);
 *   - for `value` only, any other JSON (object, array, number, boolean) → its JSON text.
 * Request (CBOR, `Content-Type: application/cbor`): the same shape, and byte strings are
 * taken as is.
 *
 * Content type of the value (the record's `content-type` header, docs/semantics.md): the
 * record's `contentType` field, else a `content-type` in its `headers`, else from the value:
 * a JSON string → `text/plain; charset=utf-8`, `{ "base64" }` or a CBOR byte string →
 * `application/octet-stream`, any other JSON → `application/json`; null (no value) → none. Request (NDJSON, `Content-Type: application/x-ndjson`, produce only): one
 * JSON record object per line, a batch of them.
 *
 * Response (JSON): key / value / header values are rendered as a string when the bytes are
 * valid UTF-8, else as `{ "base64": "..." }`; both are exact (no BOM stripping, no
 * replacement characters). Response (CBOR, `Accept: application/cbor`): byte strings.
 */
import { decode as decodeCbor } from "cbor-x";
import { TributaryError } from "../../errors.ts";
import type { ProduceRecord } from "../../broker/broker.ts";
import type { Acks, LogRecord, RecordHeaders } from "../../log/log-engine.ts";
import { closest } from "../../config/units.ts";
import { mediaTypeOf } from "./http-router.ts";

export interface ProduceRequest {
  records: ProduceRecord[];
  acks?: Acks;
  producerId?: string;
  sequence?: number;
}

const RECORD_FIELDS = ["key", "value", "contentType", "headers", "partition", "timestamp"];
const CONTENT_TYPE_HEADER = "content-type";
export const TEXT_TYPE = "text/plain; charset=utf-8";
export const JSON_TYPE = "application/json";
export const BYTES_TYPE = "application/octet-stream";
/** `type/subtype` with optional parameters (RFC 9110 token characters). */
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$/;
const BATCH_FIELDS = ["records", "acks", "producerId", "sequence"];

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

export function isCbor(contentType: string): boolean {
  return mediaTypeOf(contentType) === "application/cbor";
}

export function isNdjson(contentType: string): boolean {
  return mediaTypeOf(contentType) === "application/x-ndjson";
}

/**
 * Parses a request body as CBOR (`application/cbor`) or else JSON; BAD_REQUEST when it
 * cannot be parsed. Which Content-Types reach a route at all is the router's rule (415
 * otherwise, http-router.ts).
 */
export function parseBody(body: Uint8Array, contentType: string): unknown {
  if (body.length === 0) throw new TributaryError("BAD_REQUEST", "the request body is empty; send a JSON (or CBOR) document");
  if (isCbor(contentType)) {
    try {
      return decodeCbor(body);
    } catch (err) {
      throw new TributaryError("BAD_REQUEST", `the body is not valid CBOR: ${(err as Error).message}`);
    }
  }
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
  } catch (err) {
    throw new TributaryError("BAD_REQUEST", `the body is not valid JSON: ${(err as Error).message}`);
  }
}

/** An NDJSON body: the JSON value of each non-blank line, in order; BAD_REQUEST naming the first line that is not JSON. */
export function parseNdjson(body: Uint8Array): unknown[] {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  const values: unknown[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    try {
      values.push(JSON.parse(line));
    } catch (err) {
      throw new TributaryError("BAD_REQUEST", `line ${i + 1} of the NDJSON body is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (values.length === 0) throw new TributaryError("BAD_REQUEST", "the NDJSON body has no records; send one JSON record object per line");
  return values;
}

export function parseAcks(raw: unknown, where: string): Acks {
  if (raw === 0 || raw === "0") return 0;
  if (raw === 1 || raw === "1") return 1;
  if (raw === "all" || raw === -1 || raw === "-1") return "all";
  throw new TributaryError("BAD_REQUEST", `${where}: expected 0, 1 or "all" (or -1), got ${show(raw)}`);
}

/**
 * Reads a produce body: one record `{key?, value, headers?, partition?, timestamp?}`, or a
 * batch `{records: [...], acks?, producerId?, sequence?}`. `queryAcks` is `?acks=`.
 */
export function parseProduceRequest(body: unknown, queryAcks: string | null): ProduceRequest {
  if (!isPlainObject(body)) throw new TributaryError("BAD_REQUEST", `expected a record object or {"records": [...]}, got ${show(body)}`);
  let request: ProduceRequest;
  if ("records" in body) {
    rejectUnknown(body, BATCH_FIELDS, "body");
    if (!Array.isArray(body.records) || body.records.length === 0) {
      throw new TributaryError("BAD_REQUEST", `records: expected a non-empty array of records, got ${show(body.records)}`);
    }
    request = { records: body.records.map((r: unknown, i: number) => parseRecord(r, `records[${i}]`)) };
    if (body.acks !== undefined) request.acks = parseAcks(body.acks, "acks");
    if (body.producerId !== undefined || body.sequence !== undefined) {
      if (typeof body.producerId !== "string" || body.producerId === "") {
        throw new TributaryError("BAD_REQUEST", `producerId: expected a non-empty string (with sequence), got ${show(body.producerId)}`);
      }
      if (!Number.isSafeInteger(body.sequence) || (body.sequence as number) < 0) {
        throw new TributaryError("BAD_REQUEST", `sequence: expected a non-negative integer (with producerId), got ${show(body.sequence)}`);
      }
      request.producerId = body.producerId;
      request.sequence = body.sequence as number;
    }
  } else {
    request = { records: [parseRecord(body, "record")] };
  }
  if (queryAcks !== null) {
    const acks = parseAcks(queryAcks, "?acks");
    if (request.acks !== undefined && request.acks !== acks) {
      throw new TributaryError("BAD_REQUEST", `acks given twice with different values (body ${request.acks}, query ${acks})`);
    }
    request.acks = acks;
  }
  return request;
}

function parseRecord(raw: unknown, where: string): ProduceRecord {
  if (!isPlainObject(raw)) throw new TributaryError("BAD_REQUEST", `${where}: expected an object, got ${show(raw)}`);
  rejectUnknown(raw, RECORD_FIELDS, where);
  if (!("value" in raw)) throw new TributaryError("BAD_REQUEST", `${where}.value: missing (use null for a record without a value)`);
  const record: ProduceRecord = {
    key: raw.key === undefined ? null : bytesOf(raw.key, `${where}.key`, false),
    value: bytesOf(raw.value, `${where}.value`, true),
  };
  let headers: RecordHeaders | undefined;
  if (raw.headers !== undefined && raw.headers !== null) {
    if (!isPlainObject(raw.headers)) throw new TributaryError("BAD_REQUEST", `${where}.headers: expected an object of name → value, got ${show(raw.headers)}`);
    headers = {};
    for (const [name, value] of Object.entries(raw.headers)) {
      const bytes = bytesOf(value, `${where}.headers.${name}`, false);
      if (bytes === null) throw new TributaryError("BAD_REQUEST", `${where}.headers.${name}: header values cannot be null`);
      headers[name] = bytes;
    }
  }
  const contentType = contentTypeOf(raw, headers, where);
  if (contentType !== null) headers = { ...headers, [CONTENT_TYPE_HEADER]: utf8Encoder.encode(contentType) };
  if (headers) record.headers = headers;
  if (raw.partition !== undefined) {
    if (!Number.isSafeInteger(raw.partition) || (raw.partition as number) < 0) {
      throw new TributaryError("BAD_REQUEST", `${where}.partition: expected a non-negative integer, got ${show(raw.partition)}`);
    }
    record.partition = raw.partition as number;
  }
  if (raw.timestamp !== undefined) {
    if (!Number.isSafeInteger(raw.timestamp) || (raw.timestamp as number) < 0) {
      throw new TributaryError("BAD_REQUEST", `${where}.timestamp: expected milliseconds since the epoch (a non-negative integer), got ${show(raw.timestamp)}`);
    }
    record.timestamp = raw.timestamp as number;
  }
  return record;
}

/**
 * The value's content type (module comment): `contentType`, a `content-type` header, or
 * what the JSON value is; null when the record gets none (no value, or the header says it).
 */
function contentTypeOf(raw: Record<string, unknown>, headers: RecordHeaders | undefined, where: string): string | null {
  const given = raw.contentType;
  const header = headers?.[CONTENT_TYPE_HEADER];
  if (given !== undefined) {
    if (typeof given !== "string" || !MEDIA_TYPE.test(given)) {
      throw new TributaryError("BAD_REQUEST", `${where}.contentType: expected a media type like "application/json" or "text/plain; charset=utf-8", got ${show(given)}`);
    }
    if (raw.value === null) throw new TributaryError("BAD_REQUEST", `${where}.contentType: a record without a value (null) has no content type`);
    if (header !== undefined && Buffer.from(header).toString("utf8") !== given) {
      throw new TributaryError("BAD_REQUEST", `${where}: contentType ${show(given)} and headers["content-type"] ${show(Buffer.from(header).toString("utf8"))} disagree; give one`);
    }
    return header !== undefined ? null : given;
  }
  if (header !== undefined || raw.value === null) return null;
  const value = raw.value;
  if (typeof value === "string") return TEXT_TYPE;
  if (value instanceof Uint8Array || (isPlainObject(value) && Object.keys(value).length === 1 && "base64" in value)) return BYTES_TYPE;
  return JSON_TYPE;
}

function bytesOf(raw: unknown, where: string, anyJson: boolean): Uint8Array | null {
  if (raw === null) return null;
  if (typeof raw === "string") return utf8Encoder.encode(raw);
  if (raw instanceof Uint8Array) return raw;
  if (isPlainObject(raw) && Object.keys(raw).length === 1 && "base64" in raw) {
    const text = raw.base64;
    if (typeof text !== "string" || !BASE64.test(text)) {
      throw new TributaryError("BAD_REQUEST", `${where}.base64: expected standard base64 text, got ${show(text)}`);
    }
    return new Uint8Array(Buffer.from(text, "base64"));
  }
  if (anyJson && raw !== undefined) return utf8Encoder.encode(JSON.stringify(raw));
  throw new TributaryError("BAD_REQUEST", `${where}: expected a string, {"base64": "..."} or null, got ${show(raw)}`);
}

function rejectUnknown(object: Record<string, unknown>, known: string[], where: string): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    const suggestion = closest(key, known);
    throw new TributaryError("BAD_REQUEST", `${where}: unknown field "${key}"${suggestion ? ` (did you mean "${suggestion}"?)` : ""}; known fields: ${known.join(", ")}`);
  }
}

/** JSON rendering of stored bytes: UTF-8 text when valid, else {base64}. */
export function renderBytes(bytes: Uint8Array | null): string | { base64: string } | null {
  if (bytes === null) return null;
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return { base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64") };
  }
}

export function renderRecordJson(record: LogRecord): Record<string, unknown> {
  const headers: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(record.headers)) headers[name] = renderBytes(value);
  return { offset: record.offset, timestamp: record.timestamp, key: renderBytes(record.key), value: renderBytes(record.value), headers };
}

export function renderRecordCbor(record: LogRecord): Record<string, unknown> {
  return { offset: record.offset, timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers };
}

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x) && !(x instanceof Uint8Array);
}

export function show(raw: unknown): string {
  if (raw === undefined) return "nothing";
  if (raw instanceof Uint8Array) return `bytes[${raw.length}]`;
  let text: string;
  try {
    text = JSON.stringify(raw) ?? String(raw);
  } catch {
    text = String(raw);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
