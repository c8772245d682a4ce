/**
 * File engine compaction beyond the shared contract (test/contract/log-engine-compaction-contract.ts):
 * the 1,000,000-writes case, restart on compacted state, crash safety of the segment swap,
 * appends during a pass, the background cleaner and how its failures are reported.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../../../test/helpers/wait.ts";
import { readAllGapSafe } from "../../../../test/contract/log-engine-compaction-contract.ts";
import type { LogRecord, RecordInput } from "../log-engine.ts";
import { FileLogEngine, type FileLogEngineOptions } from "./file-log-engine.ts";
import { swapFileName } from "./log-cleaner.ts";
import { segmentFileName } from "./segment.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (b: Uint8Array | null): string | null => (b === null ? null : dec.decode(b));

const dirs: string[] = [];
const engines: FileLogEngine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function newDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-compaction-"));
  dirs.push(d);
  return d;
}

async function open(dataDir: string, extra: Partial<FileLogEngineOptions> = {}): Promise<FileLogEngine> {
  // A small LRU of open segment files: compaction reads and swaps segments whose files it may have to reopen.
  const e = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0, compactionCheckMs: 0, maxOpenSegmentFiles: 16, onWarning: () => undefined, ...extra });
  engines.push(e);
  return e;
}

async function closeEngine(e: FileLogEngine): Promise<void> {
  await e.close();
  engines.splice(engines.indexOf(e), 1);
}

const partitionDir = (dataDir: string, topic: string, p = 0): string => path.join(dataDir, "topics", topic, String(p));

/** `rounds` batches, each writing every one of `keys` keys once ("<round>" as value, padded). */
async function writeRounds(engine: FileLogEngine, topic: string, keys: number, rounds: number, valueBytes = 100, from = 0): Promise<void> {
  for (let round = from; round < from + rounds; round++) {
    const records: RecordInput[] = [];
    for (let k = 0; k < keys; k++) records.push({ key: enc.encode(`k${k}`), value: enc.encode(`${round}|`.padEnd(valueBytes, ".")) });
    await engine.append(topic, 0, records);
  }
}

function lastByKey(records: LogRecord[]): Map<string, string | null> {
  const m = new Map<string, string | null>();
  for (const r of records) m.set(text(r.key)!, r.value === null ? null : text(r.value)!.split("|")[0]!);
  return m;
}

