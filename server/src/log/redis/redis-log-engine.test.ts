import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  startRedis,
  startRedisCluster,
  startSentinelSetup,
  type RedisClusterSetup,
  type RedisServer,
  type SentinelSetup,
} from "../../../../test/helpers/redis-harness.ts";
import { isTributaryError, type TributaryError } from "../../errors.ts";
import { runLogEngineContract } from "../../../../test/contract/log-engine-contract.ts";
import { runCompactionContract } from "../../../../test/contract/log-engine-compaction-contract.ts";
import { retryUntilOk, waitFor } from "../../../../test/helpers/wait.ts";
import type { LogRecord } from "../log-engine.ts";
import { createRedisEngineFromUrl, RedisLogEngine, type RedisLogEngineOptions } from "./redis-log-engine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string): Uint8Array => enc.encode(s);
const text = (b: Uint8Array | null): string => (b === null ? "" : dec.decode(b));
const prefix = (): string => `t${randomBytes(4).toString("hex")}`;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (err) {
    return isTributaryError(err) ? err.code : `not a TributaryError: ${String(err)}`;
  }
}

async function readAll(engine: RedisLogEngine, topic: string, partition: number): Promise<LogRecord[]> {
  const { earliestOffset, endOffset } = await engine.offsets(topic, partition);
  const out: LogRecord[] = [];
  for (let next = earliestOffset; next < endOffset; ) {
    const page = await engine.read(topic, partition, next, { maxRecords: 1000 });
    out.push(...page);
    next = page[page.length - 1]!.offset + 1;
  }
  return out;
}

// One standalone server for the contract and the Redis-specific tests of this file.
let standalone: RedisServer;
beforeAll(async () => {
  standalone = await startRedis();
});
afterAll(async () => {
  await standalone?.destroy();
});

runLogEngineContract("redis standalone", async () => {
  const engine = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: prefix() });
  return { engine, cleanup: () => engine.close() };
});

runCompactionContract("redis standalone", async () => {
  const engine = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: prefix(), compactionCheckIntervalMs: 0 });
  return { engine, cleanup: () => engine.close() };
});

describe("RedisLogEngine on Redis Cluster (3 primaries + 3 replicas)", () => {
  let cluster: RedisClusterSetup;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  runLogEngineContract("redis cluster", async () => {
    const engine = await RedisLogEngine.connect({ cluster: cluster.startupNodes, keyPrefix: prefix() });
    return { engine, cleanup: () => engine.close() };
  });

  runCompactionContract("redis cluster", async () => {
    const engine = await RedisLogEngine.connect({ cluster: cluster.startupNodes, keyPrefix: prefix(), compactionCheckIntervalMs: 0 });
    return { engine, cleanup: () => engine.close() };
  });

  it("spreads-partitions-over-shards-and-acks-all-waits-for-the-shard-replica", async () => {
    const p = prefix();
    const engine = await RedisLogEngine.connect({ cluster: cluster.startupNodes, keyPrefix: p, replicas: 1, waitTimeoutMs: 2000 });
    try {
      await engine.createTopic("spread", { partitions: 12 });
      for (let i = 0; i < 12; i++) {
        const r = await engine.append("spread", i, [{ key: null, value: bytes(`v${i}`) }], { acks: "all" });
        expect(r.baseOffset).toBe(0);
      }
      // every primary holds at least one partition stream
      const holders = new Set<number>();
      for (const node of cluster.nodes) {
        const c = new Redis(node.port, "127.0.0.1", { lazyConnect: true });
        await c.connect();
        const role = (await c.call("ROLE")) as unknown[];
        if (role[0] === "master") {
          const keys = await c.keys(`{${p}:spread:*}:log`);
          if (keys.length > 0) holders.add(node.port);
        }
        c.disconnect();
      }
      expect(holders.size).toBe(3);
    } finally {
      await engine.close();
    }
  });
});

