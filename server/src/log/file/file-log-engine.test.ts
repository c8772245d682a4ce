import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isTributaryError, type ErrorCode } from "../../errors.ts";
import { runLogEngineContract, valueRecords } from "../../../../test/contract/log-engine-contract.ts";
import { runCompactionContract } from "../../../../test/contract/log-engine-compaction-contract.ts";
import { waitFor } from "../../../../test/helpers/wait.ts";
import type { LogRecord } from "../log-engine.ts";
import { FileLogEngine, type FileLogEngineOptions } from "./file-log-engine.ts";
import { segmentFileName } from "./segment.ts";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "tributary-file-log-"));
}

runLogEngineContract("file", async () => {
  const dataDir = tempDir();
  const engine = await FileLogEngine.open({ dataDir, fsync: { intervalMs: 50 }, retentionCheckMs: 0 });
  return {
    engine,
    cleanup: async () => {
      await engine.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
});

// Small segments, so a few hundred KB of records leave sealed segments to compact.
runCompactionContract("file", async () => {
  const dataDir = tempDir();
  const engine = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0, compactionCheckMs: 0, segmentBytes: 64 << 10 });
  return {
    engine,
    cleanup: async () => {
      await engine.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
});

const dec = new TextDecoder();
const text = (b: Uint8Array | null): string | null => (b === null ? null : dec.decode(b));

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    if (isTributaryError(err, code)) return err.context as Record<string, unknown>;
    throw new Error(`expected ${code}, got ${String((err as Error)?.stack ?? err)}`);
  }
  throw new Error(`expected ${code}, got success`);
}

async function readAll(engine: FileLogEngine, topic: string, partition = 0, from?: number): Promise<LogRecord[]> {
  const info = await engine.offsets(topic, partition);
  const out: LogRecord[] = [];
  let next = from ?? info.earliestOffset;
  while (next < info.endOffset) {
    const page = await engine.read(topic, partition, next, { maxRecords: 777 });
    out.push(...page);
    next = page[page.length - 1]!.offset + 1;
  }
  return out;
}

