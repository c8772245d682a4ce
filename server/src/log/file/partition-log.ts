/**
 * One partition of the file engine: its segments (oldest first, the last one active), the
 * cache of recent batches, and its group commit.
 *
 * Appends are synchronous up to the write into the page cache, so each append is atomic
 * and ordered by the event loop: no lock is needed, and a caller's appends get offsets in
 * the order the caller issued them. Durability (fdatasync) is asynchronous and shared by
 * every waiter of a round (`GroupCommit`).
 */
import fs from "node:fs";
import path from "node:path";
import { TributaryError } from "../../errors.ts";
import type { AppendResult, LogRecord, RecordInput } from "../log-engine.ts";
import { BatchCache } from "./batch-cache.ts";
import { encodeBatch, measureBatch, type DecodeSink } from "./batch-codec.ts";
import { GroupCommit } from "./group-commit.ts";
import { recoverCleanerLeftovers } from "./log-cleaner.ts";
import { openSealedSegment, recoverActiveSegment } from "./segment-recovery.ts";
import { INDEX_SUFFIX, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX, segmentFileName, type SyncFile } from "./segment.ts";
import type { SegmentFiles } from "./segment-files.ts";
import type { StorageHealth } from "./storage-health.ts";

export interface PartitionOptions {
  segmentBytes: number;
  segmentMs: number;
  maxBatchBytes: number;
  indexIntervalBytes: number;
  cacheBytes: number;
  /** Where failed fdatasyncs are reported (the engine's health). */
  health?: StorageHealth;
  /** fs.fdatasync unless a test injects a fault. */
  syncFile?: SyncFile;
  /** The engine's LRU of open segment files (none: every segment keeps its file open). */
  files?: SegmentFiles;
}

export interface RecoveryReport {
  position: number;
  kind: "torn" | "corrupt";
  reason: string;
  droppedBytes: number;
  segment: number;
}

const SEGMENT_NAME = /^(\d{20})\.(log|index|timeindex)$/;
/** Where compaction notes the offset below which the partition was cleaned (derived data: a lost file means one extra pass). */
const CLEANER_CHECKPOINT = "cleaner-checkpoint";
const MIN_CHUNK = 16 << 10;
const MAX_CHUNK = 4 << 20;

export class PartitionLog {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  epoch: string;
  readonly #options: PartitionOptions;
  readonly #segments: Segment[];
  readonly #cache: BatchCache;
  readonly #dirtySegments = new Set<Segment>();
  #dirDirty = false;
  /** Set after a failed fdatasync: the state of written data is unknown (fsyncgate). */
  #failed: TributaryError | null = null;
  readonly commit: GroupCommit;
  /**
   * Offsets may have gaps (the topic is compacted, or was): a sealed segment may end before
   * the next one's base, or be empty. Without it such a gap is reported as CORRUPT_RECORD.
   */
  allowGaps = false;
  /** A compaction pass is running on this partition (retention waits for the next round). */
  compacting = false;
  /** Offset below which the last compaction pass cleaned the log (0 = never cleaned). */
  #cleanedTo = 0;
  #gone = false;

