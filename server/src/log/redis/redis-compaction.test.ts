/**
 * Redis engine compaction beyond the shared contract (test/contract/log-engine-compaction-contract.ts,
 * run on standalone and Cluster in redis-log-engine.test.ts): many writes over 1,000 keys,
 * the periodic pass, and how its failures are reported. Real redis-server processes; the
 * tests fail (never skip) when one cannot start.
 */
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { startRedis } from "../../../../test/helpers/redis-harness.ts";
import { waitFor } from "../../../../test/helpers/wait.ts";
import { readAllGapSafe } from "../../../../test/contract/log-engine-compaction-contract.ts";
import { createLogger } from "../../logger.ts";
import { Metrics } from "../../metrics/metrics.ts";
import { RedisErrorReporter } from "../../redis/redis-error-reporter.ts";
import type { RecordInput } from "../log-engine.ts";
import { RedisLogEngine } from "./redis-log-engine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function compactionErrors(metrics: Metrics): Promise<number> {
  const { values } = await metrics.backgroundErrors.get();
  return values.find((v) => v.labels.task === "compaction")?.value ?? Number.NaN;
}

describe("RedisLogEngine compaction", () => {
  // 100,000 rather than the file engine's 1,000,000: every append and every compaction step
  // is a Lua script on one single-threaded Redis (~5 Redis commands per record indexed,
  // ~40,000 records/s here), so 1M writes take ~1 min on this 2-core box, too long for the
  // suite; the bench (npm run bench -- compaction) reports the rate at 200,000. The shape of
  // the result does not depend on the count.
  it("compacts-100,000-writes-over-1,000-keys-to-1,000-live-records", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.destroy());
    const engine = await RedisLogEngine.connect({ url: redis.url, keyPrefix: "c100k", maxBatchBytes: 8 << 20, compactionCheckIntervalMs: 0 });
    cleanups.push(() => engine.close());
    await engine.createTopic("keyed", { cleanupPolicy: "compact", retentionMs: null });
    const keys = 1000;
    const writes = 100_000;
    const last = new Map<string, number>();
    for (let base = 0; base < writes; base += 1000) {
      const records: RecordInput[] = [];
      for (let i = 0; i < 1000; i++) {
        const n = base + i;
        const k = `key-${(n * 7919) % keys}`;
        records.push({ key: enc.encode(k), value: enc.encode(`v${n}`) });
        last.set(k, n);
      }
      await engine.append("keyed", 0, records);
    }
    const started = performance.now();
    const stats = await engine.compact("keyed", { force: true });
    const ms = performance.now() - started;
    const all = await readAllGapSafe(engine, "keyed", 0, 0);
    console.log(`redis compaction of ${writes} writes over ${keys} keys: ${ms.toFixed(0)} ms, ${stats.recordsRemoved} removed, ${all.length} left, ${stats.bytesBefore} → ${stats.bytesAfter} bytes`);
    expect(stats.recordsRead).toBe(writes);
    expect(stats.recordsRemoved).toBe(writes - keys);
    expect(all.length).toBe(keys);
    for (const r of all) expect(Number(dec.decode(r.value!).slice(1))).toBe(last.get(dec.decode(r.key!)));
    expect((await engine.offsets("keyed", 0)).endOffset).toBe(writes);

    // Incremental: the next pass looks only at what was written since.
    await engine.append("keyed", 0, [{ key: enc.encode("key-1"), value: enc.encode("again") }]);
    const next = await engine.compact("keyed", { force: true });
    expect(next).toMatchObject({ recordsRead: 1, recordsRemoved: 1 });
  }, 60_000);

  it("a-history-rewritten-under-the-cleaner-resets-it-and-no-other-keys-record-is-deleted", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.destroy());
    const engine = await RedisLogEngine.connect({ url: redis.url, keyPrefix: "crb", compactionCheckIntervalMs: 0 });
    cleanups.push(() => engine.close());
    await engine.createTopic("kv", { cleanupPolicy: "compact" });
    for (let round = 0; round < 5; round++) {
      await engine.append("kv", 0, Array.from({ length: 10 }, (_, k) => ({ key: enc.encode(`a${k}`), value: enc.encode(`r${round}`) })));
    }
    await engine.compact("kv", { force: true });
    // Compacted: a0..a9 of round 4 at offsets 40..49, cursor at 50. A failover that lost the
    // last 5 records, as Redis can leave it (entries gone, end back, same epoch: nobody saw
    // the lost tail), then other keys reuse offsets 45..49 and a5..a9 are written again.
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.quit());
    const log = "{crb:kv:0}:log";
    const meta = "{crb:kv:0}:meta";
    const tail = (await raw.xrevrange(log, "+", "-", "COUNT", 5)).map(([id]) => id);
    expect(tail.map((id) => Number(id.split("-")[0]))).toEqual([49, 48, 47, 46, 45]);
    await raw.xdel(log, ...tail);
    const lastId = (await raw.xrevrange(log, "+", "-", "COUNT", 1))[0]![0];
    await raw.call("XSETID", log, lastId); // the replica's stream never had 45..49
    await raw.hset(meta, "end", "45", "tok", lastId.split("-")[1]!);
    const other = await RedisLogEngine.connect({ url: redis.url, keyPrefix: "crb", compactionCheckIntervalMs: 0 });
    cleanups.push(() => other.close());
    const { baseOffset } = await other.append("kv", 0, Array.from({ length: 5 }, (_, k) => ({ key: enc.encode(`b${k}`), value: enc.encode("new") })));
    expect(baseOffset).toBe(45); // offsets 45..49 reused by other keys
    await other.append("kv", 0, Array.from({ length: 5 }, (_, k) => ({ key: enc.encode(`a${k + 5}`), value: enc.encode("r5") })));
    await other.compact("kv", { force: true });
    const last = new Map<string, string>();
    const all = await readAllGapSafe(other, "kv", 0, 0);
    for (const r of all) last.set(dec.decode(r.key!), dec.decode(r.value!));
    for (let k = 0; k < 5; k++) {
      expect(last.get(`b${k}`), `b${k}`).toBe("new"); // not deleted as if it were a5..a9's old record at that offset
      expect(last.get(`a${k}`), `a${k}`).toBe("r4");
      expect(last.get(`a${k + 5}`), `a${k + 5}`).toBe("r5");
    }
    expect(all.length).toBe(15);

    // A new epoch (a failover the engines noticed) drops the cleaner's state: it is rebuilt from the log.
    await raw.hset(meta, "epoch", "after-failover");
    await other.append("kv", 0, [{ key: enc.encode("b0"), value: enc.encode("newer") }]);
    const rebuilt = await other.compact("kv", { force: true });
    expect(rebuilt.recordsRead).toBe(16); // the whole log indexed again
    expect(rebuilt.recordsRemoved).toBe(1);
  });

  it("the-periodic-pass-compacts-by-itself-and-its-failures-are-logged-and-counted", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.destroy());
    const lines: Array<Record<string, unknown>> = [];
    const metrics = new Metrics({ defaultMetrics: false });
    const reporter = new RedisErrorReporter(createLogger("debug", (l) => lines.push(JSON.parse(l) as Record<string, unknown>)), metrics);
    const engine = await RedisLogEngine.connect({ url: redis.url, keyPrefix: "cbg", compactionCheckIntervalMs: 50, reporter });
    cleanups.push(() => engine.close());
    await engine.createTopic("auto", { cleanupPolicy: "compact", minCleanableDirtyRatio: 0.5 });
    for (let round = 0; round < 10; round++) {
      await engine.append("auto", 0, Array.from({ length: 20 }, (_, k) => ({ key: enc.encode(`k${k}`), value: enc.encode(`r${round}`) })));
    }
    await waitFor(async () => (await readAllGapSafe(engine, "auto", 0, 0)).length === 20, { what: "the periodic pass to leave one record per key" });
    expect(await compactionErrors(metrics)).toBe(0);

    await redis.stop("SIGKILL");
    await waitFor(async () => (await compactionErrors(metrics)) >= 1, { what: "a failed compaction pass to be counted" });
    expect(lines.filter((l) => l.event === "redis.compaction_failed")).toEqual([
      expect.objectContaining({ level: "warn", task: "compaction", component: "log-engine", code: "UNAVAILABLE" }),
    ]);
  });
});
