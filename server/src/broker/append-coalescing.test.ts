import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { isTributaryError } from "../errors.ts";
import { FileLogEngine, type FileLogEngineOptions } from "../log/file/file-log-engine.ts";
import type { Acks } from "../log/log-engine.ts";
import { AppendCoalescer } from "./append-coalescer.ts";
import { Broker, type ProducedRecord, type ProduceRecord } from "./broker.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));
const rec = (value: string, extra: Partial<ProduceRecord> = {}): ProduceRecord => ({ key: null, value: utf8(value), partition: 0, ...extra });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real FileLogEngine whose appends are observed (not replaced), and a Broker on it. */
async function setup(options: Partial<FileLogEngineOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tributary-coalesce-"));
  const engine = await FileLogEngine.open({ dataDir: dir, fsync: "never", retentionCheckMs: 0, ...options });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => engine.close());
  const appends: Array<{ partition: number; count: number; acks: Acks | undefined }> = [];
  const append = engine.append.bind(engine);
  engine.append = (topic, partition, records, opts) => {
    appends.push({ partition, count: records.length, acks: opts?.acks });
    return append(topic, partition, records, opts);
  };
  const broker = new Broker(engine, { autoCreateTopics: true, topicDefaults: { partitions: 1 }, maxRecordBytes: 64 * 1024 });
  const values = async (topic: string, partition = 0) => (await engine.read(topic, partition, 0, { maxRecords: 100_000 })).map((r) => text(r.value));
  return { engine, broker, appends, values };
}