  private constructor(topic: string, partition: number, dir: string, epoch: string, segments: Segment[], options: PartitionOptions) {
    this.topic = topic;
    this.partition = partition;
    this.dir = dir;
    this.epoch = epoch;
    this.#segments = segments;
    this.#options = options;
    if (options.files) for (const s of segments) s.attach(options.files);
    this.#cache = new BatchCache(options.cacheBytes);
    this.commit = new GroupCommit(() => this.#syncDirty());
    this.#cleanedTo = readCheckpoint(dir);
    if (this.#cleanedTo > 0) this.allowGaps = true;
  }

  /** Creates the directory and the first, empty segment. */
  static create(topic: string, partition: number, dir: string, epoch: string, options: PartitionOptions, now: number): PartitionLog {
    fs.mkdirSync(dir, { recursive: true });
    const log = new PartitionLog(topic, partition, dir, epoch, [Segment.create(dir, 0, now)], options);
    log.#dirDirty = true;
    return log;
  }

  /** Opens an existing partition directory, recovering its active segment. */
  static open(
    topic: string,
    partition: number,
    dir: string,
    epoch: string,
    options: PartitionOptions,
    now: number,
    allowGaps = false,
  ): { log: PartitionLog; recovery: RecoveryReport | null } {
    fs.mkdirSync(dir, { recursive: true });
    const bases = new Set<number>();
    recoverCleanerLeftovers(dir, fs.readdirSync(dir));
    const files = fs.readdirSync(dir);
    for (const f of files) {
      const m = SEGMENT_NAME.exec(f);
      if (m && m[2] === "log") bases.add(Number(m[1]));
      else if (f.endsWith(".tmp")) fs.rmSync(path.join(dir, f), { force: true });
    }
    for (const f of files) {
      const m = SEGMENT_NAME.exec(f);
      if (m && m[2] !== "log" && !bases.has(Number(m[1]))) fs.rmSync(path.join(dir, f), { force: true }); // orphan index
    }
    const sorted = [...bases].sort((a, b) => a - b);
    if (sorted.length === 0) return { log: PartitionLog.create(topic, partition, dir, epoch, options, now), recovery: null };
    const segments: Segment[] = [];
    const gaps = allowGaps || readCheckpoint(dir) > 0;
    for (let i = 0; i < sorted.length - 1; i++) {
      const sealed = openSealedSegment(dir, sorted[i]!, sorted[i + 1]!, options.indexIntervalBytes, gaps);
      if (options.files) sealed.attach(options.files); // bounded while opening too
      segments.push(sealed);
    }
    const last = sorted[sorted.length - 1]!;
    const active = recoverActiveSegment(dir, last, options.indexIntervalBytes, now);
    segments.push(active.segment);
    const log = new PartitionLog(topic, partition, dir, epoch, segments, options);
    if (gaps) log.allowGaps = true;
    return { log, recovery: active.truncated ? { ...active.truncated, segment: last } : null };
  }

  get earliestOffset(): number {
    return this.#segments[0]!.baseOffset;
  }

  get endOffset(): number {
    return this.#segments[this.#segments.length - 1]!.nextOffset;
  }

  /** Size past which the active segment rolls (the topic's segmentBytes or the engine's); changed by alterTopicConfig. */
  get segmentBytes(): number {
    return this.#options.segmentBytes;
  }

  set segmentBytes(bytes: number) {
    this.#options.segmentBytes = bytes;
  }

  get segmentCount(): number {
    return this.#segments.length;
  }

  /** The partition was abandoned (topic deleted) or closed. */
  get gone(): boolean {
    return this.#gone;
  }

  /** Makes a running compaction pass stop at its next yield (the engine is closing). */
  stopCompaction(): void {
    this.#gone = true;
  }

  /** The segments now, oldest first (a copy: the cleaner works on it while appends go on). */
  segmentsSnapshot(): Segment[] {
    return [...this.#segments];
  }

  /**
   * Share of the sealed segments' bytes written since the last compaction pass (0 when
   * there is no sealed segment): what `minCleanableDirtyRatio` is compared with.
   */
  get dirtyRatio(): number {
    let clean = 0;
    let dirty = 0;
    for (let i = 0; i < this.#segments.length - 1; i++) {
      const s = this.#segments[i]!;
      if (s.nextOffset <= this.#cleanedTo) clean += s.size;
      else dirty += s.size;
    }
    return clean + dirty === 0 ? 0 : dirty / (clean + dirty);
  }

  /** Records that a pass cleaned everything below `offset` (kept in a small file beside the segments). */
  markCleaned(offset: number): void {
    this.#cleanedTo = offset;
    this.allowGaps = true;
    writeCheckpoint(this.dir, offset);
  }

  /**
   * Replaces the consecutive sealed segments `group` by `cleaned` (the cleaner's output, at
   * `cleanedPath`, fdatasynced), crash-safely: rename to `swapPath` (the commit point,
   * recovered on open), remove the group's files, rename to the group's first base, write
   * the indexes, fsync the directory. Synchronous, so no read sees a partial swap.
   */
  swapCleaned(group: Segment[], cleaned: Segment, cleanedPath: string, swapPath: string): void {
    const first = this.#segments.indexOf(group[0]!);
    if (first < 0 || group.some((s, i) => this.#segments[first + i] !== s) || first + group.length >= this.#segments.length) {
      throw new TributaryError("INTERNAL", `compaction of ${this.topic}/${this.partition}: segments changed under the cleaner`, this.#context());
    }
    fs.renameSync(cleanedPath, swapPath);
    fsyncDirSync(this.dir);
    try {
      this.#finishSwap(group, cleaned, first, swapPath);
    } catch (err) {
      // Past the commit point: the swap file is recovered on the next open, but this process's view is unsure.
      this.#failed = new TributaryError("STORAGE_ERROR", `partition ${this.topic}/${this.partition}: finishing a compaction swap failed; restart to recover`, this.#context(), { cause: err });
      throw this.#failed;
    }
  }

  #finishSwap(group: Segment[], cleaned: Segment, first: number, swapPath: string): void {
    for (const s of group) {
      this.#dirtySegments.delete(s);
      s.close();
      for (const suffix of [INDEX_SUFFIX, TIME_INDEX_SUFFIX]) fs.rmSync(path.join(this.dir, segmentFileName(s.baseOffset, suffix)), { force: true });
      if (s !== group[0]) fs.rmSync(path.join(this.dir, segmentFileName(s.baseOffset, LOG_SUFFIX)), { force: true });
    }
    fs.renameSync(swapPath, path.join(this.dir, segmentFileName(cleaned.baseOffset, LOG_SUFFIX)));
    this.#segments.splice(first, group.length, cleaned);
    if (this.#options.files) cleaned.attach(this.#options.files);
    try {
      cleaned.writeIndexes();
    } catch (err) {
      // Derived data: rebuilt by a scan on the next open.
      void err;
    }
    fsyncDirSync(this.dir);
    this.#cache.dropBefore(this.#segments[this.#segments.length - 1]!.baseOffset);
  }

  /** Base offsets of the segments, oldest first (for tests and tools). */
  segmentBaseOffsets(): number[] {
    return this.#segments.map((s) => s.baseOffset);
  }

  get sizeBytes(): number {
    let total = 0;
    for (const s of this.#segments) total += s.size;
    return total;
  }

  get hasUnsyncedData(): boolean {
    return this.#dirtySegments.size > 0 || this.#dirDirty;
  }

  #context(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { topic: this.topic, partition: this.partition, ...extra };
  }

  /** Encodes and writes one batch (synchronously). Durability is the caller's business. */
  append(records: readonly RecordInput[], now: number): AppendResult {
    if (this.#failed) throw this.#failed;
    if (!Array.isArray(records) || records.length === 0) {
      throw new TributaryError("BAD_REQUEST", "append needs a non-empty array of records", this.#context());
    }
    const measure = measureBatch(records, now);
    if (measure.size > this.#options.maxBatchBytes) {
      throw new TributaryError("RECORD_TOO_LARGE", `batch of ${measure.size} bytes exceeds maxBatchBytes ${this.#options.maxBatchBytes}`, this.#context({ size: measure.size, max: this.#options.maxBatchBytes }));
    }
    let active = this.#segments[this.#segments.length - 1]!;
    if (active.size > 0 && (active.size + measure.size > this.#options.segmentBytes || now - active.createdAt >= this.#options.segmentMs)) {
      active = this.#roll(now);
    }
    if (active.size === 0) active.createdAt = now;
    const baseOffset = active.nextOffset;
    const buf = encodeBatch(records, now, baseOffset, measure);
    active.append(buf, records.length, measure.maxTimestamp, this.#options.indexIntervalBytes);
    this.#dirtySegments.add(active);
    this.#cache.add(buf, baseOffset);
    return { baseOffset, timestamp: measure.maxTimestamp };
  }

  #roll(now: number): Segment {
    const old = this.#segments[this.#segments.length - 1]!;
    old.seal();
    const next = Segment.create(this.dir, old.nextOffset, now);
    if (this.#options.files) next.attach(this.#options.files);
    this.#segments.push(next);
    this.#dirDirty = true;
    return next;
  }

  read(offset: number, maxRecords: number, maxBytes: number): LogRecord[] {
    const earliest = this.earliestOffset;
    const end = this.endOffset;
    if (!Number.isSafeInteger(offset) || offset < earliest || offset > end) {
      throw new TributaryError("OFFSET_OUT_OF_RANGE", `offset ${offset} is outside [${earliest}, ${end}] of ${this.topic}/${this.partition}`, this.#context({ offset, earliest, end }));
    }
    if (offset === end) return [];
    const sink: DecodeSink = { records: [], maxRecords, maxBytes, bytes: 0 };
    if (offset >= this.#cache.firstOffset) {
      this.#cache.read(offset, sink);
      return sink.records;
    }
    let i = this.#findSegment(offset);
    let from = offset;
    const active = this.#segments[this.#segments.length - 1]!;
    const avgRecord = active.recordCount > 0 ? active.size / active.recordCount : 256;
    const chunk = Math.floor(Math.max(MIN_CHUNK, Math.min(MAX_CHUNK, maxBytes, maxRecords * avgRecord * 1.25 + this.#options.indexIntervalBytes)));
    for (; i < this.#segments.length; i++) {
      const seg = this.#segments[i]!;
      const ctx = this.#context({ offset: from });
      const position = seg.offsetIndex.lookup(from - seg.baseOffset);
      const reached = seg.readRecords(position, from, sink, chunk, ctx);
      if (reached === null) break; // the sink is full
      // Reached the end of this segment: the next offset must be the next segment's base.
      const next = i + 1 < this.#segments.length ? this.#segments[i + 1]!.baseOffset : end;
      const got = reached < 0 ? from : reached;
      if (got < next && !this.allowGaps) {
        throw new TributaryError("CORRUPT_RECORD", `records ${got}..${next - 1} of ${this.topic}/${this.partition} are missing from segment ${seg.baseOffset}`, this.#context({ offset: got, segment: seg.baseOffset }));
      }
      from = next;
    }
    return sink.records;
  }

  /** Index of the segment holding `offset` (earliest <= offset < end). */
  #findSegment(offset: number): number {
    let lo = 0;
    let hi = this.#segments.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#segments[mid]!.baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  offsetForTimestamp(timestamp: number): number {
    for (const seg of this.#segments) {
      if (!(seg.maxTimestamp >= timestamp)) continue;
      const rel = seg.timeIndex.scanStart(timestamp);
      const position = seg.offsetIndex.lookup(rel);
      const found = seg.findTimestamp(position, timestamp, 256 << 10, this.#context({ timestamp }));
      if (found !== null) return found;
    }
    return this.endOffset;
  }

  /**
   * Deletes whole segments from the oldest on, never the active one, while the oldest is
   * expired by time (its max timestamp older than now - retentionMs) or the partition is
   * larger than retentionBytes. Returns the number of segments deleted.
   */
  enforceRetention(retentionMs: number | null, retentionBytes: number | null, now: number): number {
    if (this.compacting) return 0; // the next round
    let deleted = 0;
    let total = this.sizeBytes;
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0]!;
      const expired = retentionMs !== null && oldest.maxTimestamp < now - retentionMs;
      const over = retentionBytes !== null && total > retentionBytes;
      if (!expired && !over) break;
      this.#segments.shift();
      this.#dirtySegments.delete(oldest);
      oldest.delete();
      total -= oldest.size;
      deleted++;
    }
    return deleted;
  }

  async #syncDirty(): Promise<void> {
    const work: Promise<void>[] = [];
    for (const s of this.#dirtySegments) work.push(s.sync(this.#options.syncFile));
    this.#dirtySegments.clear();
    if (this.#dirDirty) {
      this.#dirDirty = false;
      work.push(fsyncDir(this.dir));
    }
    try {
      await Promise.all(work);
    } catch (err) {
      const first = this.#failed === null;
      this.#failed = new TributaryError("STORAGE_ERROR", `partition ${this.topic}/${this.partition} failed to sync; restart to recover`, this.#context(), { cause: err });
      if (first) this.#options.health?.fsyncFailed(`partition ${this.topic}/${this.partition}`, err);
      throw err;
    }
  }

  /** Syncs whatever is unsynced (resolves at once when nothing is). */
  flush(): Promise<void> {
    return this.hasUnsyncedData || this.commit.busy ? this.commit.request() : Promise.resolve();
  }

  /** Writes the indexes and closes every file (after `flush`). */
  close(): void {
    const active = this.#segments[this.#segments.length - 1]!;
    try {
      active.writeIndexes();
    } catch {
      // derived data, rebuilt on open
    }
    for (const s of this.#segments) s.close();
    this.#cache.clear();
    this.#gone = true;
  }

  /** Closes the files without writing anything (the topic is being deleted). */
  abandon(): void {
    this.#gone = true;
    for (const s of this.#segments) s.close();
    this.#cache.clear();
  }
}

function fsyncDir(dir: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    fs.open(dir, "r", (err, fd) => {
      if (err) return reject(new TributaryError("STORAGE_ERROR", `open ${dir} failed: ${err.message}`, {}, { cause: err }));
      fs.fsync(fd, (err2) => {
        fs.close(fd, () => (err2 ? reject(new TributaryError("STORAGE_ERROR", `fsync ${dir} failed: ${err2.message}`, {}, { cause: err2 })) : resolve()));
      });
    });
  });
}

function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function readCheckpoint(dir: string): number {
  try {
    const n = Number(fs.readFileSync(path.join(dir, CLEANER_CHECKPOINT), "utf8").trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0; // none yet (or unreadable: one extra pass recomputes it)
  }
}

function writeCheckpoint(dir: string, offset: number): void {
  const file = path.join(dir, CLEANER_CHECKPOINT);
  fs.writeFileSync(`${file}.tmp`, `${offset}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

export { INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX };
