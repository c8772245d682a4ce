/**
 * `npm run bench -- compaction [--writes 1000000] [--keys 1000] [--retained 100000] [--rewrites 5] [--runs 3] [--redis-writes 200000]`
 *
 * Log compaction (cleanupPolicy "compact"), issue 11:
 *
 * 1. FileLogEngine: `--writes` keyed records over `--keys` keys (random keys, batches of
 *    1,000, 64 KiB segments), then one forced compaction pass: its time, records and bytes
 *    before/after, and what a reader from offset 0 sees (the compacted sealed part: at most
 *    one record per key; plus the active segment, never compacted, like Kafka).
 * 2. RedisLogEngine (a redis-server started for the bench): the same with `--redis-writes`
 *    (Redis runs every append and compaction step as a Lua script on one thread: the rate
 *    is the figure, the shape is the same).
 * 3. Node restart with `--retained` retained MQTT messages of 1 KB, each topic written
 *    `--rewrites` times (the history of a busy broker): exec → listening line and RSS of a
 *    `tributary start` on that data dir, never compacted vs compacted (the topic's 4 MiB
 *    segments, as the node creates it: the active segment, never compacted, holds at most
 *    4 MiB of history), medians of `--runs`, alternating. The data dir is written with the engine directly, in the
 *    `__mqtt.retained` record format (key = MQTT topic, value = payload).
 */
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { KEYED_TOPIC_CONFIG } from "../../server/src/broker/keyed-topic.ts";
import { FileLogEngine } from "../../server/src/log/file/file-log-engine.ts";
import type { LogEngine, RecordInput } from "../../server/src/log/log-engine.ts";
import { RedisLogEngine } from "../../server/src/log/redis/redis-log-engine.ts";
import { startRedis } from "../helpers/redis-harness.ts";
import { waitForLine } from "./bench-process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "server/bin/tributary.mjs");
const enc = new TextEncoder();

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Writes `writes` records over `keys` keys (LCG-random order) in batches of 1,000; returns the ms taken. */
async function writeKeyed(engine: LogEngine, topic: string, writes: number, keys: number): Promise<number> {
  let seed = 7;
  const started = performance.now();
  for (let base = 0; base < writes; base += 1000) {
    const records: RecordInput[] = [];
    for (let i = 0; i < Math.min(1000, writes - base); i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      records.push({ key: enc.encode(`key-${Math.floor((seed / 2 ** 31) * keys)}`), value: enc.encode(`value-${base + i}`) }); // high bits: an LCG's low bits cycle fast
    }
    await engine.append(topic, 0, records);
  }
  return performance.now() - started;
}

async function readerCount(engine: LogEngine, topic: string): Promise<{ records: number; keys: number }> {
  const { endOffset } = await engine.offsets(topic, 0);
  const keys = new Set<string>();
  let records = 0;
  let next = 0;
  while (next < endOffset) {
    const page = await engine.read(topic, 0, next, { maxRecords: 5000 });
    if (page.length === 0) break;
    records += page.length;
    for (const r of page) keys.add(Buffer.from(r.key!).toString("latin1"));
    next = page[page.length - 1]!.offset + 1;
  }
  return { records, keys: keys.size };
}

async function fileEngineCase(writes: number, keys: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "tributary-bench-compaction-"));
  try {
    const engine = await FileLogEngine.open({ dataDir: dir, fsync: "never", retentionCheckMs: 0, compactionCheckMs: 0, segmentBytes: 64 << 10 });
    await engine.createTopic("keyed", { cleanupPolicy: "compact", retentionMs: null });
    const writeMs = await writeKeyed(engine, "keyed", writes, keys);
    const segmentsBefore = engine.segmentBaseOffsets("keyed", 0).length;
    const started = performance.now();
    const stats = await engine.compact("keyed", { force: true });
    const compactMs = performance.now() - started;
    const seen = await readerCount(engine, "keyed");
    const activeBase = engine.segmentBaseOffsets("keyed", 0).at(-1)!;
    const inActive = writes - activeBase;
    process.stdout.write(
      `file engine: ${writes.toLocaleString("en")} writes over ${keys} keys written in ${(writeMs / 1000).toFixed(2)} s; ` +
        `compaction pass ${(compactMs / 1000).toFixed(2)} s (${Math.round(stats.recordsRead / (compactMs / 1000)).toLocaleString("en")} records/s)\n` +
        `  records ${writes.toLocaleString("en")} → ${seen.records.toLocaleString("en")} seen by a reader from offset 0 (${seen.keys} distinct keys): ` +
        `${(seen.records - inActive).toLocaleString("en")} in the compacted part + ${inActive.toLocaleString("en")} newest writes in the active segment (never compacted)\n` +
        `  sealed bytes ${mb(stats.bytesBefore)} → ${mb(stats.bytesAfter)}, segments ${segmentsBefore} → ${engine.segmentBaseOffsets("keyed", 0).length}\n`,
    );
    await engine.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function redisCase(writes: number, keys: number): Promise<void> {
  const redis = await startRedis();
  try {
    const engine = await RedisLogEngine.connect({ url: redis.url, keyPrefix: "bench", maxBatchBytes: 8 << 20, compactionCheckIntervalMs: 0 }); // only the measured pass
    await engine.createTopic("keyed", { cleanupPolicy: "compact", retentionMs: null });
    const writeMs = await writeKeyed(engine, "keyed", writes, keys);
    const started = performance.now();
    const stats = await engine.compact("keyed", { force: true });
    const compactMs = performance.now() - started;
    const seen = await readerCount(engine, "keyed");
    process.stdout.write(
      `redis engine: ${writes.toLocaleString("en")} writes over ${keys} keys written in ${(writeMs / 1000).toFixed(2)} s; ` +
        `compaction ${(compactMs / 1000).toFixed(2)} s (${Math.round(stats.recordsRead / (compactMs / 1000)).toLocaleString("en")} records/s)\n` +
        `  records ${writes.toLocaleString("en")} → ${seen.records.toLocaleString("en")} (${seen.keys} distinct keys), tracked bytes ${mb(stats.bytesBefore)} → ${mb(stats.bytesAfter)}\n`,
    );
    await engine.close();
  } finally {
    await redis.destroy();
  }
}

/** A data dir holding `__mqtt.retained` with `retained` topics × `rewrites` writes of 1 KB, round by round. */
async function retainedDataDir(retained: number, rewrites: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "tributary-bench-retained-"));
  const engine = await FileLogEngine.open({ dataDir: dir, fsync: "never", retentionCheckMs: 0, compactionCheckMs: 0 });
  await engine.createTopic("__mqtt.retained", KEYED_TOPIC_CONFIG); // as the node creates it: compacted, 4 MiB segments
  const payload = new Uint8Array(1024).fill(0x61);
  for (let round = 0; round < rewrites; round++) {
    for (let base = 0; base < retained; base += 1000) {
      const records: RecordInput[] = [];
      for (let i = base; i < Math.min(base + 1000, retained); i++) records.push({ key: enc.encode(`bench/retained/${i}`), value: payload });
      await engine.append("__mqtt.retained", 0, records);
    }
  }
  await engine.close();
  return dir;
}

