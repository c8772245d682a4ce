/**
 * Record batch codec of the file engine: the on-disk (and in-cache) format of one append.
 *
 * A segment file is a plain concatenation of batches. All integers are big-endian.
 *
 * ```
 * offset size  field
 *   0     4    length            bytes that follow this field (whole batch = 4 + length)
 *   4     4    crc               CRC32C (Castagnoli) of bytes [8, 4 + length)
 *   8     1    magic             BATCH_MAGIC (2); anything else is corrupt
 *   9     1    attributes        0 (reserved: compression, transactional, ...)
 *  10     2    reserved          0
 *  12     4    recordCount       >= 1
 *  16     8    baseOffset        u64 (hi u32, lo u32); record i has offset baseOffset + i
 *  24     8    firstTimestamp    i64 ms (hi i32, lo u32): timestamp of record 0
 *  32     8    maxTimestamp      i64 ms: largest record timestamp in the batch
 *  40     ...  records           recordCount times:
 *
 *   varint   timestampDelta      zigzag(record.timestamp - firstTimestamp)
 *   varint   keyLength + 1       0 = null key; 1 = empty key
 *   bytes    key
 *   varint   valueLength + 1     0 = null value; 1 = empty value
 *   bytes    value
 *   varint   headerCount
 *   headerCount times:
 *     varint nameLength, bytes name (UTF-8), varint valueLength, bytes value
 * ```
 *
 * Varints are unsigned LEB128 (7 bits per byte, low group first), up to 2^53.
 *
 * Decoding never trusts a length: the CRC is checked first, then every length is bounded by
 * the batch, and the records must consume the batch exactly. A mismatch of any kind is a
 * CORRUPT_RECORD. `checkBatch` tells a torn batch (the buffer ends before the batch does:
 * what a crash mid-write leaves at the end of a file) from a corrupt one.
 */
import { crc32c } from "@node-rs/crc32";
import { TributaryError } from "../../errors.ts";
import type { LogRecord, RecordHeaders, RecordInput } from "../log-engine.ts";

export const BATCH_MAGIC = 2;
export const BATCH_HEADER_BYTES = 40;
/** Offset of the first byte covered by the CRC. */
const CRC_START = 8;
const TWO_32 = 4294967296;

