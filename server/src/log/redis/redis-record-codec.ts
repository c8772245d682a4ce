import { TributaryError } from "../../errors.ts";
import type { LogRecord, RecordHeaders, RecordInput } from "../log-engine.ts";

/**
 * Records as stream entries (binary-safe fields): `t` timestamp, `k` key, `v` value, `h`
 * headers, `m` running max timestamp when above `t`. A null key or value is an absent field
 * (an empty one is present and empty). Headers: repeated [u16 name length][name utf8]
 * [u32 value length][value].
 */
export function encodeHeaders(headers: RecordHeaders): Buffer | null {
  const names = Object.keys(headers);
  if (names.length === 0) return null;
  const parts: Buffer[] = [];
  for (const name of names) {
    const n = Buffer.from(name, "utf8");
    const v = headers[name]!;
    const head = Buffer.allocUnsafe(2 + n.length + 4);
    head.writeUInt16BE(n.length, 0);
    n.copy(head, 2);
    head.writeUInt32BE(v.byteLength, 2 + n.length);
    parts.push(head, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  }
  return Buffer.concat(parts);
}

export function decodeHeaders(buf: Buffer, context: Record<string, unknown>): RecordHeaders {
  const out: RecordHeaders = {};
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 2 > buf.length) throw corrupt("truncated header name length", context);
    const nl = buf.readUInt16BE(pos);
    pos += 2;
    if (pos + nl + 4 > buf.length) throw corrupt("truncated header", context);
    const name = buf.toString("utf8", pos, pos + nl);
    pos += nl;
    const vl = buf.readUInt32BE(pos);
    pos += 4;
    if (pos + vl > buf.length) throw corrupt("truncated header value", context);
    out[name] = new Uint8Array(buf.subarray(pos, pos + vl));
    pos += vl;
  }
  return out;
}

function corrupt(reason: string, context: Record<string, unknown>): TributaryError {
  return new TributaryError("CORRUPT_RECORD", `corrupt stream entry: ${reason}`, context);
}

/** Validated input: the byte size counted for batch limits and retention. */
export interface EncodedRecord {
  flags: string;
  key: Buffer;
  value: Buffer;
  headers: Buffer;
  timestamp: number;
  size: number;
}

const EMPTY = Buffer.alloc(0);

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function encodeRecord(r: RecordInput, i: number, now: number): EncodedRecord {
  if (typeof r !== "object" || r === null) throw new TributaryError("BAD_REQUEST", `record ${i} must be an object`);
  const { key, value } = r;
  if (key !== null && key !== undefined && !(key instanceof Uint8Array)) {
    throw new TributaryError("BAD_REQUEST", `record ${i}: key must be a Uint8Array or null`);
  }
  if (value !== null && value !== undefined && !(value instanceof Uint8Array)) {
    throw new TributaryError("BAD_REQUEST", `record ${i}: value must be a Uint8Array or null`);
  }
  if (r.headers !== undefined && (typeof r.headers !== "object" || r.headers === null)) {
    throw new TributaryError("BAD_REQUEST", `record ${i}: headers must be an object`);
  }
  for (const [name, v] of Object.entries(r.headers ?? {})) {
    if (!(v instanceof Uint8Array)) throw new TributaryError("BAD_REQUEST", `record ${i}: header ${JSON.stringify(name)} must be a Uint8Array`);
  }
  const ts = r.timestamp ?? now;
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts < 0) {
    throw new TributaryError("BAD_REQUEST", `record ${i}: timestamp must be a non-negative integer (ms), got ${String(ts)}`);
  }
  const headers = r.headers ? encodeHeaders(r.headers) : null;
  let flags = "";
  if (key) flags += "k";
  if (value) flags += "v";
  if (headers) flags += "h";
  const k = key ? toBuffer(key) : EMPTY;
  const v = value ? toBuffer(value) : EMPTY;
  const h = headers ?? EMPTY;
  return { flags: flags || "-", key: k, value: v, headers: h, timestamp: ts, size: k.length + v.length + h.length };
}

/** A stream entry as returned by XRANGE with Buffer replies: [id, [field, value, ...]]. */
export type RawEntry = [Buffer, Buffer[]];

export function decodeEntry(entry: RawEntry, context: Record<string, unknown>): LogRecord & { token: string } {
  const id = entry[0].toString("latin1");
  const dash = id.indexOf("-");
  const offset = Number(id.slice(0, dash));
  const token = id.slice(dash + 1);
  let timestamp = NaN;
  let key: Uint8Array | null = null;
  let value: Uint8Array | null = null;
  let headers: RecordHeaders = {};
  const fields = entry[1];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i]!.toString("latin1");
    const v = fields[i + 1]!;
    if (f === "t") timestamp = Number(v.toString("latin1"));
    else if (f === "k") key = new Uint8Array(v);
    else if (f === "v") value = new Uint8Array(v);
    else if (f === "h") headers = decodeHeaders(v, { ...context, offset });
  }
  if (!Number.isSafeInteger(offset) || !Number.isFinite(timestamp)) throw corrupt(`entry ${id} has no valid offset/timestamp`, context);
  return { offset, timestamp, key, value, headers, token };
}

/** Approximate byte size of a record as returned to readers (for maxBytes). */
export function recordSize(r: LogRecord): number {
  let size = 16 + (r.key?.byteLength ?? 0) + (r.value?.byteLength ?? 0);
  for (const [n, v] of Object.entries(r.headers)) size += n.length + v.byteLength;
  return size;
}
