import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { TributaryError } from "../../errors.ts";
import { FileLogEngine } from "../../log/file/file-log-engine.ts";
import { waitFor } from "../../../../test/helpers/wait.ts";
import { Broker } from "../broker.ts";
import { DeliveryBatch } from "./delivery-batch.ts";
import { DeliveryCursor, type CursorReset, type DeliveryConsumer, type ResetPolicy } from "./delivery-cursor.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => (b === null ? "" : new TextDecoder().decode(b));

/**
 * A consumer that takes at most `room` records, then blocks until `grant(n)`; records what
 * it got, resets and failures, and lets a test wait for any of them.
 */
class TestConsumer implements DeliveryConsumer {
  active = true;
  room = Number.POSITIVE_INFINITY;
  readonly got: string[] = [];
  readonly offsets: number[] = [];
  readonly fromFeed: boolean[] = [];
  readonly resets: CursorReset[] = [];
  readonly failures: TributaryError[] = [];
  #ready: (() => void)[] = [];
  #changed: (() => void)[] = [];

  constructor(readonly resetPolicy: ResetPolicy = "earliest") {}

  take(_cursor: DeliveryCursor, batch: DeliveryBatch, from: number): number {
    let i = from;
    for (; i < batch.length && this.room > 0; i++, this.room--) {
      const r = batch.records[i]!;
      this.got.push(text(r.value));
      this.offsets.push(r.offset);
      this.fromFeed.push(batch.feedId !== null);
    }
    this.#notify();
    return i - from;
  }

  whenReady(): Promise<void> {
    if (!this.active || this.room > 0) return Promise.resolve();
    return new Promise((resolve) => this.#ready.push(resolve));
  }

  grant(n: number): void {
    this.room = this.room === Number.POSITIVE_INFINITY ? n : this.room + n;
    for (const r of this.#ready.splice(0)) r();
  }

  resetTo(_cursor: DeliveryCursor, reset: CursorReset): void {
    this.resets.push(reset);
    this.#notify();
  }

  failed(_cursor: DeliveryCursor, err: TributaryError): void {
    this.failures.push(err);
    this.#notify();
  }

  /** Resolves once `check()` holds (re-checked on every delivery, reset or failure). */
  async until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.got)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#changed.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  #notify(): void {
    for (const c of this.#changed.splice(0)) c();
  }
}

let dir: string;
let engine: FileLogEngine;
let broker: Broker;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "tributary-delivery-"));
  engine = await FileLogEngine.open({ dataDir: dir, fsync: "never", retentionCheckMs: 0 });
  broker = new Broker(engine, { autoCreateTopics: true, topicDefaults: { partitions: 1 }, maxRecordBytes: 1 << 20 });
});

afterEach(async () => {
  broker.feeds.closeAll();
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ broker, feeds: broker.feeds });
const produce = (topic: string, values: string[]) => broker.produce(topic, values.map((v) => ({ key: null, value: utf8(v), partition: 0 })));