describe("FileLogEngine compaction", () => {
  it("compacts-1,000,000-writes-over-1,000-keys-to-about-1,000-live-records", async () => {
    const dir = newDir();
    // 64 KiB segments: each batch of 1,000 records (~30 KB) starts a segment about every 2 batches.
    const engine = await open(dir, { segmentBytes: 64 << 10 });
    await engine.createTopic("keyed", { cleanupPolicy: "compact", retentionMs: null });
    const keys = 1000;
    const writes = 1_000_000;
    const last = new Map<string, number>();
    let seed = 42;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let base = 0; base < writes; base += 1000) {
      const records: RecordInput[] = [];
      for (let i = 0; i < 1000; i++) {
        const k = `key-${Math.floor(random() * keys)}`;
        const n = base + i;
        records.push({ key: enc.encode(k), value: enc.encode(`v${n}`) });
        last.set(k, n);
      }
      await engine.append("keyed", 0, records);
    }
    const started = performance.now();
    const stats = await engine.compact("keyed", { force: true });
    const ms = performance.now() - started;
    const all = await readAllGapSafe(engine, "keyed", 0, 0);
    console.log(`compaction of ${writes} writes over ${keys} keys: ${ms.toFixed(0)} ms, ${stats.recordsRead} records read, ${stats.recordsRemoved} removed, ${all.length} left (${engine.segmentBaseOffsets("keyed", 0).length} segments), ${stats.bytesBefore} → ${stats.bytesAfter} bytes`);
    expect(stats.recordsRead).toBe(writes - (engine.segmentBaseOffsets("keyed", 0).length > 0 ? (await engine.offsets("keyed", 0)).endOffset - engine.segmentBaseOffsets("keyed", 0).at(-1)! : 0));
    // The sealed part keeps one record per key at most; the active segment (never compacted) holds the newest ≤ 2 batches.
    expect(all.length).toBeLessThanOrEqual(keys + 2000);
    expect(all.length).toBeGreaterThanOrEqual(keys);
    const seen = new Map<string, number>();
    for (const r of all) seen.set(text(r.key)!, Number(text(r.value)!.slice(1)));
    expect(seen.size).toBe(keys);
    for (const [k, n] of last) expect(seen.get(k), k).toBe(n);
    expect((await engine.offsets("keyed", 0)).endOffset).toBe(writes);
  }, 60_000);

  it("restart-reads-the-compacted-state-and-finds-nothing-left-to-clean", async () => {
    const dir = newDir();
    let engine = await open(dir, { segmentBytes: 16 << 10 });
    await engine.createTopic("state", { cleanupPolicy: "compact", retentionMs: null });
    await writeRounds(engine, "state", 50, 20);
    await writeRounds(engine, "state", 10, 100, 100, 20); // k10..k49 keep their last records in the sealed part, with gaps between
    expect(engine.segmentBaseOffsets("state", 0).length).toBeGreaterThan(3);
    await engine.compact("state", { force: true });
    const compacted = await readAllGapSafe(engine, "state", 0, 0);
    const bases = engine.segmentBaseOffsets("state", 0);
    await closeEngine(engine);
    engine = await open(dir, { segmentBytes: 16 << 10 });
    expect(engine.segmentBaseOffsets("state", 0)).toEqual(bases);
    expect(await readAllGapSafe(engine, "state", 0, 0)).toEqual(compacted);
    expect((await engine.compact("state")).partitionsCleaned).toBe(0); // dirty ratio 0 after the pass (checkpoint kept)
    // Indexes lost: rebuilt by a scan that accepts the gaps compaction left.
    await closeEngine(engine);
    for (const f of fs.readdirSync(partitionDir(dir, "state"))) if (/\.(index|timeindex)$/.test(f)) fs.rmSync(path.join(partitionDir(dir, "state"), f));
    engine = await open(dir, { segmentBytes: 16 << 10 });
    expect(await readAllGapSafe(engine, "state", 0, 0)).toEqual(compacted);
    const removed = compacted.findIndex((r, i) => i > 0 && r.offset !== compacted[i - 1]!.offset + 1);
    expect(removed).toBeGreaterThan(0);
    const gapStart = compacted[removed - 1]!.offset + 1;
    expect((await engine.read("state", 0, gapStart, { maxRecords: 1 }))[0]!.offset).toBe(compacted[removed]!.offset);
    expect(await engine.offsetForTimestamp("state", 0, 0)).toBe(compacted[0]!.offset);
  });

  it("a-leftover-cleaned-file-from-a-crash-before-the-swap-is-deleted-and-the-log-is-intact", async () => {
    const dir = newDir();
    let engine = await open(dir, { segmentBytes: 16 << 10 });
    await engine.createTopic("crash", { cleanupPolicy: "compact", retentionMs: null });
    await writeRounds(engine, "crash", 30, 40);
    const before = await readAllGapSafe(engine, "crash", 0, 0);
    await closeEngine(engine);
    const pdir = partitionDir(dir, "crash");
    fs.writeFileSync(path.join(pdir, segmentFileName(0, ".log.cleaned")), Buffer.alloc(5000, 7)); // half-written output
    engine = await open(dir, { segmentBytes: 16 << 10 });
    expect(fs.readdirSync(pdir).some((f) => f.endsWith(".cleaned"))).toBe(false);
    expect(await readAllGapSafe(engine, "crash", 0, 0)).toEqual(before);
    const stats = await engine.compact("crash", { force: true });
    expect(stats.recordsRemoved).toBeGreaterThan(0);
  });

  it("a-committed-swap-file-left-by-a-crash-replaces-its-segments-on-open", async () => {
    // The cleaned output of a copy of the partition stands for what the crashed pass wrote.
    const dir = newDir();
    let engine = await open(dir, { segmentBytes: 16 << 10 });
    await engine.createTopic("swap", { cleanupPolicy: "compact", retentionMs: null });
    await writeRounds(engine, "swap", 30, 40);
    const originalBases = engine.segmentBaseOffsets("swap", 0);
    await closeEngine(engine);
    const copy = newDir();
    fs.cpSync(dir, copy, { recursive: true });
    fs.rmSync(path.join(copy, "tributary.lock"), { force: true });
    const cleaner = await open(copy, { segmentBytes: 16 << 10 });
    await cleaner.compact("swap", { force: true });
    const expected = await readAllGapSafe(cleaner, "swap", 0, 0);
    const cleanedBases = cleaner.segmentBaseOffsets("swap", 0);
    await closeEngine(cleaner);
    expect(cleanedBases.length).toBe(2); // one cleaned group + the active segment
    const activeBase = cleanedBases[1]!;
    expect(originalBases.at(-1)).toBe(activeBase);

    // Crash after the commit point: the swap file is there, and some old segments were already removed.
    const pdir = partitionDir(dir, "swap");
    fs.copyFileSync(path.join(partitionDir(copy, "swap"), segmentFileName(0, ".log")), path.join(pdir, swapFileName(0, activeBase)));
    fs.rmSync(path.join(pdir, segmentFileName(originalBases[1]!, ".log")));
    fs.rmSync(path.join(pdir, segmentFileName(originalBases[1]!, ".index")), { force: true });
    engine = await open(dir, { segmentBytes: 16 << 10 });
    expect(fs.readdirSync(pdir).some((f) => f.endsWith(".swap"))).toBe(false);
    expect(engine.segmentBaseOffsets("swap", 0)).toEqual([0, activeBase]);
    expect(await readAllGapSafe(engine, "swap", 0, 0)).toEqual(expected);
    expect((await engine.offsets("swap", 0)).endOffset).toBe(30 * 40);
  });

  it("appends-and-reads-during-a-pass-lose-nothing", async () => {
    const dir = newDir();
    const engine = await open(dir, { segmentBytes: 32 << 10 });
    await engine.createTopic("busy", { cleanupPolicy: "compact", retentionMs: null });
    await writeRounds(engine, "busy", 100, 200);
    const pass = engine.compact("busy", { force: true });
    let appended = 0;
    let done = false;
    void pass.finally(() => (done = true));
    while (!done) {
      await new Promise<void>((resolve) => setImmediate(resolve)); // let the pass's turn come (appends alone resolve in microtasks)
      await writeRounds(engine, "busy", 100, 1, 100, 1000 + appended);
      appended++;
      await readAllGapSafe(engine, "busy", 0, (await engine.offsets("busy", 0)).endOffset - 50);
    }
    expect(appended).toBeGreaterThan(0); // the pass yielded to the appends
    await pass;
    const last = lastByKey(await readAllGapSafe(engine, "busy", 0, 0));
    expect(last.size).toBe(100);
    for (const v of last.values()) expect(v).toBe(String(1000 + appended - 1));
    expect((await engine.offsets("busy", 0)).endOffset).toBe(100 * (200 + appended));
  });

  it("the-background-cleaner-compacts-dirty-partitions-and-reports-its-failures", async () => {
    const dir = newDir();
    const failures: Array<{ task: string; err: unknown }> = [];
    const warnings: string[] = [];
    const engine = await open(dir, {
      segmentBytes: 16 << 10,
      compactionCheckMs: 20,
      onWarning: (m) => warnings.push(m),
      onBackgroundError: (task, err) => failures.push({ task, err }),
    });
    await engine.createTopic("auto", { cleanupPolicy: "compact", retentionMs: null, minCleanableDirtyRatio: 0.5 });
    await engine.createTopic("plain", { retentionMs: null });
    await writeRounds(engine, "plain", 20, 40);
    await writeRounds(engine, "auto", 20, 40);
    await waitFor(() => engine.compactionTotals().partitionsCleaned >= 1, { what: "the background cleaner to compact 'auto'" });
    const records = await readAllGapSafe(engine, "auto", 0, 0);
    expect(records.length).toBeLessThan(20 * 40);
    expect((await readAllGapSafe(engine, "plain", 0, 0)).length).toBe(20 * 40); // delete policy: untouched
    expect(failures).toEqual([]);

    // A corrupt sealed segment: the pass fails, is reported (task "compaction") and logged, and the data stays readable where it was not damaged.
    await writeRounds(engine, "auto", 20, 40, 100, 100);
    const pdir = partitionDir(dir, "auto");
    const bases = engine.segmentBaseOffsets("auto", 0);
    const victim = path.join(pdir, segmentFileName(bases[bases.length - 2]!, ".log"));
    const fd = fs.openSync(victim, "r+");
    fs.writeSync(fd, Buffer.from([0xff, 0xee]), 0, 2, 60);
    fs.closeSync(fd);
    await waitFor(() => failures.length >= 1, { what: "the failed pass to be reported" });
    expect(failures[0]!.task).toBe("compaction");
    expect((failures[0]!.err as { code?: string }).code).toBe("CORRUPT_RECORD");
    expect(warnings.some((w) => w.startsWith("compaction failed: compaction found corrupt data"))).toBe(true);
    expect(engine.segmentBaseOffsets("auto", 0)).toEqual(bases); // nothing swapped past the failure

    // The damaged partition does not keep the others from being compacted ("auto" sorts first and fails every round).
    await engine.createTopic("other", { cleanupPolicy: "compact", retentionMs: null });
    const cleanedBefore = engine.compactionTotals().partitionsCleaned;
    await writeRounds(engine, "other", 20, 40);
    await waitFor(() => engine.compactionTotals().partitionsCleaned > cleanedBefore, { what: "the cleaner to compact 'other' despite 'auto' failing" });
    expect((await readAllGapSafe(engine, "other", 0, 0)).length).toBeLessThan(20 * 40);
    expect(failures.length).toBeGreaterThanOrEqual(2);
  });

  it("a-topic's-segmentBytes-rolls-its-segments-whatever-the-engine-default-and-can-be-changed", async () => {
    const dir = newDir();
    let engine = await open(dir); // engine default: 64 MiB segments
    await engine.createTopic("small", { cleanupPolicy: "compact", segmentBytes: 4096 });
    await engine.createTopic("large", { cleanupPolicy: "compact" });
    await writeRounds(engine, "small", 10, 20);
    await writeRounds(engine, "large", 10, 20);
    expect(engine.segmentBaseOffsets("small", 0).length).toBeGreaterThan(3);
    expect(engine.segmentBaseOffsets("large", 0)).toEqual([0]);
    const stats = await engine.compact(undefined, { force: true });
    expect(stats.partitionsCleaned).toBe(1); // "large" has no sealed segment: nothing to clean
    await engine.alterTopicConfig("large", { segmentBytes: 4096 });
    await writeRounds(engine, "large", 10, 20, 100, 20);
    expect(engine.segmentBaseOffsets("large", 0).length).toBeGreaterThan(3);
    await closeEngine(engine);
    engine = await open(dir);
    expect((await engine.describeTopic("large")).segmentBytes).toBe(4096);
    const before = engine.segmentBaseOffsets("large", 0).length;
    await writeRounds(engine, "large", 10, 20, 100, 40);
    expect(engine.segmentBaseOffsets("large", 0).length).toBeGreaterThan(before + 2);
  });

  it("compact-delete-topics-are-compacted-and-still-retained-by-time", async () => {
    const dir = newDir();
    const engine = await open(dir, { segmentBytes: 16 << 10 });
    await engine.createTopic("both", { cleanupPolicy: "compact,delete", retentionMs: 60_000 });
    const old = Date.now() - 3_600_000;
    await engine.append("both", 0, Array.from({ length: 200 }, (_, i) => ({ key: enc.encode(`old-${i}`), value: enc.encode("x".repeat(100)), timestamp: old })));
    await writeRounds(engine, "both", 20, 30);
    await engine.compact("both", { force: true });
    await engine.enforceRetention();
    const records = await readAllGapSafe(engine, "both", 0, (await engine.offsets("both", 0)).earliestOffset);
    expect(records.some((r) => text(r.key)!.startsWith("old-"))).toBe(false);
    expect(lastByKey(records).size).toBe(20);
  });
});