/** Header fields of a batch, read without decoding its records. */
export interface BatchHeader {
  /** Total size of the batch on disk (4 + length field). */
  size: number;
  baseOffset: number;
  recordCount: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

export type BatchCheck =
  | { status: "ok"; header: BatchHeader }
  /** The buffer ends before the batch does (a partial write at the end of a file). */
  | { status: "torn" }
  | { status: "corrupt"; reason: string };

const utf8 = new TextDecoder("utf-8", { fatal: true });

function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  n = Math.floor(n / 0x10000000);
  while (n > 0) {
    size++;
    n = Math.floor(n / 0x80);
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

const zigzag = (n: number): number => (n >= 0 ? n * 2 : -n * 2 - 1);
const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

function writeI64(buf: Buffer, pos: number, n: number): void {
  const hi = Math.floor(n / TWO_32);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(n - hi * TWO_32, pos + 4);
}

function readI64(buf: Uint8Array, pos: number): number {
  const hi = ((buf[pos]! << 24) | (buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!) >> 0;
  return hi * TWO_32 + readU32(buf, pos + 4);
}

export function readU32(buf: Uint8Array, pos: number): number {
  return ((buf[pos]! << 24) | (buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!) >>> 0;
}

function corrupt(reason: string, context: Record<string, unknown> = {}): TributaryError {
  return new TributaryError("CORRUPT_RECORD", `corrupt record batch: ${reason}`, context);
}

/** Header names are encoded once per distinct name and reused. */
const headerNameCache = new Map<string, Buffer>();
function headerName(name: string): Buffer {
  let b = headerNameCache.get(name);
  if (!b) {
    b = Buffer.from(name, "utf8");
    if (headerNameCache.size < 1024) headerNameCache.set(name, b);
  }
  return b;
}

/** What `measureBatch` learns about a batch before it is encoded. */
export interface BatchMeasure {
  /** Encoded size in bytes. */
  size: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

function badTimestamp(i: number, ts: unknown): TributaryError {
  return new TributaryError("BAD_REQUEST", `record ${i}: timestamp must be a non-negative integer (ms), got ${String(ts)}`);
}

/**
 * Validates the records and computes the encoded size and timestamps of the batch.
 * Records without a timestamp get `now`. Throws BAD_REQUEST for records of the wrong shape.
 */
export function measureBatch(records: readonly RecordInput[], now: number): BatchMeasure {
  let size = BATCH_HEADER_BYTES;
  const r0 = records[0]!;
  const first = r0.timestamp ?? now;
  let max = first;
  let defaulted = false;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r === null || typeof r !== "object") throw new TributaryError("BAD_REQUEST", `record ${i} must be an object`);
    const key = r.key;
    const value = r.value;
    const ts = r.timestamp;
    if (ts === undefined) {
      size += varintSize(zigzag(now - first));
      defaulted = true;
    } else {
      if (!Number.isSafeInteger(ts) || ts < 0) throw badTimestamp(i, ts);
      size += varintSize(zigzag(ts - first));
      if (ts > max) max = ts;
    }
    if (key === null) size += 1;
    else if (key instanceof Uint8Array) size += varintSize(key.length + 1) + key.length;
    else throw new TributaryError("BAD_REQUEST", `record ${i}: key must be a Uint8Array or null`);
    if (value === null) size += 1;
    else if (value instanceof Uint8Array) size += varintSize(value.length + 1) + value.length;
    else throw new TributaryError("BAD_REQUEST", `record ${i}: value must be a Uint8Array or null`);
    const headers = r.headers;
    if (headers === undefined) {
      size += 1;
      continue;
    }
    if (headers === null || typeof headers !== "object") throw new TributaryError("BAD_REQUEST", `record ${i}: headers must be an object`);
    let count = 0;
    for (const name of Object.keys(headers)) {
      const hv = headers[name];
      if (!(hv instanceof Uint8Array)) throw new TributaryError("BAD_REQUEST", `record ${i}: header ${JSON.stringify(name)} must be a Uint8Array`);
      const nb = headerName(name).length;
      size += varintSize(nb) + nb + varintSize(hv.length) + hv.length;
      count++;
    }
    size += varintSize(count);
  }
  if (defaulted && now > max) max = now;
  return { size, firstTimestamp: first, maxTimestamp: max };
}

/**
 * Encodes a batch (measured by `measureBatch` with the same `now`) into a new buffer of
 * exactly `measure.size` bytes. The CRC is computed last, over everything after it.
 */
export function encodeBatch(records: readonly RecordInput[], now: number, baseOffset: number, measure: BatchMeasure): Buffer {
  const size = measure.size;
  const buf = Buffer.allocUnsafe(size);
  buf.writeUInt32BE(size - 4, 0);
  buf[8] = BATCH_MAGIC;
  buf[9] = 0;
  buf[10] = 0;
  buf[11] = 0;
  buf.writeUInt32BE(records.length, 12);
  writeI64(buf, 16, baseOffset);
  const first = measure.firstTimestamp;
  writeI64(buf, 24, first);
  writeI64(buf, 32, measure.maxTimestamp);
  let pos = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const delta = (r.timestamp ?? now) - first;
    if (delta === 0) buf[pos++] = 0;
    else pos = writeVarint(buf, pos, zigzag(delta));
    const key = r.key;
    if (key === null) buf[pos++] = 0;
    else {
      const n = key.length + 1;
      if (n < 0x80) buf[pos++] = n;
      else pos = writeVarint(buf, pos, n);
      buf.set(key, pos);
      pos += key.length;
    }
    const value = r.value;
    if (value === null) buf[pos++] = 0;
    else {
      const n = value.length + 1;
      if (n < 0x80) buf[pos++] = n;
      else pos = writeVarint(buf, pos, n);
      buf.set(value, pos);
      pos += value.length;
    }
    const headers = r.headers;
    if (headers === undefined) {
      buf[pos++] = 0;
      continue;
    }
    const names = Object.keys(headers);
    pos = writeVarint(buf, pos, names.length);
    for (const name of names) {
      const nb = headerName(name);
      const hv = headers[name]!;
      pos = writeVarint(buf, pos, nb.length);
      buf.set(nb, pos);
      pos += nb.length;
      pos = writeVarint(buf, pos, hv.length);
      buf.set(hv, pos);
      pos += hv.length;
    }
  }
  if (pos !== size) throw new TributaryError("INTERNAL", `batch encoder wrote ${pos} bytes, expected ${size}`);
  buf.writeUInt32BE(crc32c(buf.subarray(CRC_START)), 4);
  return buf;
}

/** Reads the header at `pos` without any check beyond bounds. Use `checkBatch` for trust. */
export function readBatchHeader(buf: Uint8Array, pos: number): BatchHeader {
  return {
    size: readU32(buf, pos) + 4,
    recordCount: readU32(buf, pos + 12),
    baseOffset: readU32(buf, pos + 16) * TWO_32 + readU32(buf, pos + 20),
    firstTimestamp: readI64(buf, pos + 24),
    maxTimestamp: readI64(buf, pos + 32),
  };
}

/**
 * Validates the batch starting at `pos` in `buf[pos, end)`: length bounds, CRC, magic.
 * `torn` means the bytes end before the batch does (or before its length field).
 */
export function checkBatch(buf: Uint8Array, pos: number, end: number = buf.length): BatchCheck {
  const avail = end - pos;
  if (avail < 4) return { status: "torn" };
  const length = readU32(buf, pos);
  if (length < BATCH_HEADER_BYTES - 4) return { status: "corrupt", reason: `length ${length} below the header size` };
  if (avail < length + 4) {
    // Not enough bytes: torn if what is there is a plausible prefix of a batch.
    if (avail >= 9 && buf[pos + 8] !== BATCH_MAGIC) return { status: "corrupt", reason: `bad magic ${buf[pos + 8]}` };
    return { status: "torn" };
  }
  const stored = readU32(buf, pos + 4);
  const actual = crc32c(buf.subarray(pos + CRC_START, pos + 4 + length));
  if (stored !== actual) return { status: "corrupt", reason: `CRC mismatch (stored ${stored}, computed ${actual})` };
  if (buf[pos + 8] !== BATCH_MAGIC) return { status: "corrupt", reason: `bad magic ${buf[pos + 8]}` };
  const header = readBatchHeader(buf, pos);
  if (header.recordCount < 1) return { status: "corrupt", reason: "empty batch" };
  // Every record takes at least 4 bytes (ts, key, value, header count).
  if (header.recordCount * 4 > length + 4 - BATCH_HEADER_BYTES) return { status: "corrupt", reason: "record count exceeds batch size" };
  return { status: "ok", header };
}

/** Collects decoded records; stops once `maxRecords` or (after one record) `maxBytes` is reached. */
export interface DecodeSink {
  records: LogRecord[];
  maxRecords: number;
  maxBytes: number;
  bytes: number;
}

/**
 * Decodes the records of a batch (already CRC-checked by `checkBatch`) whose offsets are
 * >= `fromOffset` into `sink`. Returns false once the sink is full. Throws CORRUPT_RECORD if
 * the record structure does not match the header (impossible unless the CRC collided or the
 * writer was buggy).
 */
export function decodeRecordsInto(buf: Uint8Array, pos: number, header: BatchHeader, fromOffset: number, sink: DecodeSink): boolean {
  const end = pos + header.size;
  const ab = buf.buffer;
  const abOffset = buf.byteOffset;
  const first = header.firstTimestamp;
  const out = sink.records;
  let p = pos + BATCH_HEADER_BYTES;
  const count = header.recordCount;
  for (let i = 0; i < count; i++) {
    // --- timestamp delta
    let b = buf[p++]!;
    let ts = first;
    if (b !== 0) {
      let z = b & 0x7f;
      let mul = 0x80;
      while (b & 0x80) {
        if (p >= end) throw corrupt("varint past end of batch");
        b = buf[p++]!;
        z += (b & 0x7f) * mul;
        mul *= 0x80;
      }
      ts = first + unzigzag(z);
    }
    // --- key
    b = buf[p++]!;
    let n = b & 0x7f;
    let mul = 0x80;
    while (b & 0x80) {
      if (p >= end) throw corrupt("varint past end of batch");
      b = buf[p++]!;
      n += (b & 0x7f) * mul;
      mul *= 0x80;
    }
    let key: Uint8Array | null = null;
    if (n !== 0) {
      const len = n - 1;
      if (p + len > end) throw corrupt("key past end of batch");
      key = new Uint8Array(ab, abOffset + p, len);
      p += len;
    }
    // --- value
    b = buf[p++]!;
    n = b & 0x7f;
    mul = 0x80;
    while (b & 0x80) {
      if (p >= end) throw corrupt("varint past end of batch");
      b = buf[p++]!;
      n += (b & 0x7f) * mul;
      mul *= 0x80;
    }
    let value: Uint8Array | null = null;
    let recordBytes = 0;
    if (n !== 0) {
      const len = n - 1;
      if (p + len > end) throw corrupt("value past end of batch");
      value = new Uint8Array(ab, abOffset + p, len);
      p += len;
      recordBytes = len;
    }
    // --- headers
    if (p >= end) throw corrupt("record past end of batch");
    let headerCount = buf[p++]!;
    let headers: RecordHeaders;
    if (headerCount === 0) headers = {};
    else {
      if (headerCount & 0x80) {
        p--;
        headerCount = 0;
        mul = 1;
        do {
          if (p >= end) throw corrupt("varint past end of batch");
          b = buf[p++]!;
          headerCount += (b & 0x7f) * mul;
          mul *= 0x80;
        } while (b & 0x80);
      }
      headers = {};
      for (let h = 0; h < headerCount; h++) {
        const nameLen = readVarintChecked(buf, p, end);
        p = nameLen.next;
        if (p + nameLen.value > end) throw corrupt("header name past end of batch");
        let name: string;
        try {
          name = utf8.decode(new Uint8Array(ab, abOffset + p, nameLen.value));
        } catch (err) {
          throw corrupt("header name is not UTF-8", { cause: err });
        }
        p += nameLen.value;
        const valLen = readVarintChecked(buf, p, end);
        p = valLen.next;
        if (p + valLen.value > end) throw corrupt("header value past end of batch");
        const hv = new Uint8Array(ab, abOffset + p, valLen.value);
        if (name === "__proto__") Object.defineProperty(headers, name, { value: hv, enumerable: true, writable: true, configurable: true });
        else headers[name] = hv;
        p += valLen.value;
        recordBytes += nameLen.value + valLen.value;
      }
    }
    if (p > end) throw corrupt("record past end of batch");
    const offset = header.baseOffset + i;
    if (offset < fromOffset) continue;
    if (key !== null) recordBytes += key.length;
    if (sink.records.length > 0 && sink.bytes + recordBytes > sink.maxBytes) return false;
    out.push({ offset, timestamp: ts, key, value, headers });
    sink.bytes += recordBytes;
    if (out.length >= sink.maxRecords) {
      // The rest of the batch is not decoded; its structure was covered by the CRC.
      return false;
    }
  }
  if (p !== end) throw corrupt(`records end at ${p - pos}, batch is ${header.size} bytes`);
  return true;
}

function readVarintChecked(buf: Uint8Array, p: number, end: number): { value: number; next: number } {
  let value = 0;
  let mul = 1;
  let b: number;
  let steps = 0;
  do {
    if (p >= end || steps++ > 8) throw corrupt("bad varint");
    b = buf[p++]!;
    value += (b & 0x7f) * mul;
    mul *= 0x80;
  } while (b & 0x80);
  return { value, next: p };
}

/**
 * Decodes one whole batch at the start of `buf` (checks everything). Throws CORRUPT_RECORD
 * for a corrupt or torn buffer. Used by tests and tools; the read path uses
 * `checkBatch` + `decodeRecordsInto`.
 */
export function decodeBatch(buf: Uint8Array): { header: BatchHeader; records: LogRecord[] } {
  const check = checkBatch(buf, 0, buf.length);
  if (check.status === "torn") throw corrupt("torn batch (buffer ends before the batch)");
  if (check.status === "corrupt") throw corrupt(check.reason);
  if (check.header.size !== buf.length) throw corrupt(`trailing bytes after the batch (${buf.length - check.header.size})`);
  const sink: DecodeSink = { records: [], maxRecords: Infinity, maxBytes: Infinity, bytes: 0 };
  decodeRecordsInto(buf, 0, check.header, 0, sink);
  if (sink.records.length !== check.header.recordCount) throw corrupt("record count mismatch");
  return { header: check.header, records: sink.records };
}
