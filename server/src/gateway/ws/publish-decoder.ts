import type { PublishFrame } from "@tributary/client/protocol";

/**
 * A decoder for the one frame a WebSocket connection sends most: `publish` in CBOR, read
 * straight from uWS's buffer into a PublishFrame without the generic codec (cbor-x builds
 * an object, interns its key strings and copies each byte string; then every field is
 * validated by name). It accepts only the shapes the SDK writes:
 *
 *   a definite-length map whose keys are among op, id, topic, key, value, partition,
 *   acks, producerId, seq, each once; op "publish"; id, partition and seq unsigned
 *   integers below 2^32; topic (≤ 249) and producerId (≤ 256) ASCII text; key and value
 *   byte strings or null; acks 0, 1 or "all"; producerId and seq together; nothing after
 *   the map.
 *
 * Anything else (headers, other fields, other integer widths, non-ASCII text, a bad
 * value, trailing bytes) returns null and the caller takes the generic path, which
 * decodes and validates it and names what is wrong. So this decoder never answers
 * differently from `parseClientFrame(decode(bytes))`, only sooner (property-tested
 * against it in publish-decoder.test.ts). Byte fields are copies: uWS reuses its buffer.
 */
export function decodePublishCbor(bytes: Uint8Array): PublishFrame | null {
  buf = bytes;
  at = 0;
  try {
    return decode();
  } finally {
    buf = EMPTY; // do not keep uWS's buffer reachable
  }
}

// The decoder's cursor: module state instead of closures made per call (decoding is
// synchronous and never re-entered).
const EMPTY = new Uint8Array(0);
let buf: Uint8Array = EMPTY;
let at = 0;

function decode(): PublishFrame | null {
  const length = buf.length;
  const head = buf[at++];
  let entries: number;
  if (head === undefined) return null;
  if (head >= 0xa0 && head <= 0xb7) entries = head - 0xa0;
  else if (head === 0xb8 && length > 1) entries = buf[at++]!;
  else if (head === 0xb9 && length > 2) {
    entries = (buf[at]! << 8) | buf[at + 1]!;
    at += 2;
  } else return null;

  let seen = 0;
  let op = false;
  let id = -1;
  let topic: string | null = null;
  let key: Uint8Array | null | undefined;
  let value: Uint8Array | null | undefined;
  let partition = -1;
  let acks: 0 | 1 | "all" | undefined;
  let producerId: string | undefined;
  let seq = -1;

  for (let e = 0; e < entries; e++) {
    // Keys: short ASCII text, compared by length and bytes (no string made).
    if (at >= length) return null;
    const k = buf[at++]!;
    if (k < 0x62 || k > 0x6a) return null;
    const n = k - 0x60;
    if (at + n > length) return null;
    const field = fieldOf(at, n);
    at += n;
    if (field < 0 || (seen & (1 << field)) !== 0) return null;
    seen |= 1 << field;
    switch (field) {
      case OP:
        if (!isPublishText()) return null;
        op = true;
        break;
      case ID:
        if ((id = uint()) < 0) return null;
        break;
      case TOPIC:
        if ((topic = topicText()) === null) return null;
        break;
      case KEY:
        if ((key = bytesOrNull()) === undefined) return null;
        break;
      case VALUE:
        if ((value = bytesOrNull()) === undefined) return null;
        break;
      case PARTITION:
        if ((partition = uint()) < 0) return null;
        break;
      case ACKS: {
        if (at >= length) return null;
        const b = buf[at];
        if (b === 0x00 || b === 0x01) {
          acks = b;
          at++;
        } else if (ascii(3) === "all") acks = "all";
        else return null;
        break;
      }
      case PRODUCER_ID: {
        const s = ascii(256);
        if (s === null) return null;
        producerId = s;
        break;
      }
      case SEQ:
        if ((seq = uint()) < 0) return null;
        break;
    }
  }
  if (at !== length || !op || id < 0 || topic === null || value === undefined) return null;
  if ((producerId === undefined) !== (seq < 0)) return null;
  const frame: PublishFrame = { op: "publish", id, topic, value };
  if (key !== undefined) frame.key = key;
  if (partition >= 0) frame.partition = partition;
  if (acks !== undefined) frame.acks = acks;
  if (producerId !== undefined) {
    frame.producerId = producerId;
    frame.seq = seq;
  }
  return frame;
}