describe("RedisLogEngine, Redis-specific behaviour (standalone)", () => {
  it("offsets-stay-contiguous-under-concurrent-appends-from-several-engines", async () => {
    const p = prefix();
    const engines = await Promise.all([1, 2, 3].map(() => RedisLogEngine.connect({ url: standalone.url, keyPrefix: p })));
    try {
      await engines[0]!.createTopic("conc", {});
      const results = await Promise.all(
        engines.flatMap((e, ei) =>
          Array.from({ length: 100 }, (_, i) =>
            e.append("conc", 0, [{ key: null, value: bytes(`${ei}:${i}:a`) }, { key: null, value: bytes(`${ei}:${i}:b`) }, { key: null, value: bytes(`${ei}:${i}:c`) }]),
          ),
        ),
      );
      const bases = results.map((r) => r.baseOffset).sort((a, b) => a - b);
      expect(bases).toEqual(Array.from({ length: 300 }, (_, i) => i * 3));
      const all = await readAll(engines[1]!, "conc", 0);
      expect(all.map((r) => r.offset)).toEqual(Array.from({ length: 900 }, (_, i) => i));
      for (let i = 0; i < all.length; i += 3) {
        const stem = text(all[i]!.value).slice(0, -2);
        expect([text(all[i + 1]!.value), text(all[i + 2]!.value)]).toEqual([`${stem}:b`, `${stem}:c`]);
      }
    } finally {
      await Promise.all(engines.map((e) => e.close()));
    }
  });

  it("all-tails-of-a-partition-share-one-notification-subscription", async () => {
    const p = prefix();
    const engine = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p });
    const raw = new Redis(standalone.port, "127.0.0.1");
    try {
      await engine.createTopic("shared", {});
      const got: number[][] = [[], [], [], [], []];
      const tails = got.map((g) => engine.tail("shared", 0, 0, { onRecords: (rs) => void g.push(...rs.map((r) => r.offset)), onError: () => {} }));
      const subscribers = async (): Promise<number> => Number(((await raw.call("PUBSUB", "SHARDNUMSUB", `{${p}:shared:0}:notify`)) as [string, number])[1]);
      await waitFor(async () => (await subscribers()) > 0, { timeoutMs: 2000, what: "the partition's notification subscription" });
      // an append by another engine (no local notification) wakes every tail through Redis
      const other = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p, tailPollMs: 60_000 });
      await other.append("shared", 0, [{ key: null, value: bytes("x") }, { key: null, value: bytes("y") }]);
      await other.close();
      await waitFor(() => got.every((g) => g.length >= 2), { timeoutMs: 2000, what: "every tail to get both records" });
      expect(got).toEqual(got.map(() => [0, 1]));
      // every tail is running by now, and they share one subscription
      expect(await subscribers()).toBe(1);
      for (const t of tails) t.close();
      await waitFor(async () => (await subscribers()) === 0, { timeoutMs: 2000, what: "the subscription to go with the last tail" });
    } finally {
      raw.disconnect();
      await engine.close();
    }
  });

  it("retention-by-time-and-bytes-moves-the-earliest-offset-and-reads-below-fail", async () => {
    const p = prefix();
    const engine = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p });
    try {
      await engine.createTopic("ret-time", { retentionMs: 60_000 });
      const old = Date.now() - 3_600_000;
      await engine.append("ret-time", 0, Array.from({ length: 10 }, (_, i) => ({ key: null, value: bytes(`old${i}`), timestamp: old })));
      await engine.append("ret-time", 0, Array.from({ length: 5 }, (_, i) => ({ key: null, value: bytes(`new${i}`) })));
      await engine.enforceRetention();
      const o = await engine.offsets("ret-time", 0);
      expect([o.earliestOffset, o.endOffset]).toEqual([10, 15]);
      expect(await codeOf(engine.read("ret-time", 0, 3))).toBe("OFFSET_OUT_OF_RANGE");
      expect(text((await engine.read("ret-time", 0, 10))[0]!.value)).toBe("new0");

      await engine.createTopic("ret-bytes", { retentionBytes: 1000 });
      for (let i = 0; i < 20; i++) await engine.append("ret-bytes", 0, [{ key: null, value: new Uint8Array(100).fill(i) }]);
      const b = await engine.offsets("ret-bytes", 0);
      expect(b.endOffset).toBe(20);
      expect(b.earliestOffset).toBe(10); // 100-byte records, 1000-byte budget
      expect((await engine.read("ret-bytes", 0, 10))[0]!.value![0]).toBe(10);
    } finally {
      await engine.close();
    }
  });

  it("epoch-bumps-when-the-tail-is-lost-and-offsets-are-reused-behind-the-engines-back", async () => {
    const p = prefix();
    const a = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p });
    const raw = new Redis(standalone.port, "127.0.0.1");
    try {
      await a.createTopic("lost", { partitions: 2 });
      for (const part of [0, 1]) await a.append("lost", part, Array.from({ length: 5 }, (_, i) => ({ key: null, value: bytes(`first${i}`) })));
      // what a lagging replica would have: the partition after 5 records
      const snap = async (part: number): Promise<Buffer[]> =>
        Promise.all([raw.dumpBuffer(`{${p}:lost:${part}}:log`), raw.dumpBuffer(`{${p}:lost:${part}}:meta`)]);
      const restore = async (part: number, s: Buffer[]): Promise<void> => {
        await raw.restore(`{${p}:lost:${part}}:log`, 0, s[0]!, "REPLACE");
        await raw.restore(`{${p}:lost:${part}}:meta`, 0, s[1]!, "REPLACE");
      };
      const snaps = [await snap(0), await snap(1)];
      const epoch0 = (await a.offsets("lost", 0)).epoch;
      for (const part of [0, 1]) await a.append("lost", part, Array.from({ length: 5 }, (_, i) => ({ key: null, value: bytes(`acked${i}`) })));
      let tailed = 0;
      const staleErr = new Promise<TributaryError>((resolve) =>
        a.tail("lost", 0, 0, { onRecords: (rs) => void (tailed = rs.at(-1)!.offset + 1), onError: (e) => resolve(e as TributaryError) }),
      );
      await waitFor(() => tailed === 10, { timeoutMs: 2000, what: "the tail to reach the end (offset 10)" });
      // failover that lost offsets 5..9: the partition rolls back, epoch and all
      await restore(0, snaps[0]!);
      await restore(1, snaps[1]!);
      // a fresh node (no memory of 5..9) writes new records under the reused offsets
      const b = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p });
      expect((await b.append("lost", 0, [{ key: null, value: bytes("reused") }])).baseOffset).toBe(5); // end now 6 < 10
      await b.append("lost", 1, Array.from({ length: 8 }, () => ({ key: null, value: bytes("reused") }))); // end 13 > 10
      // a remembers (epoch0, end 10, token of offset 9): both kinds of divergence are detected
      const e0 = (await a.offsets("lost", 0)).epoch;
      const e1 = (await a.offsets("lost", 1)).epoch;
      expect(e0).not.toBe(epoch0);
      expect(e1).not.toBe(epoch0);
      expect(isTributaryError(await staleErr, "STALE_EPOCH")).toBe(true);
      // every engine now sees the new epoch, and an undisturbed history does not bump again
      expect((await b.offsets("lost", 0)).epoch).toBe(e0);
      await a.append("lost", 0, [{ key: null, value: bytes("after") }]);
      expect((await a.offsets("lost", 0)).epoch).toBe(e0);
      // a whole partition lost (meta and stream gone): re-created with a fresh epoch
      await raw.del(`{${p}:lost:1}:log`, `{${p}:lost:1}:meta`);
      const r = await b.append("lost", 1, [{ key: null, value: bytes("fresh") }]);
      expect(r.baseOffset).toBe(0);
      const e1b = (await b.offsets("lost", 1)).epoch;
      expect(e1b).not.toBe(e1);
      expect(e1b).not.toBe(epoch0);
      await b.close();
    } finally {
      raw.disconnect();
      await a.close();
    }
  });

  it("committed-offsets-never-move-backwards-even-when-the-store-rolls-back", async () => {
    const p = prefix();
    const engine = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p });
    const raw = new Redis(standalone.port, "127.0.0.1");
    try {
      await engine.createTopic("cmt", {});
      await engine.commitOffset("g", "cmt", 0, 50, { metadata: "m50" });
      await engine.commitOffset("g", "cmt", 0, 40, { metadata: "m40" });
      expect(await engine.fetchOffset("g", "cmt", 0)).toMatchObject({ offset: 50, epoch: null, metadata: "m50" });
      // another engine (no memory) cannot lower it either: the compare-and-set only raises
      const other = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p });
      await other.commitOffset("g", "cmt", 0, 10);
      expect((await other.fetchOffset("g", "cmt", 0))!.offset).toBe(50);
      await other.close();
      // the store loses the last commit (failover rollback, cf. redis/redis#7105)
      await raw.hset(`{${p}:group:g}:offsets`, "cmt:0", `10|${Date.now()}|old`);
      expect((await engine.fetchOffset("g", "cmt", 0))!.offset).toBe(50);
      expect(await raw.hget(`{${p}:group:g}:offsets`, "cmt:0")).toMatch(/^50\|/); // repaired
      await raw.hset(`{${p}:group:g}:offsets`, "cmt:0", `10|${Date.now()}|old`);
      await engine.commitOffset("g", "cmt", 0, 20);
      expect((await engine.fetchGroupOffsets("g")).get("cmt")!.get(0)!.offset).toBe(50);
      await engine.commitOffset("g", "cmt", 0, 60, { metadata: "m60" });
      expect(await engine.fetchOffset("g", "cmt", 0)).toMatchObject({ offset: 60, epoch: null, metadata: "m60" });
    } finally {
      raw.disconnect();
      await engine.close();
    }
  });

  it("a-rolled-back-commit-is-repaired-under-the-epoch-it-was-committed-in-and-a-new-epoch-may-lower-it", async () => {
    const p = prefix();
    const engine = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p });
    const raw = new Redis(standalone.port, "127.0.0.1");
    const key = `{${p}:group:g}:offsets`;
    try {
      await engine.createTopic("ep", {});
      const e1 = (await engine.offsets("ep", 0)).epoch;
      await engine.commitOffset("g", "ep", 0, 50, { epoch: e1, metadata: "m|x" });
      expect(await raw.hget(key, "ep:0")).toMatch(new RegExp(`^50\\|\\d+@${e1}\\|m\\|x$`));
      // within the epoch the offset only rises, from this engine and from one without memory
      await engine.commitOffset("g", "ep", 0, 40, { epoch: e1 });
      const other = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p });
      await other.commitOffset("g", "ep", 0, 30, { epoch: e1 });
      expect(await other.fetchOffset("g", "ep", 0)).toMatchObject({ offset: 50, epoch: e1, metadata: "m|x" });
      await other.close();
      // the commits are lost (restart without persistence): repaired with their epoch, never as a position of today's history
      await raw.del(key);
      expect(await engine.fetchOffset("g", "ep", 0)).toMatchObject({ offset: 50, epoch: e1 });
      expect(await raw.hget(key, "ep:0")).toMatch(new RegExp(`^50\\|\\d+@${e1}\\|`));
      // a commit under another epoch is another history: it replaces the position, lower or not, and the floor follows it
      await engine.commitOffset("g", "ep", 0, 3, { epoch: "e2" });
      expect(await engine.fetchOffset("g", "ep", 0)).toMatchObject({ offset: 3, epoch: "e2" });
      await raw.hset(key, "ep:0", `1|${Date.now()}@e2|`);
      expect(await engine.fetchOffset("g", "ep", 0)).toMatchObject({ offset: 3, epoch: "e2" });
      // a value written before commits had epochs reads as epoch unknown
      await raw.hset(key, "ep:0", `7|123|legacy|meta`);
      const fresh = await RedisLogEngine.connect({ url: standalone.url, keyPrefix: p });
      expect(await fresh.fetchOffset("g", "ep", 0)).toEqual({ offset: 7, epoch: null, committedAt: 123, metadata: "legacy|meta" });
      await fresh.close();
    } finally {
      raw.disconnect();
      await engine.close();
    }
  });

  it("append-fails-fast-with-UNAVAILABLE-while-redis-is-down-and-loses-nothing-acked", async () => {
    const server = await startRedis({ persistent: true });
    const engine = await createRedisEngineFromUrl(`${server.url}?prefix=${prefix()}`);
    try {
      await engine.createTopic("down", {});
      const acked: string[] = [];
      for (let i = 0; i < 50; i++) {
        await engine.append("down", 0, [{ key: null, value: bytes(`a${i}`) }]);
        acked.push(`a${i}`);
      }
      await server.stop("SIGKILL");
      const t0 = Date.now();
      const codes = [];
      for (let i = 0; i < 5; i++) codes.push(await codeOf(engine.append("down", 0, [{ key: null, value: bytes(`lost${i}`) }])));
      const elapsed = Date.now() - t0;
      expect(codes).toEqual(["UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE"]);
      expect(elapsed).toBeLessThan(500); // fail fast, no offline queue
      const err = await engine.append("down", 0, [{ key: null, value: bytes("x") }]).catch((e: TributaryError) => e);
      expect((err as TributaryError).retriable).toBe(true);
      await server.start(); // same port and dir, AOF replayed
      // retried while the engine reconnects
      await retryUntilOk(() => engine.append("down", 0, [{ key: null, value: bytes("b0") }]), { timeoutMs: 5000, what: "an append once Redis is back" });
      acked.push("b0");
      const all = await readAll(engine, "down", 0);
      expect(all.map((r) => text(r.value))).toEqual(acked);
    } finally {
      await engine.close();
      await server.destroy();
    }
  });
});

