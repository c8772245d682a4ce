import { randomBytes } from "node:crypto";
import { TributaryError } from "../../errors.ts";
import { DEFAULT_TOPIC_CONFIG, TOPIC_NAME_PATTERN, type TopicConfig } from "../log-engine.ts";
import { cleanupPolicy } from "../topic-config.ts";
import type { AppendNotifier } from "../tail-loop.ts";
import type { RedisClient } from "../../redis/redis-connection.ts";
import { RedisErrorReporter } from "../../redis/redis-error-reporter.ts";
import { mapRedisError } from "../../redis/redis-errors.ts";
import { keyPrefixOf } from "../../redis/redis-key-prefix.ts";
import { RedisKeys } from "./redis-keys.ts";
import type { RedisLogEngineOptions } from "./redis-log-engine-options.ts";
import { SCRIPTS } from "./redis-scripts.ts";

/** Highest state of a partition this engine has seen: sent with every append and read (epoch rule). */
export interface HighWater {
  epoch: string;
  end: number;
  token: string;
}

export interface StoredTopic extends TopicConfig {
  createdAt: number;
}

export function newEpoch(): string {
  return randomBytes(8).toString("hex");
}

export function hwKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** A Redis reply field as a string (buffers decoded as latin1). */
export const str = (b: unknown): string => (Buffer.isBuffer(b) ? b.toString("latin1") : String(b));

/**
 * State shared by the parts of `RedisLogEngine` (internal to it): the command connection,
 * key layout and options, the error reporter, the open/closed flag, error mapping of every command, the cache of
 * topic configs and the per-partition high-water marks of the epoch rule.
 */
export class RedisEngineCore {
  readonly client: RedisClient;
  readonly keys: RedisKeys;
  readonly options: RedisLogEngineOptions;
  readonly notifier: AppendNotifier;
  /** Failures of the engine's own work (no caller to fail): logged and counted. */
  readonly reporter: RedisErrorReporter;
  readonly #topics = new Map<string, StoredTopic>();
  readonly #hwm = new Map<string, HighWater>();
  closed = false;

  constructor(client: RedisClient, options: RedisLogEngineOptions, notifier: AppendNotifier) {
    this.client = client;
    this.options = options;
    this.notifier = notifier;
    this.reporter = options.reporter ?? RedisErrorReporter.standalone();
    this.keys = new RedisKeys(keyPrefixOf(options));
  }

  assertOpen(): void {
    if (this.closed) throw new TributaryError("UNAVAILABLE", "the Redis log engine is closed");
  }

  waitTimeoutMs(): number {
    return this.options.waitTimeoutMs ?? 1000;
  }

  async call<T>(context: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (this.closed && !(err instanceof TributaryError)) throw new TributaryError("UNAVAILABLE", "the Redis log engine is closed", context, { cause: err });
      throw mapRedisError(err, context);
    }
  }

  // --- epoch guard ---------------------------------------------------------------------------

  guardArgs(key: string): string[] {
    const h = this.#hwm.get(key);
    return h ? [h.epoch, String(h.end), h.token, newEpoch()] : ["", "0", "0", newEpoch()];
  }

  /** Raises the high-water mark; a new epoch replaces it (the guard already validated). */
  observe(key: string, seen: HighWater): void {
    const cur = this.#hwm.get(key);
    if (!cur || cur.epoch !== seen.epoch || seen.end >= cur.end) this.#hwm.set(key, seen);
  }

  forgetHighWater(key: string): void {
    this.#hwm.delete(key);
  }

  // --- topic metadata ------------------------------------------------------------------------

  cacheTopic(name: string, topic: StoredTopic): void {
    this.#topics.set(name, topic);
  }

  uncacheTopic(name: string): void {
    this.#topics.delete(name);
  }

  async topic(name: string, refresh = false): Promise<StoredTopic> {
    if (!refresh) {
      const cached = this.#topics.get(name);
      if (cached) return cached;
    }
    if (typeof name !== "string" || !TOPIC_NAME_PATTERN.test(name)) {
      throw new TributaryError("UNKNOWN_TOPIC", `topic ${String(name)} does not exist`, { topic: name });
    }
    const h = await this.call({ topic: name }, () => this.client.hgetall(this.keys.topic(name)));
    if (!h.partitions) {
      this.#topics.delete(name);
      throw new TributaryError("UNKNOWN_TOPIC", `topic ${name} does not exist`, { topic: name });
    }
    const t: StoredTopic = {
      partitions: Number(h.partitions),
      retentionMs: h.retentionMs ? Number(h.retentionMs) : null,
      retentionBytes: h.retentionBytes ? Number(h.retentionBytes) : null,
      replicationFactor: Number(h.replicationFactor ?? 1),
      cleanupPolicy: h.cleanupPolicy ? cleanupPolicy(h.cleanupPolicy, name) : "delete",
      deleteRetentionMs: h.deleteRetentionMs ? Number(h.deleteRetentionMs) : DEFAULT_TOPIC_CONFIG.deleteRetentionMs,
      minCleanableDirtyRatio: h.minCleanableDirtyRatio ? Number(h.minCleanableDirtyRatio) : DEFAULT_TOPIC_CONFIG.minCleanableDirtyRatio,
      segmentBytes: h.segmentBytes ? Number(h.segmentBytes) : null,
      createdAt: Number(h.createdAt ?? 0),
    };
    this.#topics.set(name, t);
    return t;
  }

  async partitionTopic(topic: string, partition: number): Promise<StoredTopic> {
    let t = await this.topic(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions) {
      t = await this.topic(topic, true);
      if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions) {
        throw new TributaryError("UNKNOWN_PARTITION", `partition ${String(partition)} does not exist in ${topic} (${t.partitions} partitions)`, { topic, partition });
      }
    }
    return t;
  }

  async initPartition(topic: string, partition: number): Promise<string> {
    return str(await SCRIPTS.initPartition.run(this.client, [this.keys.log(topic, partition), this.keys.meta(topic, partition)], [newEpoch(), Date.now()]));
  }

  /** The partition's meta hash is missing: the topic was deleted, or the data was lost. */
  async recoverPartition(topic: string, partition: number): Promise<void> {
    await this.partitionTopic(topic, partition); // refreshes; UNKNOWN_TOPIC if deleted
    const t = await this.topic(topic, true);
    if (partition >= t.partitions) throw new TributaryError("UNKNOWN_PARTITION", `partition ${partition} does not exist in ${topic}`, { topic, partition });
    await this.call({ topic, partition }, () => this.initPartition(topic, partition));
  }
}
