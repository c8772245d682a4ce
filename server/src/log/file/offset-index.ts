/**
 * Sparse offset index of one segment: (relative offset, file position) pairs of batch starts,
 * one every `indexIntervalBytes` of log. Kept in memory (8 bytes per entry); written to
 * `<base>.index` when the segment is sealed or the engine closes.
 *
 * File format: entries of 8 bytes, big-endian u32 relativeOffset then u32 position, sorted
 * by both. The index is derived data: if the file is missing or does not pass `load`'s
 * checks, the segment is scanned and the index rebuilt.
 */
export class OffsetIndex {
  #rel: Uint32Array;
  #pos: Uint32Array;
  #count = 0;

  constructor(capacity = 64) {
    this.#rel = new Uint32Array(capacity);
    this.#pos = new Uint32Array(capacity);
  }

  get count(): number {
    return this.#count;
  }

  relativeOffsetAt(i: number): number {
    return this.#rel[i]!;
  }

  positionAt(i: number): number {
    return this.#pos[i]!;
  }

  append(relativeOffset: number, position: number): void {
    if (this.#count === this.#rel.length) {
      const rel = new Uint32Array(this.#rel.length * 2);
      rel.set(this.#rel);
      const pos = new Uint32Array(this.#pos.length * 2);
      pos.set(this.#pos);
      this.#rel = rel;
      this.#pos = pos;
    }
    this.#rel[this.#count] = relativeOffset;
    this.#pos[this.#count] = position;
    this.#count++;
  }

  /** Index of the last entry with relativeOffset <= `relativeOffset`, or -1. */
  floorEntry(relativeOffset: number): number {
    let lo = 0;
    let hi = this.#count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#rel[mid]! <= relativeOffset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** File position of the batch to start scanning from for `relativeOffset` (0 if none). */
  lookup(relativeOffset: number): number {
    const i = this.floorEntry(relativeOffset);
    return i < 0 ? 0 : this.#pos[i]!;
  }

  /** Drops entries at or past `position` (after a truncation). */
  truncateToPosition(position: number): void {
    while (this.#count > 0 && this.#pos[this.#count - 1]! >= position) this.#count--;
  }

  serialize(): Buffer {
    const buf = Buffer.allocUnsafe(this.#count * 8);
    for (let i = 0; i < this.#count; i++) {
      buf.writeUInt32BE(this.#rel[i]!, i * 8);
      buf.writeUInt32BE(this.#pos[i]!, i * 8 + 4);
    }
    return buf;
  }

  /**
   * Parses an index file; null if it is not plausible for a segment of `segmentSize` bytes
   * holding `recordCount` records (length not a multiple of 8, entries not increasing, a
   * position past the end, first entry not at 0).
   */
  static load(buf: Buffer, segmentSize: number, recordCount: number): OffsetIndex | null {
    if (buf.length % 8 !== 0) return null;
    const n = buf.length / 8;
    const index = new OffsetIndex(Math.max(64, n));
    for (let i = 0; i < n; i++) {
      const rel = buf.readUInt32BE(i * 8);
      const pos = buf.readUInt32BE(i * 8 + 4);
      if (i === 0 ? rel !== 0 || pos !== 0 : rel <= index.#rel[i - 1]! || pos <= index.#pos[i - 1]!) return null;
      if (pos >= segmentSize || rel >= recordCount) return null;
      index.append(rel, pos);
    }
    if (segmentSize > 0 && n === 0) return null;
    return index;
  }
}
