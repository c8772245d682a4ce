/**
 * The LogEngine contract suite: every engine runs it (file, redis, ...).
 *
 * ```ts
 * runLogEngineContract("file", async () => {
 *   const engine = await FileLogEngine.open({ dataDir });
 *   return { engine, cleanup: async () => { await engine.close(); await rm(dataDir) } };
 * });
 * ```
 * `cleanup` must close the engine (close is idempotent: some tests close it themselves) and
 * release everything the factory created. Each test uses fresh topic names.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isTributaryError } from "../../server/src/errors.ts";
import type { ErrorCode } from "../../server/src/errors.ts";
import type { LogEngine, LogRecord, RecordInput } from "../../server/src/log/log-engine.ts";
import { waitFor } from "../helpers/wait.ts";

export interface ContractEngine {
  engine: LogEngine;
  cleanup(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string): Uint8Array => enc.encode(s);
const text = (b: Uint8Array | null): string | null => (b === null ? null : dec.decode(b));

export function valueRecords(prefix: string, n: number, timestamp?: number): RecordInput[] {
  return Array.from({ length: n }, (_, i) => ({ key: bytes(`k${i % 7}`), value: bytes(`${prefix}-${i}`), ...(timestamp === undefined ? {} : { timestamp }) }));
}

async function expectCode(p: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<Error> {
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeDefined();
  if (!isTributaryError(err, code)) throw new Error(`expected TributaryError ${code}, got ${String((err as Error)?.stack ?? err)}`);
  return err;
}

/** Reads every record from `from` to the end offset, page by page. */
async function readAll(engine: LogEngine, topic: string, partition: number, from = 0): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  const { endOffset } = await engine.offsets(topic, partition);
  let next = from;
  while (next < endOffset) {
    const page = await engine.read(topic, partition, next, { maxRecords: 1000 });
    expect(page.length).toBeGreaterThan(0);
    out.push(...page);
    next = page[page.length - 1]!.offset + 1;
  }
  return out;
}

