/**
 * Log compaction of one file-engine partition (Kafka's log cleaner, for a single node).
 *
 * A pass, on a partition whose topic has cleanupPolicy "compact" or "compact,delete":
 * 1. Notes the end offset E, then flushes the partition (so every record the pass reasons
 *    about is durable: a record is only ever removed because a later record of its key is on
 *    the device). Records at or after E are not looked at; the segments holding any (the
 *    active one, or one that rolled meanwhile) are not rewritten.
 * 2. Builds the offset map: for every key, the offset of its last record below E (over the
 *    sealed segments AND the active one, so a key rewritten recently is cleaned from the
 *    sealed part at once), and whether that last record is a tombstone (null value) with
 *    its timestamp.
 * 3. Rewrites the sealed segments (never the active one) in groups of consecutive segments
 *    whose estimated output (size × surviving share) fits in `segmentBytes`: a record survives when it is its key's last record
 *    and is not a tombstone older than `deleteRetentionMs` (by its timestamp). Keyless
 *    records (possible only from before the topic was switched to compact) are removed.
 *    Batches that lose nothing are copied byte for byte; the others are re-encoded as runs
 *    of consecutive surviving offsets, so offsets never change and removed ones are gaps.
 *    A group of one segment that loses nothing is left alone.
 *
 * Crash safety of a group's swap (files in the partition directory, base B, group end N):
 *   write `<B>.log.cleaned` + fdatasync   → crash: the leftover .cleaned is deleted on open
 *   rename to `<B>.<N>.swap`, fsync dir    → committed: on open, the segments with base in
 *                                            [B, N) are deleted and the swap becomes <B>.log
 *   delete the group's old files, rename the swap to `<B>.log`, write its indexes, fsync dir
 * The swap of the in-memory segment list happens in the same synchronous step as the renames,
 * so no read ever sees half of it (reads are synchronous too).
 *
 * The pass yields to the event loop between chunks; appends go on meanwhile (into the
 * active segment, or a new one if it rolls), retention skips the partition while it runs,
 * and a deleted topic or closing engine makes the pass stop and remove its temp file.
 */
import fs from "node:fs";
import path from "node:path";
import { setImmediate as yieldNow } from "node:timers/promises";
import { TributaryError } from "../../errors.ts";
import type { CompactionStats, RecordInput } from "../log-engine.ts";
import { BATCH_HEADER_BYTES, checkBatch, decodeRecordsInto, encodeBatch, measureBatch, readU32, type BatchHeader, type DecodeSink } from "./batch-codec.ts";
import { OffsetIndex } from "./offset-index.ts";
import type { PartitionLog } from "./partition-log.ts";
import { Segment, segmentFileName } from "./segment.ts";
import { TimeIndex } from "./time-index.ts";

export const CLEANED_SUFFIX = ".log.cleaned";
export const SWAP_PATTERN = /^(\d{20})\.(\d{20})\.swap$/;
const CHUNK = 4 << 20;
const WRITE_BUFFER = 1 << 20;
const MAX_RELATIVE = 0xffff_fff0;

export interface CleanerSettings {
  deleteRetentionMs: number;
  segmentBytes: number;
  indexIntervalBytes: number;
  maxBatchBytes: number;
  now: number;
}

export function swapFileName(base: number, end: number): string {
  return `${String(base).padStart(20, "0")}.${String(end).padStart(20, "0")}.swap`;
}

/** Thrown inside a pass when the partition went away (topic deleted, engine closing). */
class Aborted extends Error {}

/** What the offset map remembers per key (its last record below the pass's end). */
interface KeyState {
  offset: number;
  /** Timestamp of the last record when it is a tombstone, else -1. */
  tombstoneTs: number;
}

/**
 * Compacts one partition (see the module comment). Returns null when there was nothing to
 * clean (no sealed segment), else what the pass did. Throws CORRUPT_RECORD / STORAGE_ERROR
 * (the log is left as it was for the group that failed; groups swapped before stay swapped).
 */
