import type { Cluster, Redis } from "ioredis";
import { TributaryError } from "../../errors.ts";
import type {
  AlterableTopicConfig,
  AppendOptions,
  CompactionStats,
  AppendResult,
  CommitOptions,
  CommittedOffset,
  LogEngine,
  LogRecord,
  PartitionInfo,
  ReadOptions,
  RecordInput,
  Tail,
  TailHandler,
  TopicConfig,
  TopicDescription,
} from "../log-engine.ts";
import { AppendNotifier } from "../tail-loop.ts";
import { isCompacted } from "../log-engine.ts";
import { connectClient, createClient, type RedisClient, type RedisTarget } from "../../redis/redis-connection.ts";
import { RedisErrorReporter, type FailureSeries } from "../../redis/redis-error-reporter.ts";
import { RedisAppender } from "./redis-appender.ts";
import { hwKey, RedisEngineCore, str } from "./redis-engine-core.ts";
import { RedisGroupOffsets } from "./redis-group-offsets.ts";
import type { RedisLogEngineOptions } from "./redis-log-engine-options.ts";
import { decodeEntry, recordSize, type RawEntry } from "./redis-record-codec.ts";
import { enforceRedisRetention } from "./redis-retention.ts";
import { compactRedis } from "./redis-compaction.ts";
import { SCRIPTS } from "./redis-scripts.ts";
import { startRedisTail } from "./redis-tail.ts";
import { RedisTopicAdmin } from "./redis-topic-admin.ts";
import { PartitionWatcher } from "./partition-watcher.ts";
import { parseRedisUrl } from "../../redis/redis-url.ts";

export type { RedisLogEngineOptions } from "./redis-log-engine-options.ts";

interface PartitionState {
  epoch: string;
  earliest: number;
  end: number;
}

interface ReadResult extends PartitionState {
  records: LogRecord[];
}

/**
 * LogEngine on Redis Streams (standalone, Sentinel or Cluster), for nodes that scale out.
 *
 * A partition is a stream `{<prefix>:<topic>:<partition>}:log` whose entry IDs are
 * `<offset>-<batch token>`, plus a meta hash under the same hash tag (epoch, end, earliest,
 * bytes). Appends run one Lua script that assigns contiguous offsets from the meta hash, so
 * concurrent appends from any number of nodes never interleave inside a batch. acks=all
 * pipelines `WAIT <replicas> <timeout>` behind the script on the same connection.
 *
 * Epoch rule (see docs/durability.md): the engine remembers, per partition, the highest state
 * it has seen (epoch, end, token of record end-1) and sends it with every append and read.
 * The script bumps the epoch when the stored history does not extend it (end went backwards,
 * or record end-1 has another token: a failover or a restart without persistence lost the
 * tail and offsets were reused). A lost meta hash gets a fresh epoch when re-created.
 * Tails started under the old epoch stop with STALE_EPOCH.
 *
 * Idempotent produce across nodes: the append script keeps, per partition and under the
 * same hash tag, each producer's last `producerWindow` (sequence, base offset) pairs, and
 * skips an entry it already holds (returning the stored offset), atomically with the append.
 * The state replicates and rolls back with the log it describes. Producers idle for
 * `producerIdleMs` are dropped by the periodic retention pass.
 *
 * Compaction (cleanupPolicy "compact"): see redis-compaction.ts; a periodic pass (every
 * `compactionCheckIntervalMs`) and `compact()`.
 *
 * Parts (internal): redis-engine-core.ts (connection, error mapping, topic cache, epoch
 * guard), redis-topic-admin.ts, redis-appender.ts, redis-group-offsets.ts, redis-tail.ts,
 * redis-retention.ts.
 */
export class RedisLogEngine implements LogEngine {
  readonly kind = "redis";
  readonly #core: RedisEngineCore;
  readonly #subscriber: RedisClient;
  readonly #watcher: PartitionWatcher;
  readonly #groupOffsets: RedisGroupOffsets;
  readonly #topicAdmin: RedisTopicAdmin;
  readonly #appender: RedisAppender;
  readonly #retentionTimer: NodeJS.Timeout;
  readonly #retentionFailures: FailureSeries;
  #retentionRunning = false;
  readonly #compactionTimer: NodeJS.Timeout | null;
  readonly #compactionFailures: FailureSeries;
  #compacting: Promise<CompactionStats> | null = null;