describe("produce coalescing", () => {
  it("merges produce calls to one partition made in the same turn into one engine append, each call getting its own offsets in call order", async () => {
    const { broker, appends, values } = await setup();
    await broker.createTopic("t", { partitions: 1 });
    appends.length = 0;
    const calls = Array.from({ length: 50 }, (_, i) => Array.from({ length: (i % 3) + 1 }, (_, j) => rec(`c${i}.${j}`)));
    const results = await Promise.all(calls.map((records) => broker.produce("t", records)));
    expect(appends).toHaveLength(1);
    expect(appends[0]!.count).toBe(calls.flat().length);
    let next = 0;
    results.forEach((result, i) => {
      expect(result).toEqual(calls[i]!.map((_, j) => ({ partition: 0, offset: next + j })));
      next += calls[i]!.length;
    });
    expect(await values("t")).toEqual(calls.flat().map((r) => text(r.value)));
  });

  it("keeps call order across turns and acks levels: every later call gets higher offsets", async () => {
    const { broker, appends, values } = await setup({ fsync: "always" });
    await broker.createTopic("order", { partitions: 1 });
    appends.length = 0;
    const acksCycle: Acks[] = [1, 1, "all", 1, 0, "all", "all", 1];
    const pending: Promise<ProducedRecord[]>[] = [];
    for (let i = 0; i < 400; i++) {
      pending.push(broker.produce("order", [rec(`m${i}`)], { acks: acksCycle[i % acksCycle.length] }));
      if (i % 37 === 0) await nextTurn(); // some calls arrive while earlier appends (fsyncs) are in flight
    }
    const results = await Promise.all(pending);
    expect(results.map((r) => r[0]!.offset)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(await values("order")).toEqual(Array.from({ length: 400 }, (_, i) => `m${i}`));
    expect(appends.length).toBeLessThan(400);
  });

  it("deduplicates a (producerId, sequence) repeated inside one merged batch: written once, same result", async () => {
    const { broker, values } = await setup();
    await broker.createTopic("idem", { partitions: 1 });
    const [a, b, c, d] = await Promise.all([
      broker.produce("idem", [rec("x")], { producerId: "p", sequence: 0 }),
      broker.produce("idem", [rec("y")]),
      broker.produce("idem", [rec("x")], { producerId: "p", sequence: 0 }),
      broker.produce("idem", [rec("z")], { producerId: "p", sequence: 1 }),
    ]);
    expect(c).toEqual(a);
    expect([a, b, d]).toEqual([[{ partition: 0, offset: 0 }], [{ partition: 0, offset: 1 }], [{ partition: 0, offset: 2 }]]);
    expect(await values("idem")).toEqual(["x", "y", "z"]);
  });

  it("fails only the call with a bad record; the other calls merged with it are written, in order", async () => {
    const { broker, values } = await setup();
    await broker.createTopic("poison", { partitions: 1 });
    const settled = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => broker.produce("poison", [rec(`v${i}`, i === 4 ? { timestamp: -1 } : {})])),
    );
    const bad = settled[4]!;
    expect(bad.status).toBe("rejected");
    expect(isTributaryError((bad as PromiseRejectedResult).reason, "BAD_REQUEST")).toBe(true);
    const good = settled.filter((_, i) => i !== 4).map((s) => (s as PromiseFulfilledResult<ProducedRecord[]>).value[0]!.offset);
    expect(good).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await values("poison")).toEqual(["v0", "v1", "v2", "v3", "v5", "v6", "v7", "v8", "v9"]);
  });

  it("splits calls whose merged batch is over the engine's batch limit; only a call over it alone fails", async () => {
    const { broker, values } = await setup({ maxBatchBytes: 4096 });
    await broker.createTopic("big", { partitions: 1 });
    const kb = (tag: string) => rec(tag + "x".repeat(1000));
    const settled = await Promise.allSettled([
      broker.produce("big", [kb("a")]),
      broker.produce("big", [kb("b"), kb("c")]),
      broker.produce("big", Array.from({ length: 6 }, (_, i) => kb(`huge${i}`))), // ~6 KB alone: over the limit
      broker.produce("big", [kb("d")]),
      broker.produce("big", [kb("e"), kb("f")]),
    ]);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
    expect(isTributaryError((settled[2] as PromiseRejectedResult).reason, "RECORD_TOO_LARGE")).toBe(true);
    expect((await values("big")).map((v) => v![0])).toEqual(["a", "b", "c", "d", "e", "f"]);
  });

  it("fails the calls of a batch whose partition is gone, and no call of another partition in the same turn", async () => {
    const { engine, broker, values } = await setup();
    await broker.createTopic("shrunk", { partitions: 2 });
    await broker.produce("shrunk", [rec("before", { partition: 1 })]);
    // Re-created with one partition behind the broker's back: its cached count is stale.
    await engine.deleteTopic("shrunk");
    await engine.createTopic("shrunk", { partitions: 1 });
    const settled = await Promise.allSettled([
      broker.produce("shrunk", [rec("p0-a")]),
      broker.produce("shrunk", [rec("p1-a", { partition: 1 })]),
      broker.produce("shrunk", [rec("p0-b")]),
      broker.produce("shrunk", [rec("p1-b", { partition: 1 })]),
    ]);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled", "rejected"]);
    expect(isTributaryError((settled[1] as PromiseRejectedResult).reason, "UNKNOWN_PARTITION")).toBe(true);
    expect(await values("shrunk")).toEqual(["p0-a", "p0-b"]);
  });

  it("keeps each publisher's order when many publishers interleave on one partition", async () => {
    const { broker, values, appends } = await setup();
    await broker.createTopic("many", { partitions: 1 });
    appends.length = 0;
    const producers = 8;
    const perProducer = 250;
    const all: Promise<ProducedRecord[]>[][] = Array.from({ length: producers }, () => []);
    for (let i = 0; i < perProducer; i++) {
      for (let p = 0; p < producers; p++) all[p]!.push(broker.produce("many", [rec(`p${p}-${i}`)]));
      if (i % 10 === 9) await nextTurn();
    }
    for (const mine of all) {
      const offsets = (await Promise.all(mine)).map((r) => r[0]!.offset);
      for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBeGreaterThan(offsets[i - 1]!);
    }
    const log = await values("many");
    expect(log).toHaveLength(producers * perProducer);
    for (let p = 0; p < producers; p++) {
      expect(log.filter((v) => v!.startsWith(`p${p}-`))).toEqual(Array.from({ length: perProducer }, (_, i) => `p${p}-${i}`));
    }
    expect(appends.length).toBeLessThanOrEqual(perProducer / 10 + 1);
  });

  it("keeps a queue per partition produced to, forgetting idle ones once their count doubles (never one with requests)", async () => {
    const { engine, values, appends } = await setup();
    for (let t = 0; t < 6; t++) await engine.createTopic(`q${t}`, { partitions: 4 });
    const coalescer = new AppendCoalescer(engine, { maxBatchRecords: 1000, maxBatchBytes: 1 << 20, minSweepAt: 8 });
    const input = (v: string) => [{ key: null, value: utf8(v) }];
    // One partition at a time: each queue is idle once its append resolved.
    for (let t = 0; t < 6; t++) for (let p = 0; p < 4; p++) await coalescer.append(`q${t}`, p, input(`a${t}.${p}`), 1);
    expect(coalescer.queueCount).toBeLessThanOrEqual(8);
    // All 24 partitions at once, 3 requests each: none is forgotten while requests wait (each partition's 3 merge into one append), every offset is right.
    appends.length = 0;
    const offsets = await Promise.all(Array.from({ length: 72 }, (_, i) => coalescer.append(`q${i % 6}`, Math.floor(i / 6) % 4, input(`b${i}`), 1)));
    expect(appends).toHaveLength(24);
    expect(offsets).toEqual(Array.from({ length: 72 }, (_, i) => 1 + Math.floor(i / 24)));
    for (let t = 0; t < 6; t++) for (let p = 0; p < 4; p++) expect(await values(`q${t}`, p)).toEqual([`a${t}.${p}`, `b${t + 6 * p}`, `b${t + 6 * p + 24}`, `b${t + 6 * p + 48}`]);
  });
});