export async function cleanPartition(log: PartitionLog, settings: CleanerSettings): Promise<CompactionStats | null> {
  // The end first, then the flush: every record below `end` is durable once it resolves (a
  // record is only removed because a later one of its key is on the device).
  const end = log.endOffset;
  await log.flush();
  const checkAlive = (): void => {
    if (log.gone) throw new Aborted();
  };
  checkAlive();
  const segments = log.segmentsSnapshot();
  // Cleanable: the sealed segments wholly below `end` (appends since may have rolled the active one).
  let cleanable = 0;
  while (cleanable < segments.length - 1 && segments[cleanable]!.nextOffset <= end) cleanable++;
  if (cleanable === 0) return null;
  const sealed = segments.slice(0, cleanable);
  const active = segments[cleanable]!; // the first segment not cleaned: the active one, or one sealed since `end`
  const context = { topic: log.topic, partition: log.partition };

  // --- pass 1: the offset map
  const keys = new Map<string, KeyState>();
  const recordsPerSegment: number[] = [];
  for (const seg of segments) {
    let count = 0;
    for await (const { buf, pos, header } of batchesOf(seg, context, checkAlive)) {
      if (header.baseOffset >= end) break;
      const sink = decodeAll(buf, pos, header);
      for (const r of sink.records) {
        if (r.offset >= end) break;
        count++;
        if (r.key === null) continue;
        const k = keyString(r.key);
        const state = keys.get(k);
        const tombstoneTs = r.value === null ? r.timestamp : -1;
        if (state) {
          state.offset = r.offset;
          state.tombstoneTs = tombstoneTs;
        } else keys.set(k, { offset: r.offset, tombstoneTs });
      }
    }
    recordsPerSegment.push(count);
  }

  // Survivors per sealed segment, to skip groups of one segment that lose nothing.
  const expiredBefore = settings.now - settings.deleteRetentionMs;
  const survivors = new Array<number>(sealed.length).fill(0);
  for (const state of keys.values()) {
    if (state.offset >= active.baseOffset) continue;
    if (state.tombstoneTs >= 0 && state.tombstoneTs < expiredBefore) continue;
    survivors[findSegment(sealed, state.offset)]!++;
  }

  const stats: CompactionStats = { partitionsCleaned: 1, recordsRead: 0, recordsRemoved: 0, tombstonesRemoved: 0, bytesBefore: 0, bytesAfter: 0 };
  for (let i = 0; i < sealed.length; i++) {
    stats.recordsRead += recordsPerSegment[i]!;
    stats.bytesBefore += sealed[i]!.size;
  }

  // --- pass 2: rewrite groups of sealed segments, grouped by their estimated output size
  const estimate = (k: number): number => (recordsPerSegment[k]! === 0 ? 0 : (sealed[k]!.size * survivors[k]!) / recordsPerSegment[k]!);
  let i = 0;
  while (i < sealed.length) {
    let j = i + 1;
    let bytes = estimate(i);
    while (j < sealed.length && bytes + estimate(j) <= settings.segmentBytes && sealed[j]!.nextOffset - sealed[i]!.baseOffset < MAX_RELATIVE) {
      bytes += estimate(j);
      j++;
    }
    const group = sealed.slice(i, j);
    const removed = group.reduce((n, _s, g) => n + recordsPerSegment[i + g]! - survivors[i + g]!, 0);
    if (group.length === 1 && removed === 0) {
      stats.bytesAfter += group[0]!.size;
    } else {
      const result = await rewriteGroup(log, group, keys, expiredBefore, settings, context, checkAlive);
      stats.recordsRemoved += result.removed;
      stats.tombstonesRemoved += result.tombstones;
      stats.bytesAfter += result.size;
    }
    i = j;
  }
  log.markCleaned(active.baseOffset);
  return stats;
}

/** Runs `cleanPartition`; a pass stopped by the partition going away resolves null. */
export async function cleanPartitionIfAlive(log: PartitionLog, settings: CleanerSettings): Promise<CompactionStats | null> {
  try {
    return await cleanPartition(log, settings);
  } catch (err) {
    if (err instanceof Aborted) return null;
    throw err;
  }
}