  private constructor(client: RedisClient, subscriber: RedisClient, options: RedisLogEngineOptions) {
    const notifier = new AppendNotifier();
    this.#core = new RedisEngineCore(client, options, notifier);
    this.#subscriber = subscriber;
    this.#groupOffsets = new RedisGroupOffsets(this.#core);
    this.#topicAdmin = new RedisTopicAdmin(this.#core, this.#groupOffsets);
    this.#appender = new RedisAppender(this.#core);
    this.#watcher = new PartitionWatcher(subscriber, notifier, options.tailPollMs ?? 1000, this.#core.reporter);
    this.#retentionFailures = this.#core.reporter.series("redis-retention", "redis.retention_failed", "redis.retention_recovered", { component: "log-engine" });
    this.#retentionTimer = setInterval(() => void this.#retentionPass(), options.retentionCheckIntervalMs ?? 30_000);
    this.#retentionTimer.unref();
    this.#compactionFailures = this.#core.reporter.series("compaction", "redis.compaction_failed", "redis.compaction_recovered", { component: "log-engine" });
    const compactionCheckMs = options.compactionCheckIntervalMs ?? 15_000;
    this.#compactionTimer = compactionCheckMs > 0 ? setInterval(() => void this.#compactionPass(), compactionCheckMs).unref() : null;
  }

