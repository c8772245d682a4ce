import { randomBytes, randomInt } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { TributaryError } from "../../errors.ts";
import {
  DEFAULT_TOPIC_CONFIG,
  TOPIC_NAME_PATTERN,
  type AppendOptions,
  type AppendResult,
  type CommittedOffset,
  type LogEngine,
  type LogRecord,
  type PartitionInfo,
  type ReadOptions,
  type RecordInput,
  type Tail,
  type TailHandler,
  type TopicConfig,
  type TopicDescription,
} from "../log-engine.ts";
import { AppendNotifier, startTailLoop, type TailSource } from "../tail-loop.ts";
import { connectClient, createClient, type RedisClient, type RedisTarget } from "./redis-connection.ts";
import { mapRedisError } from "./redis-errors.ts";
import { RedisKeys } from "./redis-keys.ts";
import { decodeEntry, encodeRecord, recordSize, type RawEntry } from "./redis-record-codec.ts";
import { isNoScript, SCRIPTS } from "./redis-scripts.ts";
import { PartitionWatcher } from "./partition-watcher.ts";
import { parseRedisUrl } from "./redis-url.ts";

export interface RedisLogEngineOptions extends RedisTarget {
  /** Prefix of every key (default "trib"). Engines sharing a prefix share the data. */
  keyPrefix?: string;
  /**
   * Replicas that must acknowledge an acks=all append (WAIT). The topic's
   * replicationFactor - 1 applies when higher. Default 0.
   */
  replicas?: number;
  /** WAIT timeout for acks=all (default 1000 ms); past it the append fails NOT_ENOUGH_REPLICAS. */
  waitTimeoutMs?: number;
  /** Largest accepted batch, in record bytes (default 1 MiB). */
  maxBatchBytes?: number;
  /** Period of the retention pass over idle partitions (default 30 s). */
  retentionCheckIntervalMs?: number;
  /** Safety wake of tails, in case a notification is lost (default 1000 ms). */
  tailPollMs?: number;
  /** Idempotent produce: sequences remembered per producer and partition (default 1024). */
  producerWindow?: number;
  /** Idempotent produce: a producer that has not appended to a partition for this long is forgotten by the retention pass (default 1 h). */
  producerIdleMs?: number;
}

const MAX_PARTITIONS = 10_000;

interface HighWater {
  epoch: string;
  end: number;
  token: string;
}

interface PartitionState {
  epoch: string;
  earliest: number;
  end: number;
}

interface ReadResult extends PartitionState {
  records: LogRecord[];
}

interface StoredTopic extends TopicConfig {
  createdAt: number;
}

function newEpoch(): string {
  return randomBytes(8).toString("hex");
}

/** Sequence part of every stream ID of a batch: random, so two histories never share one. */
function newToken(): string {
  return String(randomInt(1, 2 ** 47));
}

const str = (b: unknown): string => (Buffer.isBuffer(b) ? b.toString("latin1") : String(b));

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
 */
export class RedisLogEngine implements LogEngine {
  readonly kind = "redis";
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #keys: RedisKeys;
  readonly #options: RedisLogEngineOptions;
  readonly #notifier = new AppendNotifier();
  readonly #watcher: PartitionWatcher;
  readonly #topics = new Map<string, StoredTopic>();
  readonly #hwm = new Map<string, HighWater>();
  /** Highest committed offset this engine has seen per group/field: a rolled-back store is repaired. */
  readonly #committed = new Map<string, number>();
  readonly #knownGroups = new Set<string>();
  readonly #retentionTimer: NodeJS.Timeout;
  #closed = false;

  private constructor(client: RedisClient, subscriber: RedisClient, options: RedisLogEngineOptions) {
    this.#client = client;
    this.#subscriber = subscriber;
    this.#options = options;
    this.#keys = new RedisKeys(options.keyPrefix ?? "trib");
    this.#watcher = new PartitionWatcher(subscriber, this.#notifier, options.tailPollMs ?? 1000);
    this.#retentionTimer = setInterval(() => void this.enforceRetention().catch(() => {}), options.retentionCheckIntervalMs ?? 30_000);
    this.#retentionTimer.unref();
  }

