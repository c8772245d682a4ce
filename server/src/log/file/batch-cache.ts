/**
 * The most recently appended batches of one partition, newest last. Readers at the tail
 * (the common case: live subscribers) decode from here instead of reading the segment
 * file. Bounded by bytes; the oldest batches are dropped first. Appends are contiguous,
 * so the cache always covers [firstOffset, end offset).
 *
 * Batches are copied into slabs (SLAB_BYTES each; a larger batch gets a slab of its own)
 * and indexed by typed arrays (base offset, slab, position): no object per batch. One
 * Buffer and one header object per batch meant thousands of small objects per partition
 * that lived long enough to reach the old generation and then died, the GC's worst case:
 * with 15 partitions' caches full, a paced 50,000 msg/s run saw old-generation GC steps of
 * 5–15 ms and a p99 delivery latency of 9–17 ms, against 1.7–2.1 ms with small caches.
 * Decoded keys and values are views into a slab: a record kept alive keeps its slab alive
 * (at most SLAB_BYTES, or its own batch's bytes).
 */
import { decodeRecordsInto, readBatchHeader, type DecodeSink } from "./batch-codec.ts";

export const SLAB_BYTES = 32 * 1024;

export class BatchCache {
  readonly #maxBytes: number;
  readonly #slabBytes: number;
  /** Slabs, oldest first: slab number `#firstSlab + i` is `#slabs[i]`. */
  #slabs: Buffer[] = [];
  #firstSlab = 0;
  /** Bytes written into the newest slab. */
  #used = 0;
  /** Sum of the slabs' lengths: the memory the cache holds. */
  #bytes = 0;
  /** Cached batches are indexes `#head .. #tail - 1` of these arrays. */
  #bases = new Float64Array(64);
  #slabOf = new Float64Array(64);
  #pos = new Int32Array(64);
  #head = 0;
  #tail = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
    this.#slabBytes = Math.max(1, Math.min(SLAB_BYTES, maxBytes));
  }

  /** First offset the cache can serve, or Infinity when empty. */
  get firstOffset(): number {
    return this.#head < this.#tail ? this.#bases[this.#head]! : Infinity;
  }

  /** Bytes held (whole slabs): at most the limit, or one slab when a single batch is larger. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds the encoded batch `buf` whose first offset is `baseOffset` (the next offset after the cached ones). */
  add(buf: Uint8Array, baseOffset: number): void {
    if (this.#maxBytes <= 0) return;
    let slab = this.#slabs[this.#slabs.length - 1];
    if (slab === undefined || this.#used + buf.length > slab.length) {
      slab = Buffer.allocUnsafeSlow(Math.max(this.#slabBytes, buf.length));
      this.#slabs.push(slab);
      this.#bytes += slab.length;
      this.#used = 0;
      while (this.#bytes > this.#maxBytes && this.#slabs.length > 1) this.#dropOldestSlab();
    }
    slab.set(buf, this.#used);
    if (this.#tail === this.#bases.length) this.#makeRoom();
    this.#bases[this.#tail] = baseOffset;
    this.#slabOf[this.#tail] = this.#firstSlab + this.#slabs.length - 1;
    this.#pos[this.#tail] = this.#used;
    this.#tail++;
    this.#used += buf.length;
  }

  clear(): void {
    this.#firstSlab += this.#slabs.length;
    this.#slabs = [];
    this.#used = 0;
    this.#bytes = 0;
    this.#head = 0;
    this.#tail = 0;
  }

  /** Decodes records from `fromOffset` (>= firstOffset) into the sink. */
  read(fromOffset: number, sink: DecodeSink): void {
    let lo = this.#head;
    let hi = this.#tail - 1;
    let i = this.#head;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#bases[mid]! <= fromOffset) {
        i = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (; i < this.#tail; i++) {
      const slab = this.#slabs[this.#slabOf[i]! - this.#firstSlab]!;
      const pos = this.#pos[i]!;
      if (!decodeRecordsInto(slab, pos, readBatchHeader(slab, pos), fromOffset, sink)) return;
    }
  }

  /** Forgets the batches below `offset` (a batch boundary: the first offset of a segment), after compaction rewrote them. */
  dropBefore(offset: number): void {
    while (this.#head < this.#tail && this.#bases[this.#head]! < offset) this.#head++;
    if (this.#head === this.#tail) {
      this.clear();
      return;
    }
    while (this.#firstSlab < this.#slabOf[this.#head]!) this.#dropOldestSlab();
  }

  #dropOldestSlab(): void {
    this.#bytes -= this.#slabs.shift()!.length;
    this.#firstSlab++;
    while (this.#head < this.#tail && this.#slabOf[this.#head]! < this.#firstSlab) this.#head++;
  }

  /** The index arrays are full: shift the live part down, or double them when more than half is live. */
  #makeRoom(): void {
    const live = this.#tail - this.#head;
    if (live * 2 <= this.#bases.length) {
      this.#bases.copyWithin(0, this.#head, this.#tail);
      this.#slabOf.copyWithin(0, this.#head, this.#tail);
      this.#pos.copyWithin(0, this.#head, this.#tail);
    } else {
      const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a.subarray(this.#head, this.#tail));
        return b;
      };
      this.#bases = grow(this.#bases, (n) => new Float64Array(n));
      this.#slabOf = grow(this.#slabOf, (n) => new Float64Array(n));
      this.#pos = grow(this.#pos, (n) => new Int32Array(n));
    }
    this.#head = 0;
    this.#tail = live;
  }
}
