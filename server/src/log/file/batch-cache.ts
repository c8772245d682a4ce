/**
 * The most recently appended batches of one partition, as encoded buffers, newest last.
 * Readers at the tail (the common case: live subscribers) decode from here instead of
 * reading the segment file. Bounded by bytes; the oldest batches are evicted first.
 * Appends are contiguous, so the cache always covers [firstOffset, end offset).
 */
import { decodeRecordsInto, type BatchHeader, type DecodeSink } from "./batch-codec.ts";

export class BatchCache {
  readonly #maxBytes: number;
  #bases: number[] = [];
  #bufs: Buffer[] = [];
  #headers: BatchHeader[] = [];
  #head = 0;
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** First offset the cache can serve, or Infinity when empty. */
  get firstOffset(): number {
    return this.#head < this.#bases.length ? this.#bases[this.#head]! : Infinity;
  }

  add(buf: Buffer, header: BatchHeader): void {
    if (this.#maxBytes <= 0) return;
    this.#bases.push(header.baseOffset);
    this.#bufs.push(buf);
    this.#headers.push(header);
    this.#bytes += buf.length;
    while (this.#bytes > this.#maxBytes && this.#head < this.#bases.length - 1) {
      this.#bytes -= this.#bufs[this.#head]!.length;
      this.#bufs[this.#head] = undefined as unknown as Buffer;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#bases.length) this.#compact();
  }

  clear(): void {
    this.#bases = [];
    this.#bufs = [];
    this.#headers = [];
    this.#head = 0;
    this.#bytes = 0;
  }

  /** Decodes records from `fromOffset` (>= firstOffset) into the sink. */
  read(fromOffset: number, sink: DecodeSink): void {
    let lo = this.#head;
    let hi = this.#bases.length - 1;
    let i = this.#head;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#bases[mid]! <= fromOffset) {
        i = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (; i < this.#bases.length; i++) {
      if (!decodeRecordsInto(this.#bufs[i]!, 0, this.#headers[i]!, fromOffset, sink)) return;
    }
  }

  /** Forgets the batches below `offset` (a batch boundary: the first offset of a segment), after compaction rewrote them. */
  dropBefore(offset: number): void {
    while (this.#head < this.#bases.length && this.#bases[this.#head]! < offset) {
      this.#bytes -= this.#bufs[this.#head]!.length;
      this.#bufs[this.#head] = undefined as unknown as Buffer;
      this.#head++;
    }
    if (this.#head > 0 && this.#head === this.#bases.length) this.clear();
  }

  #compact(): void {
    this.#bases = this.#bases.slice(this.#head);
    this.#bufs = this.#bufs.slice(this.#head);
    this.#headers = this.#headers.slice(this.#head);
    this.#head = 0;
  }
}
