/**
 * Time index of one segment, for `offsetForTimestamp`.
 *
 * An entry (T, r) says: every record of the segment with relative offset < r has a timestamp
 * <= T. Entries are added at the same batch starts as the offset index (so the position of
 * r is an exact offset-index hit), and a final entry (segment max timestamp, relative end
 * offset) is added when the segment is sealed. Because T is the running maximum, the lookup
 * is right even when producers send timestamps out of order: the first record with
 * timestamp >= t cannot be before the last entry whose T < t.
 *
 * File `<base>.timeindex`: entries of 12 bytes, big-endian i64 timestamp (hi i32, lo u32)
 * then u32 relative offset. Derived data, rebuilt by a scan when implausible.
 */
const TWO_32 = 4294967296;

export class TimeIndex {
  #ts: Float64Array;
  #rel: Uint32Array;
  #count = 0;

  constructor(capacity = 64) {
    this.#ts = new Float64Array(capacity);
    this.#rel = new Uint32Array(capacity);
  }

  get count(): number {
    return this.#count;
  }

  timestampAt(i: number): number {
    return this.#ts[i]!;
  }

  relativeOffsetAt(i: number): number {
    return this.#rel[i]!;
  }

  append(maxTimestampBefore: number, relativeOffset: number): void {
    if (this.#count === this.#ts.length) {
      const ts = new Float64Array(this.#ts.length * 2);
      ts.set(this.#ts);
      const rel = new Uint32Array(this.#rel.length * 2);
      rel.set(this.#rel);
      this.#ts = ts;
      this.#rel = rel;
    }
    this.#ts[this.#count] = maxTimestampBefore;
    this.#rel[this.#count] = relativeOffset;
    this.#count++;
  }

  /** Relative offset to start scanning from to find the first record with timestamp >= t. */
  scanStart(t: number): number {
    // Last entry with T < t; entries are non-decreasing in T.
    let lo = 0;
    let hi = this.#count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#ts[mid]! < t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? 0 : this.#rel[found]!;
  }

  /** Drops entries that point at or past `relativeOffset` (after a truncation). */
  truncateToRelativeOffset(relativeOffset: number): void {
    while (this.#count > 0 && this.#rel[this.#count - 1]! >= relativeOffset) this.#count--;
  }

  serialize(): Buffer {
    const buf = Buffer.allocUnsafe(this.#count * 12);
    for (let i = 0; i < this.#count; i++) {
      const t = this.#ts[i]!;
      const hi = Math.floor(t / TWO_32);
      buf.writeInt32BE(hi, i * 12);
      buf.writeUInt32BE(t - hi * TWO_32, i * 12 + 4);
      buf.writeUInt32BE(this.#rel[i]!, i * 12 + 8);
    }
    return buf;
  }

  /**
   * Parses a sealed segment's time index; null unless it is plausible and ends with the
   * final entry for `recordCount` records (whose T is the segment's max timestamp).
   */
  static load(buf: Buffer, recordCount: number): TimeIndex | null {
    if (buf.length % 12 !== 0 || buf.length === 0) return null;
    const n = buf.length / 12;
    const index = new TimeIndex(Math.max(64, n));
    for (let i = 0; i < n; i++) {
      const t = buf.readInt32BE(i * 12) * TWO_32 + buf.readUInt32BE(i * 12 + 4);
      const rel = buf.readUInt32BE(i * 12 + 8);
      if (i > 0 && (t < index.#ts[i - 1]! || rel <= index.#rel[i - 1]!)) return null;
      if (rel > recordCount) return null;
      index.append(t, rel);
    }
    if (index.#rel[n - 1] !== recordCount) return null;
    return index;
  }
}