/** The length or value after a head whose major type the caller checked (`minor` = its low 5 bits); -1 if not supported. */
function argument(minor: number): number {
  if (minor < 24) return minor;
  const length = buf.length;
  if (minor === 24) return at < length ? buf[at++]! : -1;
  if (minor === 25) {
    if (at + 1 >= length) return -1;
    const n = (buf[at]! << 8) | buf[at + 1]!;
    at += 2;
    return n;
  }
  if (minor === 26) {
    if (at + 3 >= length) return -1;
    const n = ((buf[at]! << 24) >>> 0) + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
    at += 4;
    return n;
  }
  return -1;
}

/** An unsigned integer below 2^32; -1 if it is anything else. */
function uint(): number {
  if (at >= buf.length) return -1;
  const b = buf[at++]!;
  if (b >= 0x1b) return -1; // other major types, uint64, floats
  return argument(b);
}

/** ASCII text of at most `max` characters; null if it is anything else. */
function ascii(max: number): string | null {
  if (at >= buf.length) return null;
  const b = buf[at++]!;
  if (b < 0x60 || b > 0x7a) return null;
  const n = argument(b - 0x60);
  if (n < 0 || n > max || at + n > buf.length) return null;
  for (let i = at; i < at + n; i++) if (buf[i]! >= 0x80) return null;
  const s = latin1(buf, at, at + n);
  at += n;
  return s;
}

/** The text "publish" (the op), compared as bytes: no string made. */
function isPublishText(): boolean {
  if (at + PUBLISH_TEXT.length > buf.length) return false;
  for (let i = 0; i < PUBLISH_TEXT.length; i++) if (buf[at + i] !== PUBLISH_TEXT[i]) return false;
  at += PUBLISH_TEXT.length;
  return true;
}
const PUBLISH_TEXT = Uint8Array.of(0x67, ...Array.from("publish", (c) => c.charCodeAt(0)));

/**
 * The topic (ASCII text of at most 249 characters; null if anything else). Publishers
 * repeat topics: when the bytes are the last topic's, its string is returned again (no
 * string made, and its hash, computed once, serves every Map lookup on the way).
 */
function topicText(): string | null {
  const from = at;
  const last = lastTopicBytes;
  if (from + last.length <= buf.length) {
    let same = true;
    for (let i = 0; i < last.length; i++) {
      if (buf[from + i] !== last[i]) {
        same = false;
        break;
      }
    }
    if (same) {
      at += last.length;
      return lastTopic;
    }
  }
  const topic = ascii(249);
  if (topic !== null) {
    lastTopic = topic;
    lastTopicBytes = buf.slice(from, at); // head and text: a copy, uWS reuses its buffer
  }
  return topic;
}
let lastTopic = "";
let lastTopicBytes: Uint8Array = Uint8Array.of(0xff); // matches no topic head

/** A byte string (copied) or null; undefined if it is anything else. */
function bytesOrNull(): Uint8Array | null | undefined {
  if (at >= buf.length) return undefined;
  const b = buf[at++]!;
  if (b === 0xf6) return null;
  if (b < 0x40 || b > 0x5a) return undefined;
  const n = argument(b - 0x40);
  if (n < 0 || at + n > buf.length) return undefined;
  const out = buf.slice(at, at + n);
  at += n;
  return out;
}

const OP = 0;
const ID = 1;
const TOPIC = 2;
const KEY = 3;
const VALUE = 4;
const PARTITION = 5;
const ACKS = 6;
const PRODUCER_ID = 7;
const SEQ = 8;
const FIELDS = ["op", "id", "topic", "key", "value", "partition", "acks", "producerId", "seq"].map((name) => Uint8Array.from(name, (c) => c.charCodeAt(0)));

/** Which field the key bytes `buf[from, from + n)` name; -1 for none. */
function fieldOf(from: number, n: number): number {
  next: for (let f = 0; f < FIELDS.length; f++) {
    const name = FIELDS[f]!;
    if (name.length !== n) continue;
    for (let i = 0; i < n; i++) if (buf[from + i] !== name[i]) continue next;
    return f;
  }
  return -1;
}

function latin1(bytes: Uint8Array, from: number, to: number): string {
  if (to - from <= 16) {
    let s = "";
    for (let i = from; i < to; i++) s += String.fromCharCode(bytes[i]!);
    return s;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset + from, to - from).toString("latin1");
}
