import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isTributaryError } from "../errors.ts";
import { FileLogEngine } from "../log/file/file-log-engine.ts";
import { Broker, type BrokerOptions, type ProduceRecord } from "./broker.ts";
import { KafkaPartitioner } from "./partitioner.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));
const rec = (value: string, key: string | null = null, extra: Partial<ProduceRecord> = {}): ProduceRecord => ({
  key: key === null ? null : utf8(key),
  value: utf8(value),
  ...extra,
});

let dir: string;
let engine: FileLogEngine;
let appendCalls: Array<{ topic: string; partition: number; count: number }>;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "tributary-broker-"));
  engine = await FileLogEngine.open({ dataDir: dir, fsync: "never", retentionCheckMs: 0 });
  // Observe (not replace) the real engine's appends, to see how the broker batches.
  appendCalls = [];
  const append = engine.append.bind(engine);
  engine.append = (topic, partition, records, options) => {
    appendCalls.push({ topic, partition, count: records.length });
    return append(topic, partition, records, options);
  };
});

afterEach(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

function broker(options: Partial<BrokerOptions> = {}): Broker {
  return new Broker(engine, { autoCreateTopics: true, topicDefaults: { partitions: 3 }, maxRecordBytes: 1024, ...options });
}

async function values(topic: string, partition: number): Promise<Array<string | null>> {
  return (await engine.read(topic, partition, 0, { maxRecords: 10_000 })).map((r) => text(r.value));
}

describe("Broker.produce", () => {
  it("keeps call order for a topic this broker does not know yet, even when a later call finds it known", async () => {
    // The topic exists in the storage (another node created it), not in this broker's cache.
    await engine.createTopic("elsewhere", { partitions: 3 });
    // The first describe answers at once, later ones only once the late calls are issued (a
    // busy Redis): the cache is filled while calls 2..50 still wait for their own answers.
    const describe = engine.describeTopic.bind(engine);
    let releaseLater!: () => void;
    const lateIssued = new Promise<void>((resolve) => (releaseLater = resolve));
    let calls = 0;
    engine.describeTopic = async (topic) => {
      if (calls++ > 0) await lateIssued;
      return describe(topic);
    };
    const b = broker();
    const early = Array.from({ length: 50 }, (_, i) => b.produce("elsewhere", [rec(`v${i}`, "device-7")]));
    await early[0]; // the cache is filled now
    const late = Array.from({ length: 50 }, (_, i) => b.produce("elsewhere", [rec(`v${50 + i}`, "device-7")]));
    releaseLater();
    const results = await Promise.all([...early, ...late]);
    const partition = results[0]![0]!.partition;
    expect(await values("elsewhere", partition)).toEqual(Array.from({ length: 100 }, (_, i) => `v${i}`));
  });

  it("keeps call order within a partition: same key, contiguous offsets, read back in order", async () => {
    const b = broker();
    const input = Array.from({ length: 100 }, (_, i) => rec(`v${i}`, "device-7"));
    const results = await b.produce("orders", input);
    const partition = new KafkaPartitioner().forKey(utf8("device-7"), 3);
    expect(results.map((r) => r.partition)).toEqual(Array(100).fill(partition));
    expect(results.map((r) => r.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(await values("orders", partition)).toEqual(input.map((r) => text(r.value)));
  });

  it("appends the records of one call as one batch per partition and returns results in input order", async () => {
    const b = broker();
    await b.createTopic("mixed", { partitions: 3 });
    appendCalls.length = 0;
    const input = [rec("a0", null, { partition: 0 }), rec("b0", null, { partition: 1 }), rec("a1", null, { partition: 0 }), rec("c0", null, { partition: 2 }), rec("b1", null, { partition: 1 }), rec("a2", null, { partition: 0 })];
    const results = await b.produce("mixed", input);
    expect(results).toEqual([
      { partition: 0, offset: 0 },
      { partition: 1, offset: 0 },
      { partition: 0, offset: 1 },
      { partition: 2, offset: 0 },
      { partition: 1, offset: 1 },
      { partition: 0, offset: 2 },
    ]);
    expect(appendCalls.map(({ partition, count }) => ({ partition, count })).sort((x, y) => x.partition - y.partition)).toEqual([
      { partition: 0, count: 3 },
      { partition: 1, count: 2 },
      { partition: 2, count: 1 },
    ]);
    expect(await values("mixed", 0)).toEqual(["a0", "a1", "a2"]);
    expect(await values("mixed", 1)).toEqual(["b0", "b1"]);
  });

  it("routes keyed records with Kafka's murmur2 and null-keyed records of one call to one sticky partition", async () => {
    const b = broker();
    const results = await b.produce("sticky", [rec("x"), rec("y"), rec("z")]);
    expect(new Set(results.map((r) => r.partition)).size).toBe(1);
    const next = await b.produce("sticky", [rec("w")]);
    expect(next[0]!.partition).toBe((results[0]!.partition + 1) % 3);
    const keyed = await b.produce("sticky", [rec("k", "user-42")]);
    expect(keyed[0]!.partition).toBe(1); // toPositive(murmur2("user-42")) % 3, as the Java client
  });

  it("rejects a record over maxRecordBytes with RECORD_TOO_LARGE and writes nothing of the call", async () => {
    const b = broker({ maxRecordBytes: 100 });
    await b.createTopic("big", { partitions: 1 });
    const err = await b.produce("big", [rec("ok"), rec("x".repeat(101))]).catch((e: unknown) => e);
    expect(isTributaryError(err, "RECORD_TOO_LARGE")).toBe(true);
    expect((err as Error).message).toContain("limits.maxRecordBytes");
    expect((await engine.offsets("big", 0)).endOffset).toBe(0);
    // key and headers count too
    const withHeaders = await b.produce("big", [{ key: utf8("k".repeat(50)), value: utf8("v".repeat(40)), headers: { h: utf8("x".repeat(20)) } }]).catch((e: unknown) => e);
    expect(isTributaryError(withHeaders, "RECORD_TOO_LARGE")).toBe(true);
    await expect(b.produce("big", [rec("v".repeat(100))])).resolves.toEqual([{ partition: 0, offset: 0 }]);
  });

  it("auto-creates an unknown topic with the topic defaults, once under concurrent produces", async () => {
    const b = broker({ topicDefaults: { partitions: 4, retentionMs: 3_600_000 } });
    await Promise.all(Array.from({ length: 10 }, (_, i) => b.produce("fresh", [rec(`v${i}`, `k${i}`)])));
    const description = await engine.describeTopic("fresh");
    expect(description.partitions).toBe(4);
    expect(description.retentionMs).toBe(3_600_000);
    let total = 0;
    for (const p of description.partitionInfo) total += p.endOffset;
    expect(total).toBe(10);
  });

  it("fails with UNKNOWN_TOPIC and creates nothing when auto-create is off", async () => {
    const b = broker({ autoCreateTopics: false });
    const err = await b.produce("missing", [rec("v")]).catch((e: unknown) => e);
    expect(isTributaryError(err, "UNKNOWN_TOPIC")).toBe(true);
    expect(await engine.listTopics()).not.toContain("missing");
  });

  it("rejects an explicit partition outside the topic with UNKNOWN_PARTITION", async () => {
    const b = broker();
    await b.createTopic("two", { partitions: 2 });
    const err = await b.produce("two", [rec("v", null, { partition: 2 })]).catch((e: unknown) => e);
    expect(isTributaryError(err, "UNKNOWN_PARTITION")).toBe(true);
  });

  it("deduplicates a retried (producerId, sequence): same offsets, written once", async () => {
    const b = broker();
    await b.createTopic("idem", { partitions: 1 });
    const batch = [rec("a"), rec("b")];
    const first = await b.produce("idem", batch, { producerId: "p1", sequence: 0 });
    const retry = await b.produce("idem", batch, { producerId: "p1", sequence: 0 });
    expect(retry).toEqual(first);
    expect((await engine.offsets("idem", 0)).endOffset).toBe(2);
    // concurrent duplicates share the one write
    const [x, y] = await Promise.all([b.produce("idem", [rec("c")], { producerId: "p1", sequence: 1 }), b.produce("idem", [rec("c")], { producerId: "p1", sequence: 1 })]);
    expect(x).toEqual(y);
    expect((await engine.offsets("idem", 0)).endOffset).toBe(3);
    // another sequence, or another producer, writes again
    await b.produce("idem", [rec("d")], { producerId: "p1", sequence: 2 });
    await b.produce("idem", [rec("d")], { producerId: "p2", sequence: 0 });
    expect(await values("idem", 0)).toEqual(["a", "b", "c", "d", "d"]);
  });

  it("writes a failed (producerId, sequence) again when retried", async () => {
    const b = broker({ autoCreateTopics: false });
    await expect(b.produce("later", [rec("v")], { producerId: "p", sequence: 0 })).rejects.toMatchObject({ code: "UNKNOWN_TOPIC" });
    await b.createTopic("later", { partitions: 1 });
    await expect(b.produce("later", [rec("v")], { producerId: "p", sequence: 0 })).resolves.toEqual([{ partition: 0, offset: 0 }]);
  });

  it("re-creates (auto-create on) a topic deleted behind its back, with the current defaults", async () => {
    const b = broker({ topicDefaults: { partitions: 5 } });
    await b.createTopic("again", { partitions: 1 });
    await b.produce("again", [rec("v", "key")]);
    await engine.deleteTopic("again"); // not through the broker: its cached partition count is stale
    const [result] = await b.produce("again", [rec("v", "device-1")]);
    expect((await engine.describeTopic("again")).partitions).toBe(5);
    expect(result).toEqual({ partition: new KafkaPartitioner().forKey(utf8("device-1"), 5), offset: 0 });
  });

  it("returns an empty result for an empty call without touching the log", async () => {
    const b = broker({ autoCreateTopics: false });
    await expect(b.produce("nothing", [])).resolves.toEqual([]);
    expect(appendCalls).toEqual([]);
  });

  describe("produceOne (the callback path of one-record publishes)", () => {
    const one = (b: Broker, topic: string, record: ProduceRecord, acks: 0 | 1 | "all" = 1) =>
      new Promise<{ err: unknown; partition: number; offset: number }>((resolve) => b.produceOne(topic, record, { acks, source: "ws" }, (err, partition, offset) => resolve({ err, partition, offset })));

    it("partitions, orders and answers as produce does, for unknown and known topics, mixed with produce calls", async () => {
      const b = broker();
      const p = new KafkaPartitioner().forKey(utf8("k1"), 3);
      const other = (p + 1) % 3;
      const calls = [one(b, "cb", rec("a", "k1")), b.produce("cb", [rec("b", "k1")]), one(b, "cb", rec("c", "k1")), one(b, "cb", rec("d", null, { partition: other }))];
      const [a, [bResult], c, d] = (await Promise.all(calls)) as [Awaited<ReturnType<typeof one>>, { partition: number; offset: number }[], Awaited<ReturnType<typeof one>>, Awaited<ReturnType<typeof one>>];
      expect([a.err, a.partition, a.offset]).toEqual([null, p, 0]);
      expect(bResult).toEqual({ partition: p, offset: 1 });
      expect([c.err, c.partition, c.offset]).toEqual([null, p, 2]);
      expect([d.err, d.partition, d.offset]).toEqual([null, other, 0]);
      expect((await engine.read("cb", p, 0)).map((r) => text(r.value))).toEqual(["a", "b", "c"]);
    });

    it("answers RECORD_TOO_LARGE and UNKNOWN_PARTITION through the callback, counted by code, and writes nothing", async () => {
      const b = broker();
      await b.createTopic("cb-errors", { partitions: 1 });
      const large = await one(b, "cb-errors", rec("x".repeat(2000)));
      const outside = await one(b, "cb-errors", rec("y", null, { partition: 4 }));
      expect(isTributaryError(large.err, "RECORD_TOO_LARGE")).toBe(true);
      expect(isTributaryError(outside.err, "UNKNOWN_PARTITION")).toBe(true);
      expect((await engine.offsets("cb-errors", 0)).endOffset).toBe(0);
      const exposed = await b.metrics.expose();
      expect(exposed).toMatch(/tributary_produce_requests_total\{code="RECORD_TOO_LARGE"\} 1/);
      expect(exposed).toMatch(/tributary_produce_requests_total\{code="UNKNOWN_PARTITION"\} 1/);
    });

    it("re-creates a topic deleted behind its back, as produce does", async () => {
      const b = broker({ topicDefaults: { partitions: 5 } });
      await b.createTopic("cb-again", { partitions: 1 });
      expect((await one(b, "cb-again", rec("v", "key"))).err).toBeNull();
      await engine.deleteTopic("cb-again"); // the broker's cached partition count is stale
      const result = await one(b, "cb-again", rec("v", "device-1"));
      expect(result.err).toBeNull();
      expect((await engine.describeTopic("cb-again")).partitions).toBe(5);
      expect([result.partition, result.offset]).toEqual([new KafkaPartitioner().forKey(utf8("device-1"), 5), 0]);
    });
  });
});
