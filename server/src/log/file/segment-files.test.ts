/**
 * The file engine's LRU of open segment files (limits.maxOpenSegmentFiles): the number of
 * partitions and segments is not the number of file descriptors; closed files are reopened
 * on use, reads and appends see every record, and a segment with unsynced writes under an
 * fsync interval stays open until its sync.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../../../test/helpers/wait.ts";
import { FileLogEngine, type FileLogEngineOptions } from "./file-log-engine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function newDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-fds-"));
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function open(dataDir: string, extra: Partial<FileLogEngineOptions> = {}): Promise<FileLogEngine> {
  const e = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0, compactionCheckMs: 0, ...extra });
  cleanups.push(() => e.close());
  return e;
}

/** Open descriptors of this process on segment files under `dir`. */
function segmentFds(dir: string): number {
  let n = 0;
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(path.join(dir, "topics")) && target.endsWith(".log")) n++; // segments, not offsets.log
    } catch {
      // the descriptor closed while listing
    }
  }
  return n;
}

describe("FileLogEngine open segment files", () => {
  it("200-partitions-use-at-most-maxOpenSegmentFiles-descriptors-and-read-back-everything", async () => {
    const dir = newDir();
    const engine = await open(dir, { maxOpenSegmentFiles: 16 });
    await engine.createTopic("wide", { partitions: 200 });
    for (let round = 0; round < 3; round++) {
      for (let p = 0; p < 200; p++) await engine.append("wide", p, [{ key: null, value: enc.encode(`${p}:${round}`) }]);
    }
    expect(engine.segmentFiles().open).toBeLessThanOrEqual(16);
    expect(segmentFds(dir)).toBeLessThanOrEqual(16);
    for (let p = 0; p < 200; p++) {
      const records = await engine.read("wide", p, 0);
      expect(records.map((r) => dec.decode(r.value!))).toEqual([`${p}:0`, `${p}:1`, `${p}:2`]);
    }
    const stats = engine.segmentFiles();
    expect(stats.evictions).toBeGreaterThan(500);
    expect(stats.reopens).toBeGreaterThan(500);
    expect(segmentFds(dir)).toBeLessThanOrEqual(16);
    await engine.flush(); // every evicted-while-dirty file is fsynced through a new descriptor
    expect(engine.health().ok).toBe(true);
  });

  it("a-partition-with-hundreds-of-sealed-segments-opens-within-the-bound", async () => {
    const dir = newDir();
    let engine = await open(dir, { segmentBytes: 1024 });
    await engine.createTopic("deep", {});
    for (let i = 0; i < 600; i++) await engine.append("deep", 0, [{ key: null, value: enc.encode(`record-${i}-${"x".repeat(200)}`) }]);
    expect(engine.segmentBaseOffsets("deep", 0).length).toBeGreaterThan(100);
    await engine.close();
    engine = await open(dir, { segmentBytes: 1024, maxOpenSegmentFiles: 16 });
    expect(segmentFds(dir)).toBeLessThanOrEqual(16);
    const all = [];
    for (let next = 0; next < 600; ) {
      const page = await engine.read("deep", 0, next, { maxRecords: 37 });
      all.push(...page);
      next = page[page.length - 1]!.offset + 1;
    }
    expect(all.map((r) => r.offset)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    expect(dec.decode(all[599]!.value!)).toMatch(/^record-599-/);
    expect(segmentFds(dir)).toBeLessThanOrEqual(16);
  });

  it("with-an-fsync-interval-unsynced-segments-stay-open-until-their-sync-then-the-bound-holds", async () => {
    const dir = newDir();
    const engine = await open(dir, { maxOpenSegmentFiles: 16, fsync: { intervalMs: 60_000 } });
    await engine.createTopic("interval", { partitions: 40 });
    for (let p = 0; p < 40; p++) await engine.append("interval", p, [{ key: null, value: enc.encode(`v${p}`) }]);
    // Nothing synced yet (the interval is a minute): no unsynced file was closed.
    expect(engine.segmentFiles().open).toBe(40);
    await engine.flush();
    await waitFor(() => engine.segmentFiles().open <= 16, { what: "the LRU to close synced files" });
    for (let p = 0; p < 40; p++) expect(dec.decode((await engine.read("interval", p, 0))[0]!.value!)).toBe(`v${p}`);
  });
});
