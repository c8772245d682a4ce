/**
 * Idempotent produce in the Redis engine: producer state stored per partition, next to the
 * log, so a (producerId, sequence) retried through ANOTHER engine (another node) is not
 * appended again and gets the first write's offset.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "../../../../test/helpers/redis-harness.ts";
import { waitFor } from "../../../../test/helpers/wait.ts";
import type { LogRecord, RecordInput } from "../log-engine.ts";
import { RedisLogEngine, type RedisLogEngineOptions } from "./redis-log-engine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const rec = (v: string): RecordInput => ({ key: null, value: enc.encode(v) });
const values = (records: LogRecord[]) => records.map((r) => dec.decode(r.value!));

let redis: RedisServer;
const engines: RedisLogEngine[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const e of engines) await e.close();
  await redis?.destroy();
});

/** Two engines (two nodes) on one Redis, one key prefix. */
async function twoNodes(options: Partial<RedisLogEngineOptions> = {}): Promise<[RedisLogEngine, RedisLogEngine]> {
  const keyPrefix = `p${randomBytes(4).toString("hex")}`;
  const a = await RedisLogEngine.connect({ url: redis.url, keyPrefix, ...options });
  const b = await RedisLogEngine.connect({ url: redis.url, keyPrefix, ...options });
  engines.push(a, b);
  await a.createTopic("t", { partitions: 1 });
  return [a, b];
}

describe("RedisLogEngine producer state (idempotent produce across nodes)", () => {
  it("appends a (producerId, sequence) once when it is retried through another engine, and both get the first offset", async () => {
    const [a, b] = await twoNodes();
    await a.append("t", 0, [rec("before")]);
    const first = await a.append("t", 0, [rec("x1"), rec("x2")], { producers: [{ producerId: "p1", sequence: 7, first: 0, count: 2 }] });
    expect(first.duplicates).toBeUndefined();
    const retry = await b.append("t", 0, [rec("x1"), rec("x2")], { producers: [{ producerId: "p1", sequence: 7, first: 0, count: 2 }] });
    expect(retry.duplicates).toEqual([{ entry: 0, baseOffset: first.baseOffset }]);
    expect(first.baseOffset).toBe(1);
    expect(values(await b.read("t", 0, 0))).toEqual(["before", "x1", "x2"]);
    expect((await a.offsets("t", 0)).endOffset).toBe(3);
  });

  it("skips only the duplicate requests of a merged batch; the others stay contiguous and in order", async () => {
    const [a, b] = await twoNodes();
    const s5 = await a.append("t", 0, [rec("s5")], { producers: [{ producerId: "p", sequence: 5, first: 0, count: 1 }] });
    // Batch on B: anonymous, p/4 (new, below p's highest sequence), p/5 (dup), q/0 (new), q/0 again (dup within the batch).
    const batch = ["anon", "s4", "s5-again", "q0a", "q0b", "q0-again"].map(rec);
    const r = await b.append("t", 0, batch, {
      producers: [
        { producerId: "p", sequence: 4, first: 1, count: 1 },
        { producerId: "p", sequence: 5, first: 2, count: 1 },
        { producerId: "q", sequence: 0, first: 3, count: 2 },
        { producerId: "q", sequence: 0, first: 5, count: 1 },
      ],
    });
    expect(r.baseOffset).toBe(1);
    expect(r.duplicates).toEqual([
      { entry: 1, baseOffset: s5.baseOffset },
      { entry: 3, baseOffset: 3 },
    ]);
    expect(values(await a.read("t", 0, 0))).toEqual(["s5", "anon", "s4", "q0a", "q0b"]);
    // p/4 is remembered too, though it arrived after p/5.
    const again = await a.append("t", 0, [rec("s4")], { producers: [{ producerId: "p", sequence: 4, first: 0, count: 1 }] });
    expect(again.duplicates).toEqual([{ entry: 0, baseOffset: 2 }]);
    expect((await a.offsets("t", 0)).endOffset).toBe(5);
  });

  it("a batch of only duplicates appends nothing, leaves the epoch alone and the next append continues the offsets", async () => {
    const [a, b] = await twoNodes();
    const w = await a.append("t", 0, [rec("w")], { producers: [{ producerId: "p", sequence: 0, first: 0, count: 1 }] });
    const epoch = (await a.offsets("t", 0)).epoch;
    const d = await b.append("t", 0, [rec("w")], { producers: [{ producerId: "p", sequence: 0, first: 0, count: 1 }] });
    expect(d.duplicates).toEqual([{ entry: 0, baseOffset: w.baseOffset }]);
    // B saw the partition through a duplicate only: its epoch guard must still accept the history.
    const next = await b.append("t", 0, [rec("n")]);
    expect(next.baseOffset).toBe(1);
    expect(await a.append("t", 0, [rec("m")])).toMatchObject({ baseOffset: 2 });
    expect((await b.offsets("t", 0)).epoch).toBe(epoch);
  });

  it("remembers the last producerWindow sequences of a producer per partition", async () => {
    const [a, b] = await twoNodes({ producerWindow: 4 });
    for (let seq = 0; seq < 6; seq++) await a.append("t", 0, [rec(`s${seq}`)], { producers: [{ producerId: "p", sequence: seq, first: 0, count: 1 }] });
    const recent = await b.append("t", 0, [rec("s2")], { producers: [{ producerId: "p", sequence: 2, first: 0, count: 1 }] });
    expect(recent.duplicates).toEqual([{ entry: 0, baseOffset: 2 }]);
    // Sequence 1 fell out of the window: written again (documented limit).
    const old = await b.append("t", 0, [rec("s1")], { producers: [{ producerId: "p", sequence: 1, first: 0, count: 1 }] });
    expect(old.duplicates).toBeUndefined();
    expect(old.baseOffset).toBe(6);
  });

  it("forgets producers idle for producerIdleMs in the retention pass, and a deleted topic's producer state goes with it", async () => {
    const [a, b] = await twoNodes({ producerIdleMs: 200 });
    await a.append("t", 0, [rec("old")], { producers: [{ producerId: "idle", sequence: 0, first: 0, count: 1 }] });
    const idleSince = Date.now(); // its last append was seen at or before this
    // the subject is idle time: the clock must pass producerIdleMs
    await waitFor(() => Date.now() > idleSince + 200, { timeoutMs: 1000, what: "producer `idle` to be idle for producerIdleMs" });
    await a.append("t", 0, [rec("fresh")], { producers: [{ producerId: "busy", sequence: 0, first: 0, count: 1 }] });
    await a.enforceRetention();
    const idle = await b.append("t", 0, [rec("old")], { producers: [{ producerId: "idle", sequence: 0, first: 0, count: 1 }] });
    expect(idle.duplicates).toBeUndefined();
    const busy = await b.append("t", 0, [rec("fresh")], { producers: [{ producerId: "busy", sequence: 0, first: 0, count: 1 }] });
    expect(busy.duplicates).toEqual([{ entry: 0, baseOffset: 1 }]);

    await a.deleteTopic("t");
    await a.createTopic("t", { partitions: 1 });
    const recreated = await b.append("t", 0, [rec("fresh")], { producers: [{ producerId: "busy", sequence: 0, first: 0, count: 1 }] });
    expect(recreated).toMatchObject({ baseOffset: 0 });
    expect(recreated.duplicates).toBeUndefined();
  });
});
