/**
 * A batch of records as the body of `COPY <table> (src_topic, src_partition, src_offset,
 * src_key, src_timestamp, <value>) FROM STDIN` in text format: one Buffer for the whole
 * batch, written byte by byte (no string, Buffer or array per row).
 *
 * Text format: fields separated by a tab, rows ended by a newline, NULL as `\N`, and in a
 * field a backslash, tab, newline or carriage return escaped with a backslash (`\\`, `\t`,
 * `\n`, `\r`). Those four are ASCII, and no byte of a multi-byte UTF-8 sequence is ASCII,
 * so escaping works on the bytes. The value goes in as its bytes (PostgreSQL checks that
 * they are UTF-8 JSON); the key as its text (the SDK's decoding of the key bytes), the
 * timestamp as ISO 8601 UTC with milliseconds.
 */
import type { SinkRecord } from "../connector.ts";

const BACKSLASH = 0x5c;
const TAB = 0x09;
const NEWLINE = 0x0a;
const CR = 0x0d;
/** Most bytes a row needs besides its key and value: topic and time are counted apart; two integers (up to 16 digits each), five tabs, `\N`, newline. */
const ROW_OVERHEAD = 48;

const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

/** A text-format COPY field: backslash, tab, newline and carriage return escaped. */
export function copyText(s: string): string {
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (ch) => COPY_ESCAPES[ch]!) : s;
}

/** The COPY text of `rows` (see the module comment). */
export function encodeCopyRows(rows: readonly SinkRecord[]): Buffer {
  // Capacity: every value and key byte might be escaped (two bytes); a key character is at most 3 UTF-8 bytes.
  let size = 0;
  for (const r of rows) {
    size += ROW_OVERHEAD + r.topic.length * 6 + 32; // topic (escaped UTF-8) and time (ISO, up to 27 characters)
    if (r.key !== null) size += r.key.length * 6;
    if (r.value !== null) size += r.value.length * 2;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  let topic = "";
  let topicBytes: Buffer = Buffer.alloc(0);
  let timestamp = Number.NaN;
  let time = "";
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.topic !== topic) {
      topic = r.topic;
      topicBytes = Buffer.from(copyText(topic), "utf8");
    }
    for (let j = 0; j < topicBytes.length; j++) out[pos++] = topicBytes[j]!;
    out[pos++] = TAB;
    pos = writeInteger(out, pos, r.partition);
    out[pos++] = TAB;
    pos = writeInteger(out, pos, r.offset);
    out[pos++] = TAB;
    const key = r.key;
    if (key === null) {
      out[pos++] = BACKSLASH;
      out[pos++] = 0x4e; // N
    } else {
      pos = writeText(out, pos, key);
    }
    out[pos++] = TAB;
    if (r.timestamp !== timestamp) {
      timestamp = r.timestamp;
      time = new Date(timestamp).toISOString();
    }
    for (let j = 0; j < time.length; j++) out[pos++] = time.charCodeAt(j); // ISO 8601: ASCII
    out[pos++] = TAB;
    const value = r.value;
    if (value === null) {
      out[pos++] = BACKSLASH;
      out[pos++] = 0x4e;
    } else {
      pos = writeBytes(out, pos, value);
    }
    out[pos++] = NEWLINE;
  }
  return out.subarray(0, pos);
}

/** A non-negative integer (offsets stay below 2^53) in decimal ASCII. */
function writeInteger(out: Buffer, pos: number, n: number): number {
  if (n < 10) {
    out[pos] = 0x30 + n;
    return pos + 1;
  }
  let digits = 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
  let end = pos + digits;
  for (let m = n; end > pos; m = Math.floor(m / 10)) out[--end] = 0x30 + (m % 10);
  return pos + digits;
}

/** Bytes, escaped. */
function writeBytes(out: Buffer, pos: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b > CR && b !== BACKSLASH) out[pos++] = b;
    else pos = writeEscaped(out, pos, b);
  }
  return pos;
}

/** Text as UTF-8, escaped: ASCII here, anything else through Buffer#write. */
function writeText(out: Buffer, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return pos + out.write(copyText(s.slice(i)), pos, "utf8");
    if (c > CR && c !== BACKSLASH) out[pos++] = c;
    else pos = writeEscaped(out, pos, c);
  }
  return pos;
}

/** An ASCII byte that may need a backslash (`\\`, `\t`, `\n`, `\r`); other control bytes go as they are. */
function writeEscaped(out: Buffer, pos: number, b: number): number {
  switch (b) {
    case BACKSLASH:
      out[pos++] = BACKSLASH;
      out[pos++] = BACKSLASH;
      return pos;
    case TAB:
      out[pos++] = BACKSLASH;
      out[pos++] = 0x74; // t
      return pos;
    case NEWLINE:
      out[pos++] = BACKSLASH;
      out[pos++] = 0x6e; // n
      return pos;
    case CR:
      out[pos++] = BACKSLASH;
      out[pos++] = 0x72; // r
      return pos;
    default:
      out[pos++] = b;
      return pos;
  }
}