export function runLogEngineContract(name: string, makeEngine: () => Promise<ContractEngine>): void {
  describe(`LogEngine contract: ${name}`, () => {
    let ctx: ContractEngine | undefined;
    let engine: LogEngine;
    let n = 0;
    const topicName = (): string => `contract-${Date.now().toString(36)}-${n++}`;

    beforeEach(async () => {
      const made = await makeEngine();
      ctx = made;
      engine = made.engine;
    });
    afterEach(async () => {
      const current = ctx;
      ctx = undefined;
      await current?.cleanup(); // undefined when makeEngine failed: its error is the one to see
    });

    // --- topics --------------------------------------------------------------------------

    it("creates-describes-lists-and-deletes-topics", async () => {
      const t = topicName();
      const before = Date.now();
      const created = await engine.createTopic(t, { partitions: 3, retentionMs: 60_000 });
      expect(created.name).toBe(t);
      expect(created.partitions).toBe(3);
      expect(created.retentionMs).toBe(60_000);
      expect(created.replicationFactor).toBeGreaterThanOrEqual(1);
      expect(created.cleanupPolicy).toBe("delete");
      expect(created.createdAt).toBeGreaterThanOrEqual(before - 1000);
      expect(created.partitionInfo.map((p) => [p.partition, p.earliestOffset, p.endOffset])).toEqual([
        [0, 0, 0],
        [1, 0, 0],
        [2, 0, 0],
      ]);
      const described = await engine.describeTopic(t);
      expect(described).toEqual(created);
      expect(await engine.listTopics()).toContain(t);
      await engine.deleteTopic(t);
      expect(await engine.listTopics()).not.toContain(t);
      await expectCode(engine.describeTopic(t), "UNKNOWN_TOPIC");
    });

    it("topic-defaults-apply-when-config-is-empty", async () => {
      const t = topicName();
      const d = await engine.createTopic(t, {});
      expect(d.partitions).toBe(1);
      expect(d.cleanupPolicy).toBe("delete");
      expect(d.partitionInfo).toHaveLength(1);
    });

    it("creating-an-existing-topic-fails-with-TOPIC_EXISTS", async () => {
      const t = topicName();
      await engine.createTopic(t, { partitions: 1 });
      await expectCode(engine.createTopic(t, { partitions: 2 }), "TOPIC_EXISTS");
      expect((await engine.describeTopic(t)).partitions).toBe(1);
    });

    it("invalid-topic-names-are-refused-with-INVALID_TOPIC", async () => {
      for (const bad of ["", "has space", "a/b", "x".repeat(250), "ünï", "a:b"]) {
        await expectCode(engine.createTopic(bad, {}), "INVALID_TOPIC");
      }
      await engine.createTopic("Valid.name_-9", {});
      await engine.createTopic("y".repeat(249), {});
    });

    it("partition-count-outside-1-to-10000-is-refused-with-POLICY_VIOLATION", async () => {
      for (const partitions of [0, -1, 1.5, 10_001]) {
        await expectCode(engine.createTopic(topicName(), { partitions }), "POLICY_VIOLATION");
      }
    });

    it("unknown-topic-fails-everywhere-with-UNKNOWN_TOPIC", async () => {
      const t = topicName();
      await expectCode(engine.describeTopic(t), "UNKNOWN_TOPIC");
      await expectCode(engine.deleteTopic(t), "UNKNOWN_TOPIC");
      await expectCode(engine.append(t, 0, valueRecords("v", 1)), "UNKNOWN_TOPIC");
      await expectCode(engine.read(t, 0, 0), "UNKNOWN_TOPIC");
      await expectCode(engine.offsets(t, 0), "UNKNOWN_TOPIC");
      await expectCode(engine.offsetForTimestamp(t, 0, 0), "UNKNOWN_TOPIC");
      await expectCode(engine.commitOffset("g", t, 0, 1), "UNKNOWN_TOPIC");
      await expectCode(engine.fetchOffset("g", t, 0), "UNKNOWN_TOPIC");
      const err = await new Promise<Error>((resolve) => {
        engine.tail(t, 0, 0, { onRecords: () => undefined, onError: resolve });
      });
      expect(isTributaryError(err, "UNKNOWN_TOPIC")).toBe(true);
    });

    it("unknown-partition-fails-with-UNKNOWN_PARTITION", async () => {
      const t = topicName();
      await engine.createTopic(t, { partitions: 2 });
      await expectCode(engine.append(t, 2, valueRecords("v", 1)), "UNKNOWN_PARTITION");
      await expectCode(engine.append(t, -1, valueRecords("v", 1)), "UNKNOWN_PARTITION");
      await expectCode(engine.read(t, 5, 0), "UNKNOWN_PARTITION");
      await expectCode(engine.offsets(t, 2), "UNKNOWN_PARTITION");
    });

    it("epoch-changes-when-a-topic-is-deleted-and-recreated", async () => {
      const t = topicName();
      const first = await engine.createTopic(t, { partitions: 2 });
      await engine.append(t, 0, valueRecords("old", 10));
      await engine.deleteTopic(t);
      const second = await engine.createTopic(t, { partitions: 2 });
      expect(second.partitionInfo[0]!.epoch).not.toBe(first.partitionInfo[0]!.epoch);
      expect(second.partitionInfo[1]!.epoch).not.toBe(first.partitionInfo[1]!.epoch);
      expect(await engine.offsets(t, 0)).toMatchObject({ earliestOffset: 0, endOffset: 0 });
      expect(await engine.read(t, 0, 0)).toEqual([]);
      // The epoch is stable while nothing is rewritten.
      await engine.append(t, 0, valueRecords("new", 1));
      expect((await engine.offsets(t, 0)).epoch).toBe(second.partitionInfo[0]!.epoch);
    });

    // --- append / read ------------------------------------------------------------------

    it("offsets-are-contiguous-from-zero-across-batches", async () => {
      const t = topicName();
      await engine.createTopic(t, { partitions: 2 });
      let expected = 0;
      for (const size of [1, 5, 17, 1, 100, 3]) {
        const res = await engine.append(t, 1, valueRecords(`b${size}`, size));
        expect(res.baseOffset).toBe(expected);
        expected += size;
      }
      expect(await engine.offsets(t, 1)).toMatchObject({ earliestOffset: 0, endOffset: expected });
      expect(await engine.offsets(t, 0)).toMatchObject({ earliestOffset: 0, endOffset: 0 });
      const all = await readAll(engine, t, 1);
      expect(all.map((r) => r.offset)).toEqual(Array.from({ length: expected }, (_, i) => i));
    });

    it("reads-see-every-resolved-append-with-its-content", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      const before = Date.now();
      const res = await engine.append(t, 0, valueRecords("ryw", 3));
      const got = await engine.read(t, 0, res.baseOffset);
      expect(got.map((r) => text(r.value))).toEqual(["ryw-0", "ryw-1", "ryw-2"]);
      expect(got.map((r) => text(r.key))).toEqual(["k0", "k1", "k2"]);
      for (const r of got) expect(r.timestamp).toBeGreaterThanOrEqual(before - 1000);
      expect(res.timestamp).toBe(Math.max(...got.map((r) => r.timestamp)));
      // immediately after each resolved append, at every acks level
      for (const acks of [0, 1, "all"] as const) {
        const r = await engine.append(t, 0, [{ key: null, value: bytes(`acks-${acks}`) }], { acks });
        const [rec] = await engine.read(t, 0, r.baseOffset, { maxRecords: 1 });
        expect(text(rec!.value)).toBe(`acks-${acks}`);
      }
    });

    it("explicit-record-timestamps-are-kept", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      const res = await engine.append(t, 0, [
        { key: null, value: bytes("a"), timestamp: 1_000 },
        { key: null, value: bytes("b"), timestamp: 5_000 },
        { key: null, value: bytes("c"), timestamp: 3_000 },
      ]);
      expect(res.timestamp).toBe(5_000);
      expect((await engine.read(t, 0, 0)).map((r) => r.timestamp)).toEqual([1_000, 5_000, 3_000]);
    });

    it("read-honours-maxRecords-and-maxBytes-and-returns-at-least-one-record", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      await engine.append(t, 0, Array.from({ length: 50 }, (_, i) => ({ key: null, value: new Uint8Array(100).fill(i) })));
      expect(await engine.read(t, 0, 0, { maxRecords: 7 })).toHaveLength(7);
      const fromMiddle = await engine.read(t, 0, 10, { maxRecords: 5 });
      expect(fromMiddle.map((r) => r.offset)).toEqual([10, 11, 12, 13, 14]);
      const limited = await engine.read(t, 0, 0, { maxBytes: 450 });
      expect(limited.length).toBeGreaterThanOrEqual(1);
      expect(limited.length).toBeLessThanOrEqual(5);
      const one = await engine.read(t, 0, 3, { maxBytes: 1 });
      expect(one).toHaveLength(1);
      expect(one[0]!.offset).toBe(3);
      expect(one[0]!.value).toEqual(new Uint8Array(100).fill(3));
      expect(await engine.read(t, 0, 0)).toHaveLength(50); // default maxRecords is >= 50
    });

    it("read-outside-the-partition-is-OFFSET_OUT_OF_RANGE-and-at-the-end-is-empty", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      expect(await engine.read(t, 0, 0)).toEqual([]);
      await engine.append(t, 0, valueRecords("v", 10));
      expect(await engine.read(t, 0, 10)).toEqual([]);
      const above = await expectCode(engine.read(t, 0, 11), "OFFSET_OUT_OF_RANGE");
      expect((above as unknown as { context: Record<string, unknown> }).context).toMatchObject({ topic: t, partition: 0, offset: 11, earliest: 0, end: 10 });
      const below = await expectCode(engine.read(t, 0, -1), "OFFSET_OUT_OF_RANGE");
      expect((below as unknown as { context: Record<string, unknown> }).context).toMatchObject({ offset: -1, earliest: 0, end: 10 });
    });

    it("headers-null-key-and-empty-value-round-trip-distinctly", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      const big = new Uint8Array(200_000).map((_, i) => (i * 31) & 0xff);
      const input: RecordInput[] = [
        { key: null, value: null },
        { key: new Uint8Array(0), value: new Uint8Array(0) },
        { key: bytes("k"), value: null, headers: {} },
        { key: null, value: bytes("v"), headers: { "content-type": bytes("text/plain"), empty: new Uint8Array(0), "ünïcode-name": bytes("x") } },
        { key: bytes("big"), value: big, headers: { bin: new Uint8Array([0, 255, 1, 254]) } },
      ];
      await engine.append(t, 0, input);
      const got = await engine.read(t, 0, 0);
      expect(got).toHaveLength(5);
      expect(got[0]!.key).toBeNull();
      expect(got[0]!.value).toBeNull();
      expect(got[1]!.key).not.toBeNull();
      expect(got[1]!.key!.length).toBe(0);
      expect(got[1]!.value).not.toBeNull();
      expect(got[1]!.value!.length).toBe(0);
      expect(text(got[2]!.key)).toBe("k");
      expect(got[2]!.value).toBeNull();
      expect(got[2]!.headers).toEqual({});
      expect(Object.keys(got[3]!.headers).sort()).toEqual(["content-type", "empty", "ünïcode-name"]);
      expect(text(got[3]!.headers["content-type"]!)).toBe("text/plain");
      expect(got[3]!.headers["empty"]!.length).toBe(0);
      expect(text(got[3]!.headers["ünïcode-name"]!)).toBe("x");
      expect(Buffer.from(got[4]!.value!).equals(Buffer.from(big))).toBe(true);
      expect([...got[4]!.headers["bin"]!]).toEqual([0, 255, 1, 254]);
    });

    it("append-of-an-empty-batch-is-refused-with-BAD_REQUEST", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      await expectCode(engine.append(t, 0, []), "BAD_REQUEST");
      expect((await engine.offsets(t, 0)).endOffset).toBe(0);
    });

    it("acks-0-1-and-all-each-resolve-with-contiguous-offsets", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      const a0 = await engine.append(t, 0, valueRecords("a0", 3), { acks: 0 });
      const a1 = await engine.append(t, 0, valueRecords("a1", 3), { acks: 1 });
      const aAll = await engine.append(t, 0, valueRecords("aall", 3), { acks: "all" });
      expect([a0.baseOffset, a1.baseOffset, aAll.baseOffset]).toEqual([0, 3, 6]);
      await engine.flush();
      const all = await readAll(engine, t, 0);
      expect(all.map((r) => text(r.value))).toEqual(["a0-0", "a0-1", "a0-2", "a1-0", "a1-1", "a1-2", "aall-0", "aall-1", "aall-2"]);
    });

    it("concurrent-producers-to-one-partition-keep-per-producer-order", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      const producers = 12;
      const perProducer = 60;
      const results = await Promise.all(
        Array.from({ length: producers }, async (_, p) => {
          const acks = ([0, 1, "all"] as const)[p % 3]!;
          if (p % 2 === 0) {
            // fire-and-collect: later appends issued before earlier ones resolve
            const pending = Array.from({ length: perProducer }, (_, i) => engine.append(t, 0, [{ key: bytes(`p${p}`), value: bytes(`${p}:${i}`) }, { key: bytes(`p${p}`), value: bytes(`${p}:${i}b`) }], { acks }));
            return (await Promise.all(pending)).map((r) => r.baseOffset);
          }
          const offs: number[] = [];
          for (let i = 0; i < perProducer; i++) {
            offs.push((await engine.append(t, 0, [{ key: bytes(`p${p}`), value: bytes(`${p}:${i}`) }, { key: bytes(`p${p}`), value: bytes(`${p}:${i}b`) }], { acks })).baseOffset);
          }
          return offs;
        }),
      );
      for (const offs of results) for (let i = 1; i < offs.length; i++) expect(offs[i]!).toBeGreaterThan(offs[i - 1]!);
      const all = await readAll(engine, t, 0);
      expect(all).toHaveLength(producers * perProducer * 2);
      expect(all.map((r) => r.offset)).toEqual(all.map((_, i) => i));
      const seen = new Map<number, number>();
      for (let i = 0; i < all.length; i += 2) {
        // batches are atomic: a batch's two records are adjacent
        const [p, seq] = text(all[i]!.value)!.split(":").map(Number) as [number, number];
        expect(text(all[i + 1]!.value)).toBe(`${p}:${seq}b`);
        expect(seq).toBe((seen.get(p) ?? -1) + 1);
        seen.set(p, seq);
      }
      expect(seen.size).toBe(producers);
    });

    // --- time ---------------------------------------------------------------------------

    it("offsetForTimestamp-returns-the-first-offset-at-or-after-the-timestamp", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      expect(await engine.offsetForTimestamp(t, 0, 0)).toBe(0);
      for (let i = 0; i < 20; i++) {
        await engine.append(t, 0, [
          { key: null, value: bytes(`a${i}`), timestamp: 10_000 + i * 100 },
          { key: null, value: bytes(`b${i}`), timestamp: 10_000 + i * 100 + 50 },
        ]);
      }
      expect(await engine.offsetForTimestamp(t, 0, 0)).toBe(0);
      expect(await engine.offsetForTimestamp(t, 0, 10_000)).toBe(0);
      expect(await engine.offsetForTimestamp(t, 0, 10_001)).toBe(1);
      expect(await engine.offsetForTimestamp(t, 0, 10_050)).toBe(1);
      expect(await engine.offsetForTimestamp(t, 0, 10_051)).toBe(2);
      expect(await engine.offsetForTimestamp(t, 0, 11_000)).toBe(20);
      expect(await engine.offsetForTimestamp(t, 0, 11_949)).toBe(39);
      expect(await engine.offsetForTimestamp(t, 0, 11_950)).toBe(39);
      expect(await engine.offsetForTimestamp(t, 0, 11_951)).toBe(40); // none: end offset
      // out-of-order timestamps: the FIRST record with timestamp >= t wins
      await engine.append(t, 0, [{ key: null, value: bytes("late"), timestamp: 5_000 }]);
      await engine.append(t, 0, [{ key: null, value: bytes("future"), timestamp: 99_000 }]);
      expect(await engine.offsetForTimestamp(t, 0, 5_000)).toBe(0);
      expect(await engine.offsetForTimestamp(t, 0, 50_000)).toBe(41);
      expect(await engine.offsetForTimestamp(t, 0, 100_000)).toBe(42);
    });

    // --- tails --------------------------------------------------------------------------

    it("tail-delivers-catch-up-then-live-without-gap-or-duplicate", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      const catchUp = 3000;
      const live = 3000;
      for (let i = 0; i < catchUp; i += 100) await engine.append(t, 0, valueRecords(`c${i}`, 100));
      const got: LogRecord[] = [];
      const errors: Error[] = [];
      const start = 500;
      const tail = engine.tail(t, 0, start, {
        onRecords: async (records, where) => {
          expect(where.topic).toBe(t);
          expect(where.partition).toBe(0);
          got.push(...records);
          if (got.length % 7 === 0) await new Promise((r) => setTimeout(r, 1)); // a slow consumer now and then
        },
        onError: (err) => errors.push(err),
      });
      // appends while the tail is catching up and after
      const writers = [0, 1, 2].map(async (w) => {
        for (let i = 0; i < live / 3; i += 10) {
          await engine.append(t, 0, valueRecords(`w${w}-${i}`, 10), { acks: ([0, 1, "all"] as const)[w] });
          if (i % 200 === 0) await new Promise((r) => setImmediate(r)); // let the tail run between appends
        }
      });
      await Promise.all(writers);
      const total = catchUp + live;
      await waitFor(() => got.length >= total - start, { what: `${total - start} records at the tail` });
      // a marker after everything: the tail delivers in offset order, so once it has the marker nothing else is on its way
      const { baseOffset: marker } = await engine.append(t, 0, valueRecords("marker", 1));
      expect(marker).toBe(total);
      await waitFor(() => got.some((r) => r.offset === marker), { what: "the marker at the tail" });
      tail.close();
      expect(errors).toEqual([]);
      expect(got).toHaveLength(total - start + 1);
      expect(got.map((r) => r.offset)).toEqual(Array.from({ length: total - start + 1 }, (_, i) => start + i));
      const stored = await readAll(engine, t, 0, start);
      expect(got.map((r) => text(r.value))).toEqual(stored.map((r) => text(r.value)));
    });

    it("tail-from-the-end-offset-receives-only-new-records", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      await engine.append(t, 0, valueRecords("old", 5));
      const got: number[] = [];
      const tail = engine.tail(t, 0, 5, { onRecords: (rs) => void got.push(...rs.map((r) => r.offset)), onError: () => undefined });
      await engine.append(t, 0, valueRecords("new", 3));
      await waitFor(() => got.length >= 3, { what: "the new records at the tail" });
      // in offset order: an old record delivered at any time would come before these
      expect(got).toEqual([5, 6, 7]);
      tail.close();
    });

    it("tail-close-stops-delivery", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      let delivered = 0;
      const errors: Error[] = [];
      const tail = engine.tail(t, 0, 0, { onRecords: (rs) => void (delivered += rs.length), onError: (e) => errors.push(e) });
      await engine.append(t, 0, valueRecords("a", 4));
      await waitFor(() => delivered === 4, { what: "the first records at the tail" });
      tail.close();
      tail.close(); // idempotent
      // a witness tail at the same position: once it has had two more appends, the closed tail would have had them too
      let witnessed = 0;
      const witness = engine.tail(t, 0, 4, { onRecords: (rs) => void (witnessed += rs.length), onError: (e) => errors.push(e) });
      await engine.append(t, 0, valueRecords("b", 4));
      await waitFor(() => witnessed === 4, { what: "b at the witness tail" });
      await engine.append(t, 0, valueRecords("c", 4));
      await waitFor(() => witnessed === 8, { what: "c at the witness tail" });
      witness.close();
      expect(delivered).toBe(4);
      expect(errors).toEqual([]);
    });

    it("tail-below-the-earliest-offset-or-past-the-end-reports-OFFSET_OUT_OF_RANGE", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      await engine.append(t, 0, valueRecords("a", 2));
      const err = await new Promise<Error>((resolve) => engine.tail(t, 0, 3, { onRecords: () => undefined, onError: resolve }));
      expect(isTributaryError(err, "OFFSET_OUT_OF_RANGE")).toBe(true);
    });

    it("deleting-a-topic-stops-its-tails-with-UNKNOWN_TOPIC", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      let delivered = 0;
      const errP = new Promise<Error>((resolve) => engine.tail(t, 0, 0, { onRecords: (rs) => void (delivered += rs.length), onError: resolve }));
      await engine.append(t, 0, valueRecords("x", 1));
      await waitFor(() => delivered === 1, { what: "the tail to run (it has the record and waits for more)" });
      await engine.deleteTopic(t);
      const err = await errP;
      expect(isTributaryError(err, "UNKNOWN_TOPIC")).toBe(true);
    });

    // --- groups -------------------------------------------------------------------------

    it("group-offsets-commit-fetch-and-list", async () => {
      const t = topicName();
      const u = topicName();
      await engine.createTopic(t, { partitions: 3 });
      await engine.createTopic(u, {});
      const g = `group-${topicName()}`;
      expect(await engine.fetchOffset(g, t, 0)).toBeNull();
      expect((await engine.fetchGroupOffsets(g)).size).toBe(0);
      const before = Date.now();
      await engine.commitOffset(g, t, 0, 10, { metadata: "meta-0" });
      await engine.commitOffset(g, t, 2, 7);
      await engine.commitOffset(g, u, 0, 3, { metadata: "u" });
      await engine.commitOffset(g, t, 0, 12, { metadata: "meta-1" }); // overwrites
      const c = await engine.fetchOffset(g, t, 0);
      expect(c).toMatchObject({ offset: 12, epoch: null, metadata: "meta-1" });
      expect(c!.committedAt).toBeGreaterThanOrEqual(before - 1000);
      expect(await engine.fetchOffset(g, t, 2)).toMatchObject({ offset: 7, metadata: "" });
      expect(await engine.fetchOffset(g, t, 1)).toBeNull();
      const all = await engine.fetchGroupOffsets(g);
      expect([...all.keys()].sort()).toEqual([t, u].sort());
      expect([...all.get(t)!.entries()].map(([p, o]) => [p, o.offset]).sort()).toEqual([
        [0, 12],
        [2, 7],
      ]);
      expect(all.get(u)!.get(0)!.offset).toBe(3);
      const g2 = `${g}-other`;
      await engine.commitOffset(g2, u, 0, 1);
      const groups = await engine.listGroups();
      expect(groups).toContain(g);
      expect(groups).toContain(g2);
      expect(await engine.fetchOffset(g2, t, 0)).toBeNull();
    });

    it("committed-epoch-round-trips-per-partition-and-a-new-epoch-replaces-an-old-position", async () => {
      const t = topicName();
      await engine.createTopic(t, { partitions: 3 });
      const g = `group-${topicName()}`;
      const epoch0 = (await engine.offsets(t, 0)).epoch;
      await engine.commitOffset(g, t, 0, 10, { epoch: epoch0, metadata: "m" });
      await engine.commitOffset(g, t, 1, 4, { epoch: "an|old@epoch%" }); // opaque: any characters
      await engine.commitOffset(g, t, 2, 7); // unknown epoch
      expect(await engine.fetchOffset(g, t, 0)).toMatchObject({ offset: 10, epoch: epoch0, metadata: "m" });
      expect(await engine.fetchOffset(g, t, 1)).toMatchObject({ offset: 4, epoch: "an|old@epoch%", metadata: "" });
      expect(await engine.fetchOffset(g, t, 2)).toMatchObject({ offset: 7, epoch: null });
      const all = (await engine.fetchGroupOffsets(g)).get(t)!;
      expect([...all].map(([p, o]) => [p, o.offset, o.epoch]).sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([
        [0, 10, epoch0],
        [1, 4, "an|old@epoch%"],
        [2, 7, null],
      ]);
      // the same epoch moves on; another epoch is another history: it replaces the position even when lower
      await engine.commitOffset(g, t, 0, 15, { epoch: epoch0 });
      expect(await engine.fetchOffset(g, t, 0)).toMatchObject({ offset: 15, epoch: epoch0 });
      await engine.commitOffset(g, t, 1, 2, { epoch: "new-history" });
      expect(await engine.fetchOffset(g, t, 1)).toMatchObject({ offset: 2, epoch: "new-history" });
      await engine.commitOffset(g, t, 2, 3, { epoch: epoch0 }); // a known epoch replaces an unknown one
      expect(await engine.fetchOffset(g, t, 2)).toMatchObject({ offset: 3, epoch: epoch0 });
      expect((await engine.fetchOffset(g, t, 0))!.epoch).toBe(epoch0); // per partition: untouched by the others
      await expectCode(engine.commitOffset(g, t, 0, 1, { epoch: "" }), "BAD_REQUEST");
    });

    it("concurrent-commits-are-all-kept", async () => {
      const t = topicName();
      await engine.createTopic(t, { partitions: 8 });
      await Promise.all(Array.from({ length: 8 }, (_, p) => engine.commitOffset("cg", t, p, p * 10)));
      const offs = (await engine.fetchGroupOffsets("cg")).get(t)!;
      expect([...offs.entries()].map(([p, c]) => [p, c.offset]).sort((a, b) => a[0]! - b[0]!)).toEqual(Array.from({ length: 8 }, (_, p) => [p, p * 10]));
    });

    it("deleting-a-topic-forgets-its-committed-offsets", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      await engine.commitOffset("forget-g", t, 0, 5);
      await engine.deleteTopic(t);
      await engine.createTopic(t, {});
      expect(await engine.fetchOffset("forget-g", t, 0)).toBeNull();
    });

    // --- lifecycle ----------------------------------------------------------------------

    it("calls-after-close-fail-with-UNAVAILABLE", async () => {
      const t = topicName();
      await engine.createTopic(t, {});
      await engine.append(t, 0, valueRecords("x", 1));
      let delivered = 0;
      const tailErr = new Promise<Error>((resolve) => engine.tail(t, 0, 0, { onRecords: (rs) => void (delivered += rs.length), onError: resolve }));
      await waitFor(() => delivered === 1, { what: "the tail to run (it has the record and waits for more)" });
      await engine.close();
      await engine.close(); // idempotent
      expect(isTributaryError(await tailErr, "UNAVAILABLE")).toBe(true);
      await expectCode(engine.append(t, 0, valueRecords("x", 1)), "UNAVAILABLE");
      await expectCode(engine.read(t, 0, 0), "UNAVAILABLE");
      await expectCode(engine.createTopic(topicName(), {}), "UNAVAILABLE");
      await expectCode(engine.listTopics(), "UNAVAILABLE");
      await expectCode(engine.commitOffset("g", t, 0, 1), "UNAVAILABLE");
      await expectCode(engine.flush(), "UNAVAILABLE");
    });
  });
}
