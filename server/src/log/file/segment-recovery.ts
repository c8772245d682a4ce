/**
 * Loading segments on open, and crash recovery.
 *
 * Policy (Kafka's, for a single node):
 * - The LAST (active) segment is always scanned from its start: every batch's CRC, magic,
 *   structure and offset continuity is verified and its indexes are rebuilt. The file is
 *   truncated at the first batch that is torn (a partial write at the end, left by a crash)
 *   or invalid (CRC mismatch etc.): what follows an invalid batch cannot be trusted to be
 *   batches at all. `open()` does not fail. When anything is truncated, the partition's epoch
 *   is changed (its history may have lost acknowledged acks=0/1 records whose offsets will
 *   now be reused) and a warning is reported.
 * - OLDER (sealed) segments are not scanned when their index files are present and
 *   plausible; otherwise the scan rebuilds the indexes but never truncates (truncating a
 *   sealed segment would leave a hole in the offsets). Corruption inside them is reported by
 *   reads that reach it, as CORRUPT_RECORD: never skipped silently.
 */
import fs from "node:fs";
import path from "node:path";
import { checkBatch, readU32 } from "./batch-codec.ts";
import { OffsetIndex } from "./offset-index.ts";
import { INDEX_SUFFIX, Segment, TIME_INDEX_SUFFIX, emptySegmentState, segmentFileName, type SegmentState } from "./segment.ts";
import { TimeIndex } from "./time-index.ts";

const SCAN_CHUNK = 8 << 20;

export interface ScanResult {
  state: SegmentState;
  /** First batch's first timestamp (for age-based rolling), or null when empty. */
  firstTimestamp: number | null;
  /** Why the scan stopped before the end of the file, or null. */
  problem: { position: number; kind: "torn" | "corrupt"; reason: string } | null;
  fileSize: number;
}

/** Scans a segment file from the start, verifying every batch and building its indexes. */
export function scanSegment(fd: number, baseOffset: number, indexIntervalBytes: number, allowGaps = false): ScanResult {
  const fileSize = fs.fstatSync(fd).size;
  const state = emptySegmentState();
  let firstTimestamp: number | null = null;
  let position = 0;
  let problem: ScanResult["problem"] = null;
  outer: while (position < fileSize) {
    let chunk = readChunk(fd, position, Math.min(SCAN_CHUNK, fileSize - position));
    let p = 0;
    while (p < chunk.length) {
      if (chunk.length - p >= 4 && p + 4 + readU32(chunk, p) > chunk.length && position + p + 4 + readU32(chunk, p) <= fileSize) {
        if (p > 0) break; // continue with a new chunk from this batch
        chunk = readChunk(fd, position, 4 + readU32(chunk, 0));
      }
      const check = checkBatch(chunk, p, chunk.length);
      if (check.status === "torn") {
        problem = { position: position + p, kind: "torn", reason: `partial batch of ${fileSize - position - p} bytes at the end` };
        break outer;
      }
      if (check.status === "corrupt") {
        problem = { position: position + p, kind: "corrupt", reason: check.reason };
        break outer;
      }
      const h = check.header;
      if (h.baseOffset !== baseOffset + state.recordCount && !(allowGaps && h.baseOffset > baseOffset + state.recordCount)) {
        problem = { position: position + p, kind: "corrupt", reason: `batch base offset ${h.baseOffset}, expected ${baseOffset + state.recordCount}` };
        break outer;
      }
      const at = position + p;
      const rel = h.baseOffset - baseOffset; // = recordCount so far, unless compaction left a gap
      if (at === 0 || state.bytesSinceIndex >= indexIntervalBytes) {
        state.offsetIndex.append(rel, at);
        if (rel > 0) state.timeIndex.append(state.maxTimestamp, rel);
        state.bytesSinceIndex = 0;
      }
      state.bytesSinceIndex += h.size;
      if (firstTimestamp === null) firstTimestamp = h.firstTimestamp;
      state.recordCount = rel + h.recordCount;
      if (h.maxTimestamp > state.maxTimestamp) state.maxTimestamp = h.maxTimestamp;
      p += h.size;
      state.size = at + h.size;
    }
    position += p;
  }
  return { state, firstTimestamp, problem, fileSize };
}

function readChunk(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) return buf.subarray(0, got);
    got += n;
  }
  return buf;
}

export interface RecoveredSegment {
  segment: Segment;
  /** Set when the active segment was truncated. */
  truncated: { position: number; kind: "torn" | "corrupt"; reason: string; droppedBytes: number } | null;
}

/** Opens the active (last) segment, scanning it and truncating at the first invalid batch. */
export function recoverActiveSegment(dir: string, baseOffset: number, indexIntervalBytes: number, now: number): RecoveredSegment {
  const file = path.join(dir, segmentFileName(baseOffset, ".log"));
  const fd = fs.openSync(file, fs.constants.O_RDWR);
  const scan = scanSegment(fd, baseOffset, indexIntervalBytes);
  let truncated: RecoveredSegment["truncated"] = null;
  if (scan.problem) {
    fs.ftruncateSync(fd, scan.state.size);
    fs.fsyncSync(fd);
    truncated = { ...scan.problem, droppedBytes: scan.fileSize - scan.state.size };
  }
  const createdAt = scan.firstTimestamp === null ? now : Math.min(now, scan.firstTimestamp);
  return { segment: new Segment(dir, baseOffset, fd, scan.state, createdAt), truncated };
}

/**
 * Opens a sealed segment holding offsets [baseOffset, nextBaseOffset): loads its index files
 * when plausible, else scans (without truncating) and rewrites them.
 */
export function openSealedSegment(dir: string, baseOffset: number, nextBaseOffset: number, indexIntervalBytes: number, allowGaps = false): Segment {
  const file = path.join(dir, segmentFileName(baseOffset, ".log"));
  const fd = fs.openSync(file, fs.constants.O_RDONLY);
  const size = fs.fstatSync(fd).size;
  const recordCount = nextBaseOffset - baseOffset;
  const offsetIndex = loadIndex(path.join(dir, segmentFileName(baseOffset, INDEX_SUFFIX)), (b) => OffsetIndex.load(b, size, recordCount));
  const timeIndex = loadIndex(path.join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX)), (b) => TimeIndex.load(b, recordCount));
  let segment: Segment;
  if (offsetIndex && timeIndex) {
    const maxTimestamp = timeIndex.timestampAt(timeIndex.count - 1);
    segment = new Segment(dir, baseOffset, fd, { size, recordCount, maxTimestamp, offsetIndex, timeIndex, bytesSinceIndex: 0 }, maxTimestamp);
    segment.sealed = true;
    return segment;
  }
  const scan = scanSegment(fd, baseOffset, indexIntervalBytes, allowGaps);
  // Keep the file size (not the valid prefix): reads past the valid prefix report CORRUPT_RECORD.
  const state = { ...scan.state, size, recordCount };
  segment = new Segment(dir, baseOffset, fd, state, scan.firstTimestamp ?? 0);
  if (!scan.problem) {
    if (Number.isFinite(scan.state.maxTimestamp)) segment.timeIndex.append(scan.state.maxTimestamp, recordCount);
    segment.sealed = true;
    try {
      segment.writeIndexes();
    } catch {
      // derived data: rebuilt again next time
    }
  } else {
    segment.sealed = true;
    if (scan.state.recordCount > 0) segment.timeIndex.append(scan.state.maxTimestamp, scan.state.recordCount);
  }
  return segment;
}

function loadIndex<T>(file: string, parse: (buf: Buffer) => T | null): T | null {
  try {
    return parse(fs.readFileSync(file));
  } catch {
    return null;
  }
}