  /** Connects to Redis (fails with UNAVAILABLE if it cannot) and returns the engine. */
  static async connect(options: RedisLogEngineOptions): Promise<RedisLogEngine> {
    const target: RedisTarget = {
      ...options,
      commandTimeoutMs: Math.max(options.commandTimeoutMs ?? 5000, (options.waitTimeoutMs ?? 1000) + 1000),
    };
    const client = createClient(target, "commands");
    const subscriber = createClient(target, "subscriber");
    client.on("error", () => {}); // surfaced per command as UNAVAILABLE
    subscriber.on("error", () => {});
    try {
      await connectClient(client, target);
      await connectClient(subscriber, target);
    } catch (err) {
      client.disconnect();
      subscriber.disconnect();
      throw err;
    }
    await preloadScripts(client).catch(() => {}); // EVALSHA falls back to EVAL anyway
    return new RedisLogEngine(client, subscriber, options);
  }

  // --- topics ------------------------------------------------------------------------------

  async createTopic(name: string, config: Partial<TopicConfig>): Promise<TopicDescription> {
    this.#assertOpen();
    validateTopicName(name);
    const c = resolveTopicConfig(name, config);
    const createdAt = Date.now();
    const created = await this.#call({ topic: name }, () =>
      SCRIPTS.createTopic.run(this.#client, [this.#keys.topic(name)], [
        c.partitions, c.retentionMs ?? "", c.retentionBytes ?? "", c.replicationFactor, c.cleanupPolicy, createdAt,
      ]),
    );
    if (Number(created) !== 1) throw new TributaryError("TOPIC_EXISTS", `topic ${name} already exists`, { topic: name });
    this.#topics.set(name, { ...c, createdAt });
    await this.#call({ topic: name }, async () => {
      await this.#client.sadd(this.#keys.topics(), name);
      for (let p = 0; p < c.partitions; p++) await this.#initPartition(name, p);
    });
    return this.describeTopic(name);
  }

  async deleteTopic(name: string): Promise<void> {
    this.#assertOpen();
    const t = await this.#topic(name, true);
    await this.#call({ topic: name }, async () => {
      await this.#client.del(this.#keys.topic(name));
      await this.#client.srem(this.#keys.topics(), name);
      const dels: Promise<unknown>[] = [];
      for (let p = 0; p < t.partitions; p++) {
        dels.push(this.#client.del(this.#keys.log(name, p), this.#keys.meta(name, p), this.#keys.producers(name, p), this.#keys.producersSeen(name, p)));
        this.#hwm.delete(`${name}\u0000${p}`);
      }
      await Promise.all(dels);
      // Committed offsets of a deleted topic go with it (a re-created topic starts afresh).
      const groups = await this.#client.smembers(this.#keys.groups());
      const fields = Array.from({ length: t.partitions }, (_, p) => this.#keys.offsetField(name, p));
      await Promise.all(groups.map((g) => this.#client.hdel(this.#keys.groupOffsets(g), ...fields)));
      for (const k of [...this.#committed.keys()]) if (k.split("\u0000")[1]?.startsWith(`${name}:`)) this.#committed.delete(k);
    });
    this.#topics.delete(name);
    for (let p = 0; p < t.partitions; p++) this.#notifier.notify(name, p);
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    this.#assertOpen();
    const t = await this.#topic(name, true);
    const partitionInfo = await Promise.all(Array.from({ length: t.partitions }, (_, p) => this.offsets(name, p)));
    return { name, ...t, partitionInfo };
  }

  async listTopics(): Promise<string[]> {
    this.#assertOpen();
    const names = await this.#call({}, () => this.#client.smembers(this.#keys.topics()));
    return names.sort();
  }

  // --- records -----------------------------------------------------------------------------

  async append(topic: string, partition: number, records: RecordInput[], options: AppendOptions = {}): Promise<AppendResult> {
    this.#assertOpen();
    if (!Array.isArray(records) || records.length === 0) {
      throw new TributaryError("BAD_REQUEST", "append needs a non-empty array of records", { topic, partition });
    }
    const now = Date.now();
    const encoded = records.map((r, i) => encodeRecord(r, i, now));
    const size = encoded.reduce((s, r) => s + r.size, 0);
    const maxBatchBytes = this.#options.maxBatchBytes ?? 1 << 20;
    if (size > maxBatchBytes) {
      throw new TributaryError("RECORD_TOO_LARGE", `batch of ${size} bytes exceeds maxBatchBytes ${maxBatchBytes}`, { topic, partition, size, max: maxBatchBytes });
    }
    const t = await this.#partitionTopic(topic, partition);
    const acks = options.acks ?? 1;
    const replicas = Math.max(this.#options.replicas ?? 0, t.replicationFactor - 1);
    const token = newToken();
    const key = hwKey(topic, partition);
    const args: (string | Buffer | number)[] = [
      ...this.#guardArgs(key),
      this.#keys.notifyChannel(topic, partition),
      token,
      "", // time retention runs in the periodic pass (it keeps at least the last record)
      t.retentionBytes === null ? "" : t.retentionBytes,
      encoded.length,
    ];
    for (const r of encoded) args.push(r.flags, r.key, r.value, r.headers, r.timestamp);
    const producers = options.producers ?? [];
    args.push(now, this.#options.producerWindow ?? 1024, producers.length);
    for (const e of producers) {
      if (!Number.isSafeInteger(e.sequence) || e.sequence < 0 || !Number.isInteger(e.first) || e.first < 0 || !Number.isInteger(e.count) || e.count < 1 || e.first + e.count > records.length) {
        throw new TributaryError("BAD_REQUEST", `producer entry ${JSON.stringify(e)} does not fit the batch of ${records.length} records`, { topic, partition });
      }
      args.push(e.producerId, e.sequence, e.first, e.count);
    }
    const keys = [this.#keys.log(topic, partition), this.#keys.meta(topic, partition), this.#keys.producers(topic, partition), this.#keys.producersSeen(topic, partition)];
    const ctx = { topic, partition };

    let reply = await this.#runAppend(keys, args, acks === "all" ? replicas : 0, ctx);
    if (str(reply[0]) === "NOMETA") {
      await this.#recoverPartition(topic, partition);
      reply = await this.#runAppend(keys, args, acks === "all" ? replicas : 0, ctx);
      if (str(reply[0]) === "NOMETA") throw new TributaryError("UNKNOWN_TOPIC", `topic ${topic} does not exist`, ctx);
    }
    const [, epoch, base, end, , lastToken] = reply.slice(0, 6).map(str);
    this.#observe(key, { epoch: epoch!, end: Number(end), token: lastToken! });
    const dupReply = (reply[7] as unknown[] | undefined) ?? [];
    const duplicates: Array<{ entry: number; baseOffset: number }> = [];
    for (let i = 0; i + 1 < dupReply.length; i += 2) duplicates.push({ entry: Number(str(dupReply[i])), baseOffset: Number(str(dupReply[i + 1])) });
    this.#notifier.notify(topic, partition);
    const timestamp = encoded.reduce((m, r) => Math.max(m, r.timestamp), 0);
    const baseOffset = Number(base);
    if (acks === "all" && replicas > 0) {
      const acked = Number(reply.acked);
      if (acked < replicas) {
        throw new TributaryError(
          "NOT_ENOUGH_REPLICAS",
          `batch at ${topic}/${partition}@${baseOffset} reached ${acked} of ${replicas} replicas in ${this.#waitTimeoutMs()} ms; it is in the primary's log but may be lost on failover`,
          { ...ctx, baseOffset, acked, required: replicas },
        );
      }
    }
    return duplicates.length > 0 ? { baseOffset, timestamp, duplicates } : { baseOffset, timestamp };
  }

  /** Runs append.lua, plus WAIT on the same connection (same pipeline) when replicas > 0. */
  async #runAppend(
    keys: string[],
    args: (string | Buffer | number)[],
    replicas: number,
    ctx: Record<string, unknown>,
  ): Promise<unknown[] & { acked?: number }> {
    return this.#call(ctx, async () => {
      if (replicas === 0) return (await SCRIPTS.append.run(this.#client, keys, args)) as unknown[];
      if (!(this.#client as Cluster).isCluster) {
        // One connection: a WAIT covers every write sent before it, so concurrent acks=all
        // appends share the next WAIT (group commit) instead of queueing one WAIT each.
        const out = (await SCRIPTS.append.run(this.#client, keys, args)) as unknown[] & { acked?: number };
        if (str(out[0]) !== "NOMETA") out.acked = await this.#sharedWait(replicas);
        return out;
      }
      for (const useEval of [false, true]) {
        const pipeline = this.#client.pipeline();
        SCRIPTS.append.addTo(pipeline, keys, args, useEval);
        pipeline.call("WAIT", replicas, this.#waitTimeoutMs());
        const results = (await pipeline.exec()) ?? [];
        const [scriptErr, scriptReply] = results[0] ?? [new Error("empty pipeline reply"), null];
        if (scriptErr) {
          if (!useEval && isNoScript(scriptErr)) continue;
          throw scriptErr;
        }
        const [waitErr, waitReply] = results[1] ?? [null, 0];
        if (waitErr) throw waitErr;
        const out = scriptReply as unknown[] & { acked?: number };
        out.acked = Number(waitReply);
        return out;
      }
      throw new Error("unreachable");
    });
  }

  #waitInFlight: Promise<unknown> | null = null;
  #nextWait: { replicas: number; promise: Promise<number> } | null = null;

  /** Joins the next WAIT sent on the connection (sent once the one in flight returns). */
  #sharedWait(replicas: number): Promise<number> {
    if (this.#nextWait && this.#nextWait.replicas === replicas) return this.#nextWait.promise;
    const before = this.#waitInFlight ?? Promise.resolve();
    const next = {
      replicas,
      promise: before.catch(() => {}).then(async () => {
        if (this.#nextWait === next) this.#nextWait = null;
        const p = this.#client.call("WAIT", replicas, this.#waitTimeoutMs());
        this.#waitInFlight = p;
        return Number(await p);
      }),
    };
    this.#nextWait = next;
    return next.promise;
  }

  async read(topic: string, partition: number, offset: number, options: ReadOptions = {}): Promise<LogRecord[]> {
    return (await this.#read(topic, partition, offset, options, null)).records;
  }

  /** Reads; with `expectedEpoch`, a changed epoch fails STALE_EPOCH before any range check. */
  async #read(topic: string, partition: number, offset: number, options: ReadOptions, expectedEpoch: string | null): Promise<ReadResult> {
    this.#assertOpen();
    if (!Number.isSafeInteger(offset)) {
      throw new TributaryError("OFFSET_OUT_OF_RANGE", `offset ${String(offset)} is not an integer`, { topic, partition, offset });
    }
    const maxRecords = Math.max(1, Math.min(options.maxRecords ?? 500, 10_000));
    const state = await this.#readState(topic, partition, offset, maxRecords);
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
      if (rec.offset !== offset + records.length) {
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
  async #readState(topic: string, partition: number, offset: number, count: number): Promise<PartitionState & { entries: RawEntry[] }> {
    await this.#partitionTopic(topic, partition);
    const key = hwKey(topic, partition);
    const keys = [this.#keys.log(topic, partition), this.#keys.meta(topic, partition)];
    const run = (): Promise<unknown[]> =>
      this.#call({ topic, partition }, async () => (await SCRIPTS.read.run(this.#client, keys, [...this.#guardArgs(key), offset, count])) as unknown[]);
    let reply = await run();
    if (str(reply[0]) === "NOMETA") {
      await this.#recoverPartition(topic, partition);
      reply = await run();
      if (str(reply[0]) === "NOMETA") throw new TributaryError("UNKNOWN_TOPIC", `topic ${topic} does not exist`, { topic, partition });
    }
    const epoch = str(reply[1]);
    const earliest = Number(str(reply[2]));
    const end = Number(str(reply[3]));
    this.#observe(key, { epoch, end, token: str(reply[4]) });
    return { epoch, earliest, end, entries: (reply[6] as RawEntry[]) ?? [] };
  }

  async offsets(topic: string, partition: number): Promise<PartitionInfo> {
    this.#assertOpen();
    const s = await this.#readState(topic, partition, -1, 0);
    return { partition, earliestOffset: s.earliest, endOffset: s.end, epoch: s.epoch };
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    this.#assertOpen();
    await this.#partitionTopic(topic, partition);
    const keys = [this.#keys.log(topic, partition), this.#keys.meta(topic, partition)];
    const reply = (await this.#call({ topic, partition }, () => SCRIPTS.offsetForTimestamp.run(this.#client, keys, [timestamp]))) as unknown[];
    if (str(reply[0]) === "NOMETA") {
      await this.#recoverPartition(topic, partition);
      return this.offsetForTimestamp(topic, partition, timestamp);
    }
    return Number(str(reply[1]));
  }

  tail(topic: string, partition: number, fromOffset: number, handler: TailHandler): Tail {
    this.#assertOpen();
    const release = this.#watcher.acquire(this.#keys.notifyChannel(topic, partition), topic, partition);
    let tailEpoch: string | null = null;
    const source: TailSource = {
      epoch: async () => {
        tailEpoch = (await this.offsets(topic, partition)).epoch;
        return tailEpoch;
      },
      read: async (t, p, offset, options) => (await this.#read(t, p, offset, options ?? {}, tailEpoch)).records,
    };
    // While Redis is unreachable (restart, failover) the tail waits and reads on from its
    // position; only a closed engine or a real error (STALE_EPOCH, UNKNOWN_TOPIC...) ends it.
    const retry = { isTransient: (err: unknown) => !this.#closed && err instanceof TributaryError && (err.code === "UNAVAILABLE" || err.code === "TIMEOUT") };
    const inner = startTailLoop(source, this.#notifier, topic, partition, fromOffset, {
      onRecords: (records, where) => handler.onRecords(records, where),
      onError: (err) => {
        release();
        handler.onError(err);
      },
    }, undefined, retry);
    return {
      close() {
        inner.close();
        release();
      },
    };
  }

  // --- committed offsets ------------------------------------------------------------------

  async commitOffset(group: string, topic: string, partition: number, offset: number, metadata = ""): Promise<void> {
    this.#assertOpen();
    if (typeof group !== "string" || group.length === 0) throw new TributaryError("BAD_REQUEST", "group must be a non-empty string", { group });
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new TributaryError("BAD_REQUEST", `offset must be a non-negative integer, got ${String(offset)}`, { group, topic, partition });
    }
    await this.#partitionTopic(topic, partition);
    const field = this.#keys.offsetField(topic, partition);
    const ck = `${group}\u0000${field}`;
    // Never below what this engine has seen committed: repairs a store that rolled back.
    const floor = this.#committed.get(ck) ?? -1;
    const effective = Math.max(offset, floor);
    const stored = await this.#call({ group, topic, partition }, async () => {
      if (!this.#knownGroups.has(group)) {
        await this.#client.sadd(this.#keys.groups(), group);
        this.#knownGroups.add(group);
      }
      return SCRIPTS.commitOffset.run(this.#client, [this.#keys.groupOffsets(group)], [field, effective, Date.now(), metadata, effective === offset ? "0" : "1"]);
    });
    const parsed = parseCommitted(str(stored));
    if (parsed) this.#committed.set(ck, Math.max(floor, parsed.offset));
  }

  async fetchOffset(group: string, topic: string, partition: number): Promise<CommittedOffset | null> {
    this.#assertOpen();
    await this.#partitionTopic(topic, partition);
    const field = this.#keys.offsetField(topic, partition);
    const raw = await this.#call({ group, topic, partition }, () => this.#client.hget(this.#keys.groupOffsets(group), field));
    return this.#reconcileCommitted(group, field, raw === null ? null : parseCommitted(raw));
  }

  async fetchGroupOffsets(group: string): Promise<Map<string, Map<number, CommittedOffset>>> {
    this.#assertOpen();
    const all = await this.#call({ group }, () => this.#client.hgetall(this.#keys.groupOffsets(group)));
    const out = new Map<string, Map<number, CommittedOffset>>();
    for (const [field, raw] of Object.entries(all)) {
      const i = field.lastIndexOf(":");
      const topic = field.slice(0, i);
      const partition = Number(field.slice(i + 1));
      const c = await this.#reconcileCommitted(group, field, parseCommitted(raw));
      if (!c) continue;
      let m = out.get(topic);
      if (!m) out.set(topic, (m = new Map()));
      m.set(partition, c);
    }
    return out;
  }

  /** A stored commit below what this engine saw (the store rolled back) is raised again. */
  async #reconcileCommitted(group: string, field: string, stored: CommittedOffset | null): Promise<CommittedOffset | null> {
    const ck = `${group}\u0000${field}`;
    const seen = this.#committed.get(ck);
    if (seen === undefined || (stored && stored.offset >= seen)) {
      if (stored) this.#committed.set(ck, stored.offset);
      return stored;
    }
    const committedAt = Date.now();
    await this.#call({ group }, () => SCRIPTS.commitOffset.run(this.#client, [this.#keys.groupOffsets(group)], [field, seen, committedAt, stored?.metadata ?? "", "1"]));
    return { offset: seen, metadata: stored?.metadata ?? "", committedAt };
  }

  async listGroups(): Promise<string[]> {
    this.#assertOpen();
    return (await this.#call({}, () => this.#client.smembers(this.#keys.groups()))).sort();
  }

  // --- lifecycle ---------------------------------------------------------------------------

  /** Makes acknowledged appends as durable as acks=all would (WAIT on every primary). */
  async flush(): Promise<void> {
    this.#assertOpen();
    const replicas = this.#options.replicas ?? 0;
    if (replicas === 0) return;
    const client = this.#client;
    const nodes: Redis[] = (client as Cluster).isCluster ? (client as Cluster).nodes("master") : [client as Redis];
    await this.#call({}, () => Promise.all(nodes.map((n) => n.call("WAIT", replicas, this.#waitTimeoutMs()))));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#retentionTimer);
    this.#watcher.close();
    this.#notifier.notifyAll(); // tails observe the closed engine and stop
    this.#client.disconnect();
    this.#subscriber.disconnect();
  }

  /**
   * Applies retention to every partition of every topic now (also runs periodically), and
   * forgets the producers idle for `producerIdleMs`.
   */
  async enforceRetention(): Promise<void> {
    if (this.#closed) return;
    const now = Date.now();
    const idleBefore = now - (this.#options.producerIdleMs ?? 3_600_000);
    for (const name of await this.listTopics()) {
      const t = await this.#topic(name, true).catch(() => null);
      if (!t) continue;
      for (let p = 0; p < t.partitions; p++) {
        const producerKeys = [this.#keys.producers(name, p), this.#keys.producersSeen(name, p)];
        while (Number(await this.#call({ topic: name, partition: p }, () => SCRIPTS.expireProducers.run(this.#client, producerKeys, [idleBefore, 1000]))) === 1000);
      }
      if (t.retentionMs === null && t.retentionBytes === null) continue;
      for (let p = 0; p < t.partitions; p++) {
        await this.#call({ topic: name, partition: p }, () =>
          SCRIPTS.trim.run(this.#client, [this.#keys.log(name, p), this.#keys.meta(name, p)], [
            t.retentionMs === null ? "" : now - t.retentionMs,
            t.retentionBytes === null ? "" : t.retentionBytes,
          ]),
        );
      }
    }
  }

  // --- internals ---------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new TributaryError("UNAVAILABLE", "the Redis log engine is closed");
  }

  #waitTimeoutMs(): number {
    return this.#options.waitTimeoutMs ?? 1000;
  }

  async #call<T>(context: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (this.#closed && !(err instanceof TributaryError)) throw new TributaryError("UNAVAILABLE", "the Redis log engine is closed", context, { cause: err });
      throw mapRedisError(err, context);
    }
  }

  #guardArgs(key: string): string[] {
    const h = this.#hwm.get(key);
    return h ? [h.epoch, String(h.end), h.token, newEpoch()] : ["", "0", "0", newEpoch()];
  }

  /** Raises the high-water mark; a new epoch replaces it (the guard already validated). */
  #observe(key: string, seen: HighWater): void {
    const cur = this.#hwm.get(key);
    if (!cur || cur.epoch !== seen.epoch || seen.end >= cur.end) this.#hwm.set(key, seen);
  }

  async #topic(name: string, refresh = false): Promise<StoredTopic> {
    if (!refresh) {
      const cached = this.#topics.get(name);
      if (cached) return cached;
    }
    if (typeof name !== "string" || !TOPIC_NAME_PATTERN.test(name)) {
      throw new TributaryError("UNKNOWN_TOPIC", `topic ${String(name)} does not exist`, { topic: name });
    }
    const h = await this.#call({ topic: name }, () => this.#client.hgetall(this.#keys.topic(name)));
    if (!h.partitions) {
      this.#topics.delete(name);
      throw new TributaryError("UNKNOWN_TOPIC", `topic ${name} does not exist`, { topic: name });
    }
    const t: StoredTopic = {
      partitions: Number(h.partitions),
      retentionMs: h.retentionMs ? Number(h.retentionMs) : null,
      retentionBytes: h.retentionBytes ? Number(h.retentionBytes) : null,
      replicationFactor: Number(h.replicationFactor ?? 1),
      cleanupPolicy: "delete",
      createdAt: Number(h.createdAt ?? 0),
    };
    this.#topics.set(name, t);
    return t;
  }

  async #partitionTopic(topic: string, partition: number): Promise<StoredTopic> {
    let t = await this.#topic(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions) {
      t = await this.#topic(topic, true);
      if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions) {
        throw new TributaryError("UNKNOWN_PARTITION", `partition ${String(partition)} does not exist in ${topic} (${t.partitions} partitions)`, { topic, partition });
      }
    }
    return t;
  }

  async #initPartition(topic: string, partition: number): Promise<string> {
    return str(await SCRIPTS.initPartition.run(this.#client, [this.#keys.log(topic, partition), this.#keys.meta(topic, partition)], [newEpoch(), Date.now()]));
  }

  /** The partition's meta hash is missing: the topic was deleted, or the data was lost. */
  async #recoverPartition(topic: string, partition: number): Promise<void> {
    await this.#partitionTopic(topic, partition); // refreshes; UNKNOWN_TOPIC if deleted
    const t = await this.#topic(topic, true);
    if (partition >= t.partitions) throw new TributaryError("UNKNOWN_PARTITION", `partition ${partition} does not exist in ${topic}`, { topic, partition });
    await this.#call({ topic, partition }, () => this.#initPartition(topic, partition));
  }
}

async function preloadScripts(client: RedisClient): Promise<void> {
  const nodes: Redis[] = (client as Cluster).isCluster ? (client as Cluster).nodes("master") : [client as Redis];
  await Promise.all(nodes.flatMap((n) => Object.values(SCRIPTS).map((s) => n.script("LOAD", s.lua))));
}

function hwKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function parseCommitted(raw: string): CommittedOffset | null {
  const a = raw.indexOf("|");
  const b = raw.indexOf("|", a + 1);
  if (a < 0 || b < 0) return null;
  return { offset: Number(raw.slice(0, a)), committedAt: Number(raw.slice(a + 1, b)), metadata: raw.slice(b + 1) };
}

function validateTopicName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !TOPIC_NAME_PATTERN.test(name) || name === "." || name === "..") {
    throw new TributaryError("INVALID_TOPIC", `invalid topic name ${JSON.stringify(name)}: must match [a-zA-Z0-9._-]{1,249} and not be "." or ".."`, { topic: name });
  }
}

function nullablePositive(value: unknown, field: string, topic: string): number | null {
  if (value === null) return null;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new TributaryError("INVALID_CONFIG", `${field} must be a positive integer or null, got ${String(value)}`, { topic, field });
  }
  return value;
}

function resolveTopicConfig(topic: string, partial: Partial<TopicConfig> | undefined): TopicConfig {
  const c = { ...DEFAULT_TOPIC_CONFIG };
  for (const [k, v] of Object.entries(partial ?? {})) if (v !== undefined) (c as Record<string, unknown>)[k] = v;
  if (!Number.isInteger(c.partitions) || c.partitions < 1 || c.partitions > MAX_PARTITIONS) {
    throw new TributaryError("POLICY_VIOLATION", `partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${String(c.partitions)}`, { topic, partitions: c.partitions });
  }
  if (!Number.isInteger(c.replicationFactor) || c.replicationFactor < 1) {
    throw new TributaryError("POLICY_VIOLATION", `replicationFactor must be an integer >= 1, got ${String(c.replicationFactor)}`, { topic });
  }
  if (c.cleanupPolicy !== "delete") {
    throw new TributaryError("POLICY_VIOLATION", `cleanupPolicy ${String(c.cleanupPolicy)} is not supported (only "delete")`, { topic });
  }
  return {
    partitions: c.partitions,
    retentionMs: nullablePositive(c.retentionMs, "retentionMs", topic),
    retentionBytes: nullablePositive(c.retentionBytes, "retentionBytes", topic),
    replicationFactor: c.replicationFactor,
    cleanupPolicy: "delete",
  };
}

/** Builds an engine from one URL (for `--engine redis --redis <url>`); forms in redis-url.ts. */
export async function createRedisEngineFromUrl(url: string): Promise<RedisLogEngine> {
  return RedisLogEngine.connect(parseRedisUrl(url));
}
