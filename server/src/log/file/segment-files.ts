/**
 * A bounded LRU of open segment files, per engine: so the number of partitions (and of
 * segments) is not the number of file descriptors. A segment opens its file when it is
 * read or written and it is not open; past `max` open files the least recently used
 * *evictable* one is closed:
 * - a segment with an fdatasync in flight is never closed (its round owns the fd);
 * - a segment with writes not yet fdatasynced (dirty) is closed only when the engine's
 *   fsync policy is "never" (the page cache keeps the data, a later flush fsyncs the file
 *   through a new descriptor); with "always" or an interval it stays open until its sync
 *   round, after which the LRU is trimmed again. So the bound can be passed for a moment by
 *   the partitions written within one fsync interval.
 * Reopening costs an open(2) (~5 us here); a segment read again soon stays open.
 */
import type { Segment } from "./segment.ts";

export interface SegmentFilesStats {
  open: number;
  max: number;
  /** Files closed to stay within `max`. */
  evictions: number;
  /** Files opened again after an eviction. */
  reopens: number;
}

export class SegmentFiles {
  readonly max: number;
  readonly evictDirty: boolean;
  /** Open segments, least recently used first (Map insertion order). */
  readonly #open = new Map<Segment, true>();
  #evictions = 0;
  #reopens = 0;

  constructor(max: number, evictDirty: boolean) {
    this.max = max;
    this.evictDirty = evictDirty;
  }

  /** `segment` was used: most recently used now. */
  touch(segment: Segment): void {
    this.#open.delete(segment);
    this.#open.set(segment, true);
  }

  /** `segment` opened its file (`reopened`: after an eviction); closes others past `max`. */
  opened(segment: Segment, reopened: boolean): void {
    if (reopened) this.#reopens++;
    this.#open.set(segment, true);
    this.trim(segment);
  }

  /** `segment` closed its file for good (closed, deleted). */
  closed(segment: Segment): void {
    this.#open.delete(segment);
  }

  /** Closes least recently used evictable files (never `keep`, the one being used) while more than `max` are open. */
  trim(keep?: Segment): void {
    if (this.#open.size <= this.max) return;
    for (const segment of this.#open.keys()) {
      if (this.#open.size <= this.max) return;
      if (segment === keep || !segment.evictable(this.evictDirty)) continue;
      this.#open.delete(segment);
      segment.evict();
      this.#evictions++;
    }
  }

  stats(): SegmentFilesStats {
    return { open: this.#open.size, max: this.max, evictions: this.#evictions, reopens: this.#reopens };
  }
}