function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

async function startOnce(dataDir: string): Promise<{ listeningMs: number; rssBytes: number }> {
  const started = performance.now();
  // --no-... none needed: the compaction timer first fires 15 s after start, after the measurement.
  const child = spawn(process.execPath, [BIN, "start", "--data-dir", dataDir, "--host", "127.0.0.1", "--port", "0", "--mqtt-port", "0", "--log-level", "warn"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForLine(child, /tributary listening http=/, "tributary", 120_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${stderr}`);
    });
    return { listeningMs: performance.now() - started, rssBytes: rssOf(child.pid!) };
  } finally {
    if (child.exitCode === null) {
      await new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      });
    }
  }
}

async function restartCase(retained: number, rewrites: number, runs: number): Promise<void> {
  const history = await retainedDataDir(retained, rewrites);
  const compacted = mkdtempSync(join(tmpdir(), "tributary-bench-retained-compacted-"));
  try {
    cpSync(history, compacted, { recursive: true });
    const engine = await FileLogEngine.open({ dataDir: compacted, fsync: "never", retentionCheckMs: 0, compactionCheckMs: 0 });
    const started = performance.now();
    const stats = await engine.compact("__mqtt.retained", { force: true });
    const compactMs = performance.now() - started;
    const after = await readerCount(engine, "__mqtt.retained");
    await engine.close();
    process.stdout.write(
      `retained: ${retained.toLocaleString("en")} topics × ${rewrites} writes of 1 KB = ${(retained * rewrites).toLocaleString("en")} records; ` +
        `compaction ${(compactMs / 1000).toFixed(2)} s → ${after.records.toLocaleString("en")} records (${after.keys.toLocaleString("en")} topics), sealed ${mb(stats.bytesBefore)} → ${mb(stats.bytesAfter)}\n`,
    );
    const samples: Record<"history" | "compacted", Array<{ listeningMs: number; rssBytes: number }>> = { history: [], compacted: [] };
    for (let i = 0; i < runs; i++) {
      // The node's own cleaner would compact `history` 15 s after start: each start uses a fresh copy.
      const copy = mkdtempSync(join(tmpdir(), "tributary-bench-retained-run-"));
      cpSync(history, copy, { recursive: true });
      try {
        samples.history.push(await startOnce(copy));
      } finally {
        rmSync(copy, { recursive: true, force: true });
      }
      samples.compacted.push(await startOnce(compacted));
    }
    for (const name of ["history", "compacted"] as const) {
      const ms = median(samples[name].map((s) => s.listeningMs));
      const rss = median(samples[name].map((s) => s.rssBytes));
      process.stdout.write(`  restart (${name === "history" ? "never compacted" : "compacted"}): exec → listening ${ms.toFixed(0)} ms, RSS ${mb(rss)} (median of ${runs}: ${samples[name].map((s) => s.listeningMs.toFixed(0)).join(", ")} ms)\n`);
    }
    const h = median(samples.history.map((s) => s.listeningMs));
    const c = median(samples.compacted.map((s) => s.listeningMs));
    process.stdout.write(`  compacted start is ${(h / c).toFixed(1)}x faster\n`);
  } finally {
    rmSync(history, { recursive: true, force: true });
    rmSync(compacted, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  const writes = arg(args, "writes", 1_000_000);
  const keys = arg(args, "keys", 1000);
  await fileEngineCase(writes, keys);
  await redisCase(arg(args, "redis-writes", 200_000), keys);
  await restartCase(arg(args, "retained", 100_000), arg(args, "rewrites", 5), arg(args, "runs", 3));
}
