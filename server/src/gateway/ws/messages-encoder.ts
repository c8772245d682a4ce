import type { LogRecord } from "../../log/log-engine.ts";
import { writeCborUint } from "./prepared-message.ts";

const utf8 = new TextEncoder();
const key = (name: string): Uint8Array => {
  const bytes = utf8.encode(name);
  return Uint8Array.of(0x60 | bytes.length, ...bytes); // text(len < 24)
};
// map(5) "op" "messages" then "feed" or "sub" (the frame's address)
const HEADS = {
  feed: Uint8Array.of(0xa5, ...key("op"), ...key("messages"), ...key("feed")),
  sub: Uint8Array.of(0xa5, ...key("op"), ...key("messages"), ...key("sub")),
};
/** Whom a `messages` frame is for: every subscriber attached to a feed, or one subscription. */
export type MessagesAddress = keyof typeof HEADS;
const TOPIC = key("topic");
const PARTITION = key("partition");
const RECORDS = key("records");
const OFFSET = key("offset");
const TIMESTAMP = key("timestamp");
const KEY = key("key");
const VALUE = key("value");
const HEADERS = key("headers");
/** Most bytes a CBOR head (type + length/uint, float64 beyond 2^32) takes. */
const HEAD_MAX = 9;
/** Bytes of a CBOR head for `n` (as writeCborUint writes it). */
const headSize = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9);
const bytesSize = (b: Uint8Array | null): number => (b === null ? 1 : headSize(b.length) + b.length);
const RECORD_KEYS = 1 + OFFSET.length + TIMESTAMP.length + KEY.length + VALUE.length;

const isUint = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

/**
 * Encodes a `messages` frame {op, feed | sub, topic, partition, records} of
 * `records[from..to)` as CBOR without the generic codec: once per live batch for a feed
 * (the hottest encode after acks), and per run of records for one subscription on the JS
 * path (catch-up, partial credit, key filters). Decodes to the same frame as `encodeFrame`
 * (key order aside). Null when a record holds something this encoder does not write as
 * cbor-x would (a negative or fractional offset/timestamp): the caller then uses `encodeFrame`.
 */
export function encodeMessagesCbor(id: number, topic: string, partition: number, records: readonly LogRecord[], from: number, to: number, address: MessagesAddress = "feed"): Uint8Array | null {
  const prefix = prefixOf(address, id, topic, partition);
  let size = prefix.length + HEAD_MAX;
  for (let i = from; i < to; i++) {
    const r = records[i]!;
    if (!isUint(r.offset) || !isUint(r.timestamp)) return null;
    size += RECORD_KEYS + headSize(r.offset) + headSize(r.timestamp) + bytesSize(r.key) + bytesSize(r.value);
    let headers = false;
    for (const name in r.headers) {
      headers = true;
      size += HEAD_MAX + 3 * name.length + bytesSize(r.headers[name]!);
    }
    if (headers) size += HEADERS.length + HEAD_MAX;
  }
  const out = Buffer.allocUnsafe(size);
  out.set(prefix, 0);
  let at = writeHead(out, prefix.length, 0x80, to - from);
  for (let i = from; i < to; i++) {
    const r = records[i]!;
    let headerCount = 0;
    for (const _ in r.headers) headerCount++;
    out[at++] = headerCount > 0 ? 0xa5 : 0xa4;
    out.set(OFFSET, at);
    at = writeCborUint(out, at + OFFSET.length, r.offset);
    out.set(TIMESTAMP, at);
    at = writeCborUint(out, at + TIMESTAMP.length, r.timestamp);
    out.set(KEY, at);
    at = writeBytes(out, at + KEY.length, r.key);
    out.set(VALUE, at);
    at = writeBytes(out, at + VALUE.length, r.value);
    if (headerCount > 0) {
      out.set(HEADERS, at);
      at = writeHead(out, at + HEADERS.length, 0xa0, headerCount);
      for (const name in r.headers) {
        at = writeText(out, at, name, Buffer.byteLength(name));
        at = writeBytes(out, at, r.headers[name]!);
      }
    }
  }
  return out.subarray(0, at);
}

/**
 * The frame's bytes before the records array: map head, op, address and id, topic,
 * partition, the "records" key. The same for every batch of a feed (or subscription), so
 * the last one is kept (the topic is not encoded again per batch).
 */
function prefixOf(address: MessagesAddress, id: number, topic: string, partition: number): Uint8Array {
  const last = lastPrefix;
  if (last.id === id && last.address === address && last.partition === partition && last.topic === topic) return last.bytes;
  const HEAD = HEADS[address];
  const topicBytes = Buffer.byteLength(topic);
  const out = Buffer.allocUnsafe(HEAD.length + HEAD_MAX + TOPIC.length + HEAD_MAX + topicBytes + PARTITION.length + HEAD_MAX + RECORDS.length);
  out.set(HEAD, 0);
  let at = writeCborUint(out, HEAD.length, id);
  out.set(TOPIC, at);
  at = writeText(out, at + TOPIC.length, topic, topicBytes);
  out.set(PARTITION, at);
  at = writeCborUint(out, at + PARTITION.length, partition);
  out.set(RECORDS, at);
  lastPrefix = { address, id, topic, partition, bytes: Uint8Array.prototype.slice.call(out, 0, at + RECORDS.length) };
  return lastPrefix.bytes;
}
let lastPrefix: { address: MessagesAddress | ""; id: number; topic: string; partition: number; bytes: Uint8Array } = { address: "", id: -1, topic: "", partition: -1, bytes: new Uint8Array(0) };

/** A head of major type `major` (0x80 array, 0xa0 map, …) with length `n`. */
function writeHead(out: Uint8Array, at: number, major: number, n: number): number {
  const end = writeCborUint(out, at, n);
  out[at] = out[at]! | major;
  return end;
}

function writeText(out: Buffer, at: number, text: string, bytes: number): number {
  at = writeHead(out, at, 0x60, bytes);
  return at + out.write(text, at, bytes, "utf8");
}

function writeBytes(out: Uint8Array, at: number, bytes: Uint8Array | null): number {
  if (bytes === null) {
    out[at] = 0xf6;
    return at + 1;
  }
  at = writeHead(out, at, 0x40, bytes.length);
  out.set(bytes, at);
  return at + bytes.length;
}