  /** The periodic compaction pass: a failure is logged and counted (task "compaction"); the next pass resumes from each partition's cursor. */
  async #compactionPass(): Promise<void> {
    if (this.#compacting) return;
    let failed = false;
    const report = (err: unknown, context: Record<string, unknown>): void => {
      failed = true;
      if (!this.#core.closed) this.#compactionFailures.failed(err, context);
    };
    try {
      await this.#compactSerial(undefined, {}, report);
      if (!failed) this.#compactionFailures.recovered();
    } catch (err) {
      report(err, {});
    }
  }

  /**
   * The periodic retention pass. A failure (Redis unreachable, a script error) is logged and
   * counted; the pass stops at the partition that failed, so records past retention and idle
   * producers stay until the next pass, which starts over. Not run twice at once.
   */
  /** Retention and compaction passes since connect (metrics). */
  readonly #runs = { retention: 0, compaction: 0 };

  async #retentionPass(): Promise<void> {
    if (this.#retentionRunning) return;
    this.#retentionRunning = true;
    try {
      await this.enforceRetention();
      this.#retentionFailures.recovered();
    } catch (err) {
      if (!this.#core.closed) this.#retentionFailures.failed(err);
    } finally {
      this.#retentionRunning = false;
    }
  }

  /**
   * Connects to Redis (fails with UNAVAILABLE if it cannot) and returns the engine. Failures of
   * the engine's own work (connection errors, retention pass, notification subscriptions) go
   * to `options.reporter`.
   */
  static async connect(options: RedisLogEngineOptions): Promise<RedisLogEngine> {
    const target: RedisTarget = {
      ...options,
      commandTimeoutMs: Math.max(options.commandTimeoutMs ?? 5000, (options.waitTimeoutMs ?? 1000) + 1000),
    };
    const reporter = options.reporter ?? RedisErrorReporter.standalone();
    // Connection errors are logged and counted by the reporter; commands meanwhile fail with UNAVAILABLE for their callers.
    const client = createClient(target, { role: "commands", component: "log-engine", reporter });
    const subscriber = createClient(target, { role: "subscriber", component: "log-engine", reporter });
    try {
      await connectClient(client, target);
      await connectClient(subscriber, target);
    } catch (err) {
      client.disconnect();
      subscriber.disconnect();
      throw err;
    }
    // Not fatal: a script that is not loaded runs by EVAL (RedisScript.run falls back on NOSCRIPT
    // and loads it that way), so only the first call of each script on each node costs more.
    await preloadScripts(client).catch((err: unknown) => reporter.report("redis-script-preload", "redis.script_preload_failed", err, { component: "log-engine" }));
    return new RedisLogEngine(client, subscriber, { ...options, reporter });
  }

  // --- topics ------------------------------------------------------------------------------

  async createTopic(name: string, config: Partial<TopicConfig>): Promise<TopicDescription> {
    await this.#topicAdmin.create(name, config);
    return this.describeTopic(name);
  }

  async deleteTopic(name: string): Promise<void> {
    await this.#topicAdmin.delete(name);
  }

  async alterTopicConfig(name: string, changes: Partial<AlterableTopicConfig>): Promise<TopicDescription> {
    await this.#topicAdmin.alter(name, changes);
    return this.describeTopic(name);
  }

  /** Compacts now (see `LogEngine.compact` and redis-compaction.ts); one pass at a time per engine. */
  async compact(topic?: string, options: { force?: boolean; now?: number } = {}): Promise<CompactionStats> {
    return this.#compactSerial(topic, options, undefined);
  }

  async #compactSerial(topic: string | undefined, options: { force?: boolean; now?: number }, report: ((err: unknown, context: Record<string, unknown>) => void) | undefined): Promise<CompactionStats> {
    this.#core.assertOpen();
    const previous = this.#compacting;
    const run = (async () => {
      if (previous) await previous.catch(() => undefined); // its failure went to its own caller
      this.#runs.compaction++;
      return compactRedis(this.#core, () => this.listTopics(), topic, options, report);
    })();
    this.#compacting = run;
    try {
      return await run;
    } finally {
      if (this.#compacting === run) this.#compacting = null;
    }
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    this.#core.assertOpen();
    const t = await this.#core.topic(name, true);
    const partitionInfo = await Promise.all(Array.from({ length: t.partitions }, (_, p) => this.offsets(name, p)));
    return { name, ...t, partitionInfo };
  }

  listTopics(): Promise<string[]> {
    return this.#topicAdmin.list();
  }

  // --- records -----------------------------------------------------------------------------

  append(topic: string, partition: number, records: RecordInput[], options: AppendOptions = {}): Promise<AppendResult> {
    return this.#appender.append(topic, partition, records, options);
  }

  async read(topic: string, partition: number, offset: number, options: ReadOptions = {}): Promise<LogRecord[]> {
    return (await this.#read(topic, partition, offset, options, null)).records;
  }


  /** Reads; with `expectedEpoch`, a changed epoch fails STALE_EPOCH before any range check. */
  async #read(topic: string, partition: number, offset: number, options: ReadOptions, expectedEpoch: string | null): Promise<ReadResult> {
    this.#core.assertOpen();
    if (!Number.isSafeInteger(offset)) {
      throw new TributaryError("OFFSET_OUT_OF_RANGE", `offset ${String(offset)} is not an integer`, { topic, partition, offset });
    }
    const maxRecords = Math.max(1, Math.min(options.maxRecords ?? 500, 10_000));
    const state = await this.#readState(topic, partition, offset, maxRecords);
    // Compaction deletes records (gaps): allowed once a compaction pass ran on the partition, or on a compacted topic.
    const gaps = state.compacted || isCompacted((await this.#core.topic(topic)).cleanupPolicy);
    if (expectedEpoch !== null && state.epoch !== expectedEpoch) {
      throw new TributaryError("STALE_EPOCH", `the history of ${topic}/${partition} changed (epoch ${expectedEpoch} → ${state.epoch}); reset by policy`, {
        topic, partition, epoch: state.epoch, staleEpoch: expectedEpoch, offset,
      });
    }
    if (offset < state.earliest || offset > state.end) {
      throw new TributaryError("OFFSET_OUT_OF_RANGE", `offset ${offset} is outside [${state.earliest}, ${state.end}] of ${topic}/${partition}`, {
        topic, partition, offset, earliest: state.earliest, end: state.end,
      });
    }
    const ctx = { topic, partition };
    const records: LogRecord[] = [];
    let bytes = 0;
    for (const raw of state.entries) {
      const { token: _t, ...rec } = decodeEntry(raw, ctx);
      const expected = records.length === 0 ? offset : records[records.length - 1]!.offset + 1;
      if (gaps ? rec.offset < expected : rec.offset !== expected) {
        throw new TributaryError("CORRUPT_RECORD", `record ${offset + records.length} of ${topic}/${partition} is missing (found ${rec.offset})`, ctx);
      }
      const size = recordSize(rec);
      if (records.length > 0 && options.maxBytes !== undefined && bytes + size > options.maxBytes) break;
      records.push(rec);
      bytes += size;
    }
    return { epoch: state.epoch, earliest: state.earliest, end: state.end, records };
  }

  /** read.lua with the epoch guard; recovers a missing partition once. */
  async #readState(topic: string, partition: number, offset: number, count: number): Promise<PartitionState & { entries: RawEntry[]; compacted: boolean }> {
    await this.#core.partitionTopic(topic, partition);
    const key = hwKey(topic, partition);
    const keys = [this.#core.keys.log(topic, partition), this.#core.keys.meta(topic, partition)];
    const run = (): Promise<unknown[]> =>
      this.#core.call({ topic, partition }, async () => (await SCRIPTS.read.run(this.#core.client, keys, [...this.#core.guardArgs(key), offset, count])) as unknown[]);
    let reply = await run();
    if (str(reply[0]) === "NOMETA") {
      await this.#core.recoverPartition(topic, partition);
      reply = await run();
      if (str(reply[0]) === "NOMETA") throw new TributaryError("UNKNOWN_TOPIC", `topic ${topic} does not exist`, { topic, partition });
    }
    const epoch = str(reply[1]);
    const earliest = Number(str(reply[2]));
    const end = Number(str(reply[3]));
    this.#core.observe(key, { epoch, end, token: str(reply[4]) });
    return { epoch, earliest, end, entries: (reply[6] as RawEntry[]) ?? [], compacted: Number(reply[7] ?? 0) === 1 };
  }

  async offsets(topic: string, partition: number): Promise<PartitionInfo> {
    this.#core.assertOpen();
    const s = await this.#readState(topic, partition, -1, 0);
    return { partition, earliestOffset: s.earliest, endOffset: s.end, epoch: s.epoch };
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    this.#core.assertOpen();
    await this.#core.partitionTopic(topic, partition);
    const keys = [this.#core.keys.log(topic, partition), this.#core.keys.meta(topic, partition)];
    const reply = (await this.#core.call({ topic, partition }, () => SCRIPTS.offsetForTimestamp.run(this.#core.client, keys, [timestamp]))) as unknown[];
    if (str(reply[0]) === "NOMETA") {
      await this.#core.recoverPartition(topic, partition);
      return this.offsetForTimestamp(topic, partition, timestamp);
    }
    return Number(str(reply[1]));
  }

  tail(topic: string, partition: number, fromOffset: number, handler: TailHandler): Tail {
    this.#core.assertOpen();
    const reads = {
      epoch: async (t: string, p: number) => (await this.offsets(t, p)).epoch,
      read: async (t: string, p: number, offset: number, options: ReadOptions, expectedEpoch: string | null) =>
        (await this.#read(t, p, offset, options, expectedEpoch)).records,
    };
    return startRedisTail(this.#core, this.#watcher, reads, topic, partition, fromOffset, handler);
  }

  // --- committed offsets ------------------------------------------------------------------

  commitOffset(group: string, topic: string, partition: number, offset: number, options?: CommitOptions): Promise<void> {
    return this.#groupOffsets.commit(group, topic, partition, offset, options);
  }

  fetchOffset(group: string, topic: string, partition: number): Promise<CommittedOffset | null> {
    return this.#groupOffsets.fetch(group, topic, partition);
  }

  fetchGroupOffsets(group: string): Promise<Map<string, Map<number, CommittedOffset>>> {
    return this.#groupOffsets.fetchGroup(group);
  }

  listGroups(): Promise<string[]> {
    return this.#groupOffsets.listGroups();
  }

  // --- lifecycle ---------------------------------------------------------------------------

  /** Makes acknowledged appends as durable as acks=all would (WAIT on every primary). */
  async flush(): Promise<void> {
    const core = this.#core;
    core.assertOpen();
    const replicas = core.options.replicas ?? 0;
    if (replicas === 0) return;
    const client = core.client;
    const nodes: Redis[] = (client as Cluster).isCluster ? (client as Cluster).nodes("master") : [client as Redis];
    await core.call({}, () => Promise.all(nodes.map((n) => n.call("WAIT", replicas, core.waitTimeoutMs()))));
  }

  async close(): Promise<void> {
    const core = this.#core;
    if (core.closed) return;
    core.closed = true;
    clearInterval(this.#retentionTimer);
    if (this.#compactionTimer) clearInterval(this.#compactionTimer);
    this.#watcher.close();
    core.notifier.notifyAll(); // tails observe the closed engine and stop
    core.client.disconnect();
    this.#subscriber.disconnect();
  }

  /**
   * Applies retention to every partition of every topic now (also runs periodically), and
   * forgets the producers idle for `producerIdleMs`.
   */
  enforceRetention(): Promise<void> {
    this.#runs.retention++;
    return enforceRedisRetention(this.#core, () => this.listTopics());
  }

  /** Retention and compaction passes since connect (`tributary_log_maintenance_runs_total`). */
  maintenanceRuns(): { retention: number; compaction: number } {
    return { ...this.#runs };
  }
}

async function preloadScripts(client: RedisClient): Promise<void> {
  const nodes: Redis[] = (client as Cluster).isCluster ? (client as Cluster).nodes("master") : [client as Redis];
  await Promise.all(nodes.flatMap((n) => Object.values(SCRIPTS).map((s) => n.script("LOAD", s.lua))));
}

/** Builds an engine from one URL (for `--engine redis --redis <url>`); forms in redis/redis-url.ts. */
export async function createRedisEngineFromUrl(url: string): Promise<RedisLogEngine> {
  return RedisLogEngine.connect(parseRedisUrl(url));
}