async function rewriteGroup(
  log: PartitionLog,
  group: Segment[],
  keys: Map<string, KeyState>,
  expiredBefore: number,
  settings: CleanerSettings,
  context: Record<string, unknown>,
  checkAlive: () => void,
): Promise<{ removed: number; tombstones: number; size: number }> {
  const base = group[0]!.baseOffset;
  const groupEnd = group[group.length - 1]!.nextOffset;
  const cleanedPath = path.join(log.dir, segmentFileName(base, CLEANED_SUFFIX));
  const fd = fs.openSync(cleanedPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
  let keepFd = false;
  try {
    const out = new SegmentWriter(fd, base, settings.indexIntervalBytes, cleanedPath);
    let removed = 0;
    let tombstones = 0;
    let maxTimestamp = -Infinity;
    for (const seg of group) {
      if (seg.maxTimestamp > maxTimestamp) maxTimestamp = seg.maxTimestamp;
      for await (const { buf, pos, header } of batchesOf(seg, context, checkAlive)) {
        const records = decodeAll(buf, pos, header).records;
        const keep: boolean[] = records.map((r) => {
          if (r.key === null) return false;
          const state = keys.get(keyString(r.key));
          if (!state || state.offset !== r.offset) return false;
          return !(state.tombstoneTs >= 0 && state.tombstoneTs < expiredBefore);
        });
        const kept = keep.filter(Boolean).length;
        for (let r = 0; r < records.length; r++) {
          if (keep[r]) continue;
          removed++;
          const rec = records[r]!;
          if (rec.value === null && rec.key !== null && keys.get(keyString(rec.key))?.offset === rec.offset) tombstones++;
        }
        if (kept === records.length) {
          out.write(buf.subarray(pos, pos + header.size), header.baseOffset, header.maxTimestamp);
          continue;
        }
        // Runs of consecutive surviving offsets, each one batch.
        let r = 0;
        while (r < records.length) {
          if (!keep[r]) {
            r++;
            continue;
          }
          const run: RecordInput[] = [];
          const runBase = records[r]!.offset;
          let runBytes = BATCH_HEADER_BYTES;
          while (r < records.length && keep[r]) {
            const rec = records[r]!;
            const input: RecordInput = { key: rec.key, value: rec.value, headers: rec.headers, timestamp: rec.timestamp };
            const size = measureBatch([input], rec.timestamp).size;
            if (run.length > 0 && runBytes + size > settings.maxBatchBytes) break;
            run.push(input);
            runBytes += size;
            r++;
          }
          const measure = measureBatch(run, run[0]!.timestamp!);
          out.write(encodeBatch(run, run[0]!.timestamp!, runBase, measure), runBase, measure.maxTimestamp);
        }
      }
    }
    out.finish();
    fs.fdatasyncSync(fd);
    checkAlive();
    if (!Number.isFinite(maxTimestamp)) maxTimestamp = out.maxTimestamp;
    const timeIndex = out.timeIndex;
    if (groupEnd - base > 0) timeIndex.append(Number.isFinite(maxTimestamp) ? maxTimestamp : 0, groupEnd - base);
    const segment = new Segment(log.dir, base, fd, {
      size: out.size,
      recordCount: groupEnd - base,
      maxTimestamp,
      offsetIndex: out.offsetIndex,
      timeIndex,
      bytesSinceIndex: 0,
    }, Number.isFinite(maxTimestamp) ? maxTimestamp : settings.now);
    segment.sealed = true;
    log.swapCleaned(group, segment, cleanedPath, path.join(log.dir, swapFileName(base, groupEnd)));
    keepFd = true;
    return { removed, tombstones, size: out.size };
  } finally {
    if (!keepFd) {
      fs.closeSync(fd);
      try {
        fs.rmSync(cleanedPath, { force: true });
      } catch (cleanupErr) {
        // The next open deletes it (segment-recovery of leftovers); the pass's own error is what the caller reports.
        void cleanupErr;
      }
    }
  }
}

/** Buffers writes of a cleaned segment and builds its offset and time indexes. */
class SegmentWriter {
  readonly offsetIndex = new OffsetIndex();
  readonly timeIndex = new TimeIndex();
  size = 0;
  maxTimestamp = -Infinity;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #written = 0;
  #bytesSinceIndex = 0;

  constructor(
    readonly fd: number,
    readonly base: number,
    readonly indexIntervalBytes: number,
    readonly file: string,
  ) {}

  write(batch: Buffer, baseOffset: number, maxTimestamp: number): void {
    const position = this.size;
    const rel = baseOffset - this.base;
    if (position === 0 || this.#bytesSinceIndex >= this.indexIntervalBytes) {
      this.offsetIndex.append(rel, position);
      if (rel > 0 && Number.isFinite(this.maxTimestamp)) this.timeIndex.append(this.maxTimestamp, rel);
      this.#bytesSinceIndex = 0;
    }
    this.#bytesSinceIndex += batch.length;
    if (maxTimestamp > this.maxTimestamp) this.maxTimestamp = maxTimestamp;
    this.size += batch.length;
    this.#pending.push(Buffer.from(batch)); // a copy: `batch` may be a view of a reused read chunk
    this.#pendingBytes += batch.length;
    if (this.#pendingBytes >= WRITE_BUFFER) this.#flush();
  }

  finish(): void {
    this.#flush();
  }

  #flush(): void {
    if (this.#pendingBytes === 0) return;
    const data = Buffer.concat(this.#pending, this.#pendingBytes);
    let done = 0;
    try {
      while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done, this.#written + done);
    } catch (err) {
      throw new TributaryError("STORAGE_ERROR", `write to ${this.file} failed: ${(err as Error).message}`, { file: this.file }, { cause: err });
    }
    this.#written += data.length;
    this.#pending = [];
    this.#pendingBytes = 0;
  }
}

function decodeAll(buf: Buffer, pos: number, header: BatchHeader): DecodeSink {
  const sink: DecodeSink = { records: [], maxRecords: Infinity, maxBytes: Infinity, bytes: 0 };
  decodeRecordsInto(buf, pos, header, 0, sink);
  return sink;
}

/** A binary-safe Map key for a record key. */
function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

function findSegment(segments: readonly Segment[], offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (segments[mid]!.baseOffset <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Every CRC-checked batch of a segment (up to its size when the iteration starts), yielding to the event loop between chunks. */
async function* batchesOf(seg: Segment, context: Record<string, unknown>, checkAlive: () => void): AsyncGenerator<{ buf: Buffer; pos: number; header: BatchHeader }> {
  const end = seg.size;
  let position = 0;
  while (position < end) {
    await yieldNow();
    checkAlive();
    let chunk = seg.readAt(position, Math.min(end - position, CHUNK));
    let p = 0;
    while (p < chunk.length) {
      if (chunk.length - p < 4) break;
      const length = readU32(chunk, p);
      if (position + p + 4 + length > end || length < BATCH_HEADER_BYTES - 4) {
        throw corrupt(seg, `batch length ${length} at position ${position + p} runs past the segment end`, position + p, context);
      }
      if (p + 4 + length > chunk.length) {
        if (p > 0) break;
        chunk = seg.readAt(position, 4 + length);
      }
      const check = checkBatch(chunk, p, chunk.length);
      if (check.status !== "ok") throw corrupt(seg, check.status === "torn" ? "torn batch" : check.reason, position + p, context);
      yield { buf: chunk, pos: p, header: check.header };
      p += check.header.size;
    }
    position += p;
  }
}

function corrupt(seg: Segment, reason: string, position: number, context: Record<string, unknown>): TributaryError {
  return new TributaryError("CORRUPT_RECORD", `compaction found corrupt data in ${seg.logPath} at position ${position}: ${reason}`, {
    ...context,
    segment: seg.baseOffset,
    position,
  });
}

/**
 * Finishes or rolls back what a crash left in a partition directory, before its segments are
 * listed: a `.cleaned` file (a group not yet committed) is deleted; a `<B>.<N>.swap` file (a
 * committed group) replaces the segments with base in [B, N). Returns true if anything was done.
 */
export function recoverCleanerLeftovers(dir: string, files: string[]): boolean {
  let changed = false;
  for (const f of files) {
    if (f.endsWith(CLEANED_SUFFIX)) {
      fs.rmSync(path.join(dir, f), { force: true });
      changed = true;
    }
  }
  for (const f of files) {
    const m = SWAP_PATTERN.exec(f);
    if (!m) continue;
    const base = Number(m[1]);
    const end = Number(m[2]);
    for (const other of files) {
      const s = /^(\d{20})\.(log|index|timeindex)$/.exec(other);
      if (s && Number(s[1]) >= base && Number(s[1]) < end) fs.rmSync(path.join(dir, other), { force: true });
    }
    fs.renameSync(path.join(dir, f), path.join(dir, segmentFileName(base, ".log")));
    changed = true;
  }
  if (changed) {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  return changed;
}