describe("FileLogEngine", () => {
  const dirs: string[] = [];
  const engines: FileLogEngine[] = [];
  const warnings: string[] = [];

  async function open(dataDir: string, extra: Partial<FileLogEngineOptions> = {}): Promise<FileLogEngine> {
    const e = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0, onWarning: (m) => warnings.push(m), ...extra });
    engines.push(e);
    return e;
  }
  function newDir(): string {
    const d = tempDir();
    dirs.push(d);
    return d;
  }
  const partitionDir = (dataDir: string, topic: string, p = 0): string => path.join(dataDir, "topics", topic, String(p));
  const logFiles = (dataDir: string, topic: string, p = 0): string[] =>
    fs.readdirSync(partitionDir(dataDir, topic, p)).filter((f) => f.endsWith(".log")).sort();

  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    warnings.length = 0;
  });

  it("offsets-stay-contiguous-across-segment-rolls-and-restarts", async () => {
    const dir = newDir();
    let engine = await open(dir, { segmentBytes: 1024, indexIntervalBytes: 256 });
    await engine.createTopic("roll", { partitions: 2 });
    let next = 0;
    const appendSome = async (round: number): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        const n = (i % 5) + 1;
        const res = await engine.append("roll", 1, valueRecords(`r${round}-${i}`, n));
        expect(res.baseOffset).toBe(next);
        next += n;
      }
    };
    await appendSome(0);
    expect(logFiles(dir, "roll", 1).length).toBeGreaterThan(3);
    for (let round = 1; round <= 3; round++) {
      await engine.close();
      engine = await open(dir, { segmentBytes: 1024, indexIntervalBytes: 256 });
      expect((await engine.offsets("roll", 1)).endOffset).toBe(next);
      await appendSome(round);
    }
    const all = await readAll(engine, "roll", 1);
    expect(all.map((r) => r.offset)).toEqual(Array.from({ length: next }, (_, i) => i));
    expect(text(all[0]!.value)).toBe("r0-0-0");
    expect(text(all[all.length - 1]!.value)).toBe("r3-59-4");
    // random reads land on the right record in any segment
    for (const o of [0, 1, 57, 100, 179, next - 1]) expect((await engine.read("roll", 1, o, { maxRecords: 1 }))[0]!.offset).toBe(o);
    const bases = engine.segmentBaseOffsets("roll", 1);
    expect(logFiles(dir, "roll", 1)).toEqual(bases.map((b) => segmentFileName(b, ".log")));
  });

  it("segments-roll-by-age", async () => {
    const dir = newDir();
    const engine = await open(dir, { segmentMs: 40 });
    await engine.createTopic("aged", {});
    await engine.append("aged", 0, valueRecords("a", 3));
    const segmentStartedBy = Date.now(); // the active segment's age counts from its first append
    await engine.append("aged", 0, valueRecords("b", 3));
    expect(engine.segmentBaseOffsets("aged", 0)).toEqual([0]);
    // the subject is the segment's age: the clock must pass segmentMs
    await waitFor(() => Date.now() >= segmentStartedBy + 40, { timeoutMs: 1000, what: "the active segment to be 40 ms old" });
    await engine.append("aged", 0, valueRecords("c", 3));
    expect(engine.segmentBaseOffsets("aged", 0)).toEqual([0, 6]);
  });

  it("retention-by-time-deletes-only-whole-expired-segments-and-moves-the-earliest-offset", async () => {
    const dir = newDir();
    const engine = await open(dir, { segmentBytes: 1024 });
    await engine.createTopic("ttl", { retentionMs: 3_600_000 });
    const now = Date.now();
    const old = now - 2 * 3_600_000;
    // ~6 old segments, then fresh ones; the boundary batch is fresh
    for (let i = 0; i < 60; i++) await engine.append("ttl", 0, valueRecords(`old${i}`, 5, old + i));
    const firstFresh = (await engine.append("ttl", 0, valueRecords("fresh", 5, now))).baseOffset;
    for (let i = 0; i < 30; i++) await engine.append("ttl", 0, valueRecords(`new${i}`, 5, now));
    const before = engine.segmentBaseOffsets("ttl", 0);
    const { deletedSegments } = await engine.enforceRetention();
    const after = engine.segmentBaseOffsets("ttl", 0);
    expect(deletedSegments).toBeGreaterThan(0);
    expect(after).toEqual(before.slice(deletedSegments));
    // the segment holding the first fresh batch survives: whole segments only
    expect(after[0]!).toBeLessThanOrEqual(firstFresh);
    const earliest = (await engine.offsets("ttl", 0)).earliestOffset;
    expect(earliest).toBe(after[0]);
    expect(earliest).toBeGreaterThan(0);
    expect(logFiles(dir, "ttl")).toEqual(after.map((b) => segmentFileName(b, ".log")));
    const ctx = await expectCode(engine.read("ttl", 0, earliest - 1), "OFFSET_OUT_OF_RANGE");
    expect(ctx).toMatchObject({ topic: "ttl", partition: 0, offset: earliest - 1, earliest });
    expect((await engine.read("ttl", 0, earliest, { maxRecords: 1 }))[0]!.offset).toBe(earliest);
    // nothing else is expired: a second pass deletes nothing
    expect((await engine.enforceRetention()).deletedSegments).toBe(0);
  });

  it("retention-never-deletes-the-active-segment", async () => {
    const dir = newDir();
    const engine = await open(dir);
    await engine.createTopic("one-seg", { retentionMs: 1000, retentionBytes: 10 });
    await engine.append("one-seg", 0, valueRecords("ancient", 10, 1_000));
    expect((await engine.enforceRetention()).deletedSegments).toBe(0);
    expect(await engine.offsets("one-seg", 0)).toMatchObject({ earliestOffset: 0, endOffset: 10 });
  });

  it("retention-by-bytes-keeps-the-partition-within-the-limit", async () => {
    const dir = newDir();
    const engine = await open(dir, { segmentBytes: 4096 });
    await engine.createTopic("sized", { retentionBytes: 10_000, retentionMs: null });
    for (let i = 0; i < 100; i++) await engine.append("sized", 0, [{ key: null, value: new Uint8Array(300).fill(i) }]);
    const segmentsBefore = engine.segmentBaseOffsets("sized", 0).length;
    const sizeOf = (): number => logFiles(dir, "sized").reduce((s, f) => s + fs.statSync(path.join(partitionDir(dir, "sized"), f)).size, 0);
    expect(sizeOf()).toBeGreaterThan(10_000);
    const { deletedSegments } = await engine.enforceRetention();
    expect(deletedSegments).toBeGreaterThan(0);
    expect(engine.segmentBaseOffsets("sized", 0).length).toBe(segmentsBefore - deletedSegments);
    expect(sizeOf()).toBeLessThanOrEqual(10_000);
    const info = await engine.offsets("sized", 0);
    expect(info.endOffset).toBe(100);
    expect(info.earliestOffset).toBeGreaterThan(0);
    const rest = await readAll(engine, "sized");
    expect(rest[0]!.offset).toBe(info.earliestOffset);
    expect(rest[0]!.value![0]).toBe(info.earliestOffset);
  });

  it("retention-timer-runs-by-itself", async () => {
    const dir = newDir();
    const engine = await open(dir, { segmentBytes: 1024, retentionCheckMs: 20 });
    await engine.createTopic("timed", { retentionMs: 1000 });
    for (let i = 0; i < 20; i++) await engine.append("timed", 0, valueRecords("x", 10, 1_000 + i));
    await engine.append("timed", 0, valueRecords("now", 1));
    await waitFor(async () => (await engine.offsets("timed", 0)).earliestOffset > 0, { timeoutMs: 5000, what: "the retention timer to delete expired segments" });
    expect((await engine.offsets("timed", 0)).earliestOffset).toBeGreaterThan(0);
  });

  it("flipped-byte-in-a-sealed-segment-is-reported-as-CORRUPT_RECORD", async () => {
    const dir = newDir();
    let engine = await open(dir, { segmentBytes: 1024 });
    await engine.createTopic("flip", {});
    for (let i = 0; i < 40; i++) await engine.append("flip", 0, valueRecords(`v${i}`, 5));
    const bases = engine.segmentBaseOffsets("flip", 0);
    expect(bases.length).toBeGreaterThan(2);
    await engine.close();
    // flip one byte in the middle of the first (sealed) segment
    const file = path.join(partitionDir(dir, "flip"), segmentFileName(0, ".log"));
    const data = fs.readFileSync(file);
    const at = Math.floor(data.length / 2);
    data[at] = data[at]! ^ 0x40;
    fs.writeFileSync(file, data);
    engine = await open(dir, { segmentBytes: 1024 });
    expect(await engine.offsets("flip", 0)).toMatchObject({ earliestOffset: 0, endOffset: 200 });
    const ctx = await expectCode(readAll(engine, "flip", 0, 0), "CORRUPT_RECORD");
    expect(ctx).toMatchObject({ topic: "flip", partition: 0, segment: 0 });
    // records in later segments are still readable
    const later = await readAll(engine, "flip", 0, bases[1]!);
    expect(later[0]!.offset).toBe(bases[1]);
    expect(later[later.length - 1]!.offset).toBe(199);
    // a tail that reaches the bad batch stops with CORRUPT_RECORD instead of skipping it
    const err = await new Promise<Error>((resolve) => engine.tail("flip", 0, 0, { onRecords: () => undefined, onError: resolve }));
    expect(isTributaryError(err, "CORRUPT_RECORD")).toBe(true);
  });

  it("torn-tail-is-truncated-on-reopen-and-appends-continue-contiguously", async () => {
    const dir = newDir();
    let engine = await open(dir);
    const created = await engine.createTopic("torn", {});
    for (let i = 0; i < 10; i++) await engine.append("torn", 0, valueRecords(`v${i}`, 3));
    await engine.close();
    const file = path.join(partitionDir(dir, "torn"), segmentFileName(0, ".log"));
    const good = fs.readFileSync(file);
    // a partial copy of the first batch (what a crash mid-write leaves), then garbage
    const firstBatchSize = good.readUInt32BE(0) + 4;
    fs.appendFileSync(file, good.subarray(0, firstBatchSize - 5));
    engine = await open(dir);
    expect(await engine.offsets("torn", 0)).toMatchObject({ earliestOffset: 0, endOffset: 30 });
    expect(fs.statSync(file).size).toBe(good.length);
    expect(warnings.some((w) => w.includes("truncated"))).toBe(true);
    const epoch = (await engine.offsets("torn", 0)).epoch;
    expect(epoch).not.toBe(created.partitionInfo[0]!.epoch);
    expect((await engine.append("torn", 0, valueRecords("after", 2))).baseOffset).toBe(30);
    await engine.close();
    fs.appendFileSync(file, Buffer.from([1, 2, 3])); // shorter than a length field
    engine = await open(dir);
    const all = await readAll(engine, "torn");
    expect(all.map((r) => r.offset)).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(text(all[31]!.value)).toBe("after-1");
  });

  it("corrupt-batch-in-the-active-segment-truncates-from-it-on-reopen", async () => {
    const dir = newDir();
    let engine = await open(dir);
    await engine.createTopic("badtail", {});
    const sizes: number[] = [];
    for (let i = 0; i < 10; i++) {
      await engine.append("badtail", 0, valueRecords(`v${i}`, 4));
      sizes.push(fs.statSync(path.join(partitionDir(dir, "badtail"), segmentFileName(0, ".log"))).size);
    }
    await engine.close();
    const file = path.join(partitionDir(dir, "badtail"), segmentFileName(0, ".log"));
    const data = fs.readFileSync(file);
    data[sizes[5]! + 50] ^= 0xff; // inside batch 6 (offsets 24..27)
    fs.writeFileSync(file, data);
    engine = await open(dir);
    expect((await engine.offsets("badtail", 0)).endOffset).toBe(24);
    expect(fs.statSync(file).size).toBe(sizes[5]);
    expect(warnings.some((w) => w.includes("CRC"))).toBe(true);
    const all = await readAll(engine, "badtail");
    expect(all).toHaveLength(24);
    expect((await engine.append("badtail", 0, valueRecords("again", 1))).baseOffset).toBe(24);
  });

  it("indexes-are-rebuilt-when-their-files-are-missing-or-damaged", async () => {
    const dir = newDir();
    let engine = await open(dir, { segmentBytes: 1000, indexIntervalBytes: 128 });
    await engine.createTopic("idx", {});
    for (let i = 0; i < 50; i++) await engine.append("idx", 0, valueRecords(`v${i}`, 4, 1_000_000 + i * 10));
    await engine.close();
    const pdir = partitionDir(dir, "idx");
    const indexes = fs.readdirSync(pdir).filter((f) => f.endsWith(".index"));
    expect(indexes.length).toBeGreaterThan(2);
    fs.rmSync(path.join(pdir, indexes[0]!));
    fs.writeFileSync(path.join(pdir, indexes[1]!), Buffer.from("garbage!!"));
    fs.rmSync(path.join(pdir, indexes[1]!.replace(".index", ".timeindex")));
    engine = await open(dir, { segmentBytes: 1000, indexIntervalBytes: 128 });
    const all = await readAll(engine, "idx");
    expect(all.map((r) => r.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    for (const o of [3, 77, 150]) expect((await engine.read("idx", 0, o, { maxRecords: 1 }))[0]!.offset).toBe(o);
    expect(await engine.offsetForTimestamp("idx", 0, 1_000_000 + 25 * 10)).toBe(100);
    expect(await engine.offsetForTimestamp("idx", 0, 1_000_000 + 3 * 10 + 1)).toBe(16);
    expect(fs.existsSync(path.join(pdir, indexes[0]!))).toBe(true);
  });

  it("topic-metadata-and-group-offsets-survive-restart", async () => {
    const dir = newDir();
    let engine = await open(dir);
    const created = await engine.createTopic("meta", { partitions: 4, retentionMs: 123_000, retentionBytes: 1 << 20 });
    await engine.append("meta", 3, valueRecords("x", 2));
    await engine.commitOffset("g1", "meta", 3, 2, { epoch: created.partitionInfo[3]!.epoch, metadata: "hello" });
    await engine.commitOffset("g1", "meta", 1, 0);
    await engine.commitOffset("g2", "meta", 0, 0);
    await engine.close();
    engine = await open(dir);
    expect(await engine.listTopics()).toEqual(["meta"]);
    const d = await engine.describeTopic("meta");
    expect(d).toEqual({ ...created, partitionInfo: created.partitionInfo.map((p) => (p.partition === 3 ? { ...p, endOffset: 2 } : p)) });
    expect(await engine.fetchOffset("g1", "meta", 3)).toMatchObject({ offset: 2, epoch: created.partitionInfo[3]!.epoch, metadata: "hello" });
    expect(await engine.fetchOffset("g1", "meta", 1)).toMatchObject({ offset: 0, epoch: null });
    expect(await engine.listGroups()).toEqual(["g1", "g2"]);
  });

  it("a-topic-whose-creation-did-not-finish-is-removed-on-open", async () => {
    const dir = newDir();
    fs.mkdirSync(path.join(dir, "topics", "half", "0"), { recursive: true });
    const engine = await open(dir);
    expect(await engine.listTopics()).toEqual([]);
    expect(fs.existsSync(path.join(dir, "topics", "half"))).toBe(false);
    await engine.createTopic("half", {});
  });

  it("replication-factor-above-one-is-refused-naming-the-redis-engine", async () => {
    const engine = await open(newDir());
    try {
      await engine.createTopic("rf", { replicationFactor: 3 });
      throw new Error("expected POLICY_VIOLATION");
    } catch (err) {
      expect(isTributaryError(err, "POLICY_VIOLATION")).toBe(true);
      expect((err as Error).message).toMatch(/Redis/);
    }
    expect(await engine.listTopics()).toEqual([]);
    expect((await engine.createTopic("rf", { replicationFactor: 1 })).replicationFactor).toBe(1);
  });

  it("batches-above-maxBatchBytes-are-refused-with-RECORD_TOO_LARGE", async () => {
    const engine = await open(newDir(), { maxBatchBytes: 10_000 });
    await engine.createTopic("big", {});
    await expectCode(engine.append("big", 0, [{ key: null, value: new Uint8Array(10_000) }]), "RECORD_TOO_LARGE");
    expect((await engine.append("big", 0, [{ key: null, value: new Uint8Array(9_000) }])).baseOffset).toBe(0);
  });

  it("acks-all-appends-share-fsyncs-through-group-commit", async () => {
    const engine = await open(newDir());
    await engine.createTopic("gc", {});
    const before = engine.stats().fsyncs;
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => engine.append("gc", 0, valueRecords(`p${i}`, 2), { acks: "all" })));
    const fsyncs = engine.stats().fsyncs - before;
    expect(new Set(results.map((r) => r.baseOffset)).size).toBe(200);
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThanOrEqual(3);
  });

  it("fsync-always-syncs-acks-1-appends-and-never-does-not", async () => {
    const always = await open(newDir(), { fsync: "always" });
    await always.createTopic("fa", {});
    for (let i = 0; i < 5; i++) await always.append("fa", 0, valueRecords("x", 1), { acks: 1 });
    expect(always.stats().fsyncs).toBeGreaterThanOrEqual(5);
    const never = await open(newDir(), { fsync: "never" });
    await never.createTopic("fn", {});
    for (let i = 0; i < 5; i++) await never.append("fn", 0, valueRecords("x", 1), { acks: 1 });
    expect(never.stats().fsyncs).toBe(0);
    await never.flush();
    expect(never.stats().fsyncs).toBe(1);
  });

  it("tail-readers-see-records-past-the-cache-and-from-disk-alike", async () => {
    const dir = newDir();
    const engine = await open(dir, { cacheBytesPerPartition: 4096, segmentBytes: 8192 });
    await engine.createTopic("cache", {});
    for (let i = 0; i < 100; i++) await engine.append("cache", 0, valueRecords(`c${i}`, 3));
    const all = await readAll(engine, "cache");
    expect(all.map((r) => text(r.value))).toEqual(Array.from({ length: 100 }, (_, i) => [0, 1, 2].map((j) => `c${i}-${j}`)).flat());
  });

  it("reads-from-segment-files-return-every-record-whatever-the-page-size", async () => {
    const dir = newDir();
    let engine = await open(dir, { cacheBytesPerPartition: 0, segmentBytes: 100_000 });
    await engine.createTopic("pages", {});
    // values of varying length so the average record size is not an integer
    for (let i = 0; i < 40; i++) {
      await engine.append("pages", 0, Array.from({ length: 500 }, (_, j) => ({ key: null, value: new Uint8Array(7 + ((i * 500 + j) % 13)).fill(j & 0xff) })));
    }
    await engine.close();
    engine = await open(dir, { cacheBytesPerPartition: 0, segmentBytes: 100_000 });
    expect(engine.segmentBaseOffsets("pages", 0).length).toBeGreaterThan(2);
    for (const maxRecords of [1, 7, 333, 1000, 4999, 20_000]) {
      let next = 0;
      let count = 0;
      while (next < 20_000) {
        const page = await engine.read("pages", 0, next, { maxRecords });
        expect(page.length).toBe(Math.min(maxRecords, 20_000 - next));
        for (const r of page) {
          expect(r.offset).toBe(next++);
          expect(r.value!.length).toBe(7 + (r.offset % 13));
        }
        count += page.length;
        if (maxRecords === 1 && next > 1500) break; // enough single-record pages
      }
      if (maxRecords !== 1) expect(count).toBe(20_000);
    }
  });

  it("invalid-options-are-refused-with-INVALID_CONFIG", async () => {
    await expectCode(FileLogEngine.open({ dataDir: newDir(), segmentBytes: 0 }), "INVALID_CONFIG");
    await expectCode(FileLogEngine.open({ dataDir: newDir(), fsync: { intervalMs: -5 } }), "INVALID_CONFIG");
  });

  it("retention-settings-are-validated", async () => {
    const engine = await open(newDir());
    await expectCode(engine.createTopic("r", { retentionMs: -1 }), "INVALID_CONFIG");
    expect((await engine.createTopic("r", { retentionMs: null, retentionBytes: null })).retentionMs).toBeNull();
  });
});