describe("DeliveryCursor", () => {
  it("catches up from the log, then joins the partition's shared feed, with no gap or duplicate at the seam", async () => {
    await broker.createTopic("t");
    await produce("t", ["a", "b", "c"]);
    const epoch = (await broker.offsets("t", 0)).epoch;
    const consumer = new TestConsumer();
    const cursor = new DeliveryCursor(env(), consumer, "t", 0, epoch, 0);
    cursor.start();
    await consumer.until(() => consumer.got.length === 3, "the catch-up");
    await waitFor(() => cursor.mode === "feed", { what: "the cursor to join the feed" });
    await produce("t", ["d", "e"]);
    await consumer.until(() => consumer.got.length === 5, "live records");
    expect(consumer.got).toEqual(["a", "b", "c", "d", "e"]);
    expect(consumer.offsets).toEqual([0, 1, 2, 3, 4]);
    expect(consumer.fromFeed).toEqual([false, false, false, true, true]);
    expect(broker.feeds.size).toBe(1);
    cursor.close();
    expect(broker.feeds.size).toBe(0);
  });

  it("shares one feed between consumers at the live edge, and a consumer that cannot keep up leaves it for the log without holding the others back", async () => {
    await broker.createTopic("t");
    const epoch = (await broker.offsets("t", 0)).epoch;
    const fast = new TestConsumer();
    const slow = new TestConsumer();
    slow.room = 2;
    const a = new DeliveryCursor(env(), fast, "t", 0, epoch, 0);
    const b = new DeliveryCursor(env(), slow, "t", 0, epoch, 0);
    a.start(true);
    b.start(true);
    expect(broker.feeds.size).toBe(1);
    await produce("t", ["1", "2", "3", "4", "5"]);
    await fast.until(() => fast.got.length === 5, "the fast consumer's records");
    await slow.until(() => slow.got.length === 2, "the slow consumer's first two");
    expect(b.mode).not.toBe("feed");
    expect(a.mode).toBe("feed");
    slow.grant(100);
    await slow.until(() => slow.got.length === 5, "the slow consumer's rest, from the log");
    expect(slow.got).toEqual(["1", "2", "3", "4", "5"]);
    await waitFor(() => b.mode === "feed", { what: "the slow consumer to rejoin the feed" });
    await produce("t", ["6"]);
    await fast.until(() => fast.got.length === 6, "record 6 at the fast consumer");
    await slow.until(() => slow.got.length === 6, "record 6 at the slow consumer");
    expect(broker.feeds.size).toBe(1);
    a.close();
    b.close();
  });

  it("a position below the earliest offset moves by the consumer's reset policy", async () => {
    await broker.createTopic("t");
    await produce("t", ["a", "b"]);
    const epoch = (await broker.offsets("t", 0)).epoch;
    const consumer = new TestConsumer("latest");
    // offset 10 does not exist yet: the engine answers OFFSET_OUT_OF_RANGE
    const cursor = new DeliveryCursor(env(), consumer, "t", 0, epoch, 10);
    cursor.start();
    await consumer.until(() => consumer.resets.length === 1, "the reset");
    expect(consumer.resets[0]).toMatchObject({ reason: "OFFSET_OUT_OF_RANGE", requested: 10, offset: 2, epoch });
    await produce("t", ["c"]);
    await consumer.until(() => consumer.got.length === 1, "the record after the reset");
    expect(consumer.got).toEqual(["c"]);
    cursor.close();
  });

  it("a topic deleted under a running cursor ends its delivery with UNKNOWN_TOPIC (whoever owns it decides what follows)", async () => {
    await broker.createTopic("t");
    await produce("t", ["a"]);
    const epoch = (await broker.offsets("t", 0)).epoch;
    const consumer = new TestConsumer("earliest");
    const cursor = new DeliveryCursor(env(), consumer, "t", 0, epoch, 0);
    cursor.start();
    await consumer.until(() => consumer.got.length === 1, "the record");
    await waitFor(() => cursor.mode === "feed", { what: "the cursor to join the feed" }); // no consumer event marks it: polled
    await broker.deleteTopic("t");
    await consumer.until(() => consumer.failures.length === 1, "the failure");
    expect(consumer.failures[0]!.code).toBe("UNKNOWN_TOPIC");
    expect(cursor.mode).toBe("stopped");
    cursor.close();
  });

  it("a cursor that comes back after its topic was re-created is at a stale epoch: policy earliest reads the new history from its start", async () => {
    await broker.createTopic("t");
    await produce("t", ["old-0", "old-1", "old-2"]);
    const oldEpoch = (await broker.offsets("t", 0)).epoch;
    const consumer = new TestConsumer("earliest");
    const cursor = new DeliveryCursor(env(), consumer, "t", 0, oldEpoch, 0);
    cursor.start();
    await consumer.until(() => consumer.got.length === 3, "the old history");
    cursor.stop();
    await broker.deleteTopic("t");
    await broker.createTopic("t");
    await produce("t", ["new-0"]);
    cursor.start();
    await consumer.until(() => consumer.got.length === 4, "the new history");
    expect(consumer.got).toEqual(["old-0", "old-1", "old-2", "new-0"]);
    const newEpoch = (await broker.offsets("t", 0)).epoch;
    expect(consumer.resets).toEqual([expect.objectContaining({ reason: "STALE_EPOCH", requested: 3, previousEpoch: oldEpoch, epoch: newEpoch, offset: 0 })]);
    expect(cursor.epoch).toBe(newEpoch);
    cursor.close();
  });

  it("policy error ends delivery with the error instead of moving", async () => {
    await broker.createTopic("t");
    const oldEpoch = (await broker.offsets("t", 0)).epoch;
    const consumer = new TestConsumer("error");
    const cursor = new DeliveryCursor(env(), consumer, "t", 0, oldEpoch, 0);
    cursor.stop();
    await broker.deleteTopic("t");
    await broker.createTopic("t");
    await produce("t", ["x"]);
    cursor.start();
    await consumer.until(() => consumer.failures.length === 1, "the failure");
    expect(consumer.failures[0]!.code).toBe("STALE_EPOCH");
    expect(consumer.got).toEqual([]);
    cursor.close();
  });

  it("a batch with gaps (records removed by compaction) moves the position past the last record taken, never into a gap", async () => {
    await broker.createTopic("t");
    const epoch = (await broker.offsets("t", 0)).epoch;
    const consumer = new TestConsumer();
    consumer.room = 2;
    const cursor = new DeliveryCursor(env(), consumer, "t", 0, epoch, 3);
    cursor.start(true); // a member of the (empty) partition's feed, at offset 3
    const rec = (offset: number) => ({ offset, timestamp: 0, key: null, value: utf8(String(offset)), headers: {} });
    const batch = new DeliveryBatch("t", 0, epoch, [rec(1), rec(4), rec(7), rec(9)], 1);
    expect(batch.endOffset).toBe(10);
    expect(cursor.takeFromFeed(batch)).toBe(false); // room for 2 of the 3 at or after offset 3
    expect(consumer.offsets).toEqual([4, 7]);
    expect(cursor.nextOffset).toBe(8);
    cursor.close();
  });
});

