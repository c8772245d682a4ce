import { TributaryError } from "../../errors.ts";
import { DEFAULT_TOPIC_CONFIG, TOPIC_NAME_PATTERN, type TopicConfig } from "../log-engine.ts";
import type { RedisEngineCore } from "./redis-engine-core.ts";
import type { RedisGroupOffsets } from "./redis-group-offsets.ts";
import { SCRIPTS } from "./redis-scripts.ts";

const MAX_PARTITIONS = 10_000;

/**
 * Topic creation, deletion and listing of `RedisLogEngine` (internal to it). The config hash
 * is created atomically by create-topic.lua (TOPIC_EXISTS if already there), then every
 * partition's meta hash is initialised.
 */
export class RedisTopicAdmin {
  readonly #core: RedisEngineCore;
  readonly #offsets: RedisGroupOffsets;

  constructor(core: RedisEngineCore, offsets: RedisGroupOffsets) {
    this.#core = core;
    this.#offsets = offsets;
  }

  async create(name: string, config: Partial<TopicConfig>): Promise<void> {
    const core = this.#core;
    core.assertOpen();
    validateTopicName(name);
    const c = resolveTopicConfig(name, config);
    const createdAt = Date.now();
    const created = await core.call({ topic: name }, () =>
      SCRIPTS.createTopic.run(core.client, [core.keys.topic(name)], [
        c.partitions, c.retentionMs ?? "", c.retentionBytes ?? "", c.replicationFactor, c.cleanupPolicy, createdAt,
      ]),
    );
    if (Number(created) !== 1) throw new TributaryError("TOPIC_EXISTS", `topic ${name} already exists`, { topic: name });
    core.cacheTopic(name, { ...c, createdAt });
    await core.call({ topic: name }, async () => {
      await core.client.sadd(core.keys.topics(), name);
      for (let p = 0; p < c.partitions; p++) await core.initPartition(name, p);
    });
  }

  async delete(name: string): Promise<void> {
    const core = this.#core;
    core.assertOpen();
    const t = await core.topic(name, true);
    await core.call({ topic: name }, async () => {
      await core.client.del(core.keys.topic(name));
      await core.client.srem(core.keys.topics(), name);
      const dels: Promise<unknown>[] = [];
      for (let p = 0; p < t.partitions; p++) {
        dels.push(core.client.del(core.keys.log(name, p), core.keys.meta(name, p), core.keys.producers(name, p), core.keys.producersSeen(name, p)));
        core.forgetHighWater(`${name}\u0000${p}`);
      }
      await Promise.all(dels);
      // Committed offsets of a deleted topic go with it (a re-created topic starts afresh).
      await this.#offsets.forgetTopic(name, t.partitions);
    });
    core.uncacheTopic(name);
    for (let p = 0; p < t.partitions; p++) core.notifier.notify(name, p);
  }

  async list(): Promise<string[]> {
    const core = this.#core;
    core.assertOpen();
    const names = await core.call({}, () => core.client.smembers(core.keys.topics()));
    return names.sort();
  }
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