describe("RedisLogEngine with Sentinel (primary + 2 replicas + 3 Sentinels)", () => {
  let setup: SentinelSetup;
  const opts = (): RedisLogEngineOptions => ({ sentinel: { sentinels: setup.sentinelNodes, name: setup.name }, replicas: 1, waitTimeoutMs: 1000 });
  beforeAll(async () => {
    setup = await startSentinelSetup();
  });
  afterAll(async () => {
    await setup?.destroy();
  });

  it("round-trips-records-with-acks-all-through-sentinel", async () => {
    const engine = await RedisLogEngine.connect({ ...opts(), keyPrefix: "smoke" });
    try {
      await engine.createTopic("smoke", { partitions: 2 });
      const r = await engine.append("smoke", 1, [{ key: bytes("k"), value: bytes("v"), headers: { h: bytes("1") } }], { acks: "all" });
      expect(r.baseOffset).toBe(0);
      const [rec] = await engine.read("smoke", 1, 0);
      expect([text(rec!.key), text(rec!.value), text(rec!.headers.h!)]).toEqual(["k", "v", "1"]);
    } finally {
      await engine.close();
    }
  });

  it("sigkill-of-the-primary-during-acks-all-produce-loses-no-acked-record", async () => {
    const engine = await RedisLogEngine.connect({ ...opts(), keyPrefix: "fault" });
    try {
      await engine.createTopic("fault", {});
      const acked = new Set<string>();
      let errors = 0;
      let killedAt = 0;
      let ackedAfterKill = 0;
      const producer = async (id: number): Promise<void> => {
        for (let i = 0; ; i++) {
          if (killedAt && ackedAfterKill >= 200) return;
          if (killedAt && Date.now() - killedAt > 25_000) return;
          const values = [0, 1, 2].map((j) => `p${id}-${i}-${j}`);
          try {
            await engine.append("fault", 0, values.map((v) => ({ key: null, value: bytes(v) })), { acks: "all" });
            for (const v of values) acked.add(v);
            if (killedAt) ackedAfterKill++;
          } catch (err) {
            expect(isTributaryError(err) && err.retriable, String(err)).toBe(true);
            errors++;
            await new Promise((r) => setTimeout(r, 20)); // the producer's retry backoff, not a synchronisation
          }
        }
      };
      const producers = [0, 1, 2, 3].map(producer);
      await waitFor(() => acked.size >= 600, { timeoutMs: 10_000, what: "records acked before the kill" });
      const primaryPort = await setup.currentPrimaryPort();
      const primary = [setup.primary, ...setup.replicas].find((s) => s.port === primaryPort)!;
      const ackedBeforeKill = acked.size;
      await primary.stop("SIGKILL");
      killedAt = Date.now();
      await Promise.all(producers);
      const failoverMs = Date.now() - killedAt;
      const stored = new Set((await readAll(engine, "fault", 0)).map((r) => text(r.value)));
      const lost = [...acked].filter((v) => !stored.has(v)).length;
      console.log(
        `[redis fault] acks=all WAIT 1: ${acked.size} records acked (${ackedBeforeKill} before SIGKILL), ${errors} retriable errors, ` +
          `failover + 200 acked batches in ${failoverMs} ms, acked records lost after failover: ${lost}`,
      );
      expect(ackedAfterKill).toBeGreaterThanOrEqual(200);
      expect(lost).toBe(0);
    } finally {
      await engine.close();
    }
  });

  it("acks-all-fails-with-NOT_ENOUGH_REPLICAS-when-the-replicas-are-stopped", async () => {
    const engine = await RedisLogEngine.connect({ ...opts(), keyPrefix: "nerep", waitTimeoutMs: 300 });
    const frozen: RedisServer[] = [];
    try {
      await engine.createTopic("nerep", {});
      expect((await engine.append("nerep", 0, [{ key: null, value: bytes("ok") }], { acks: "all" })).baseOffset).toBe(0);
      const primaryPort = await setup.currentPrimaryPort();
      for (const s of [setup.primary, ...setup.replicas]) {
        if (s.running && s.port !== primaryPort) {
          s.pause();
          frozen.push(s);
        }
      }
      const err = await engine.append("nerep", 0, [{ key: null, value: bytes("lonely") }], { acks: "all" }).catch((e: TributaryError) => e);
      expect(isTributaryError(err, "NOT_ENOUGH_REPLICAS")).toBe(true);
      expect((err as TributaryError).retriable).toBe(true);
      // acks=1 does not wait for replicas
      expect((await engine.append("nerep", 0, [{ key: null, value: bytes("one") }], { acks: 1 })).baseOffset).toBe(2);
    } finally {
      for (const s of frozen) s.resume();
      await engine.close();
    }
  });
});
