import { TributaryError } from "../../errors.ts";
import type { AlterableTopicConfig, TopicConfig } from "../log-engine.ts";
import { alterTopicConfig, resolveTopicConfig, validateTopicName } from "../topic-config.ts";
import type { RedisEngineCore } from "./redis-engine-core.ts";
import type { RedisGroupOffsets } from "./redis-group-offsets.ts";
import { SCRIPTS } from "./redis-scripts.ts";


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
        c.partitions, c.retentionMs ?? "", c.retentionBytes ?? "", c.replicationFactor, c.cleanupPolicy, createdAt, c.deleteRetentionMs, c.minCleanableDirtyRatio, c.segmentBytes ?? "",
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
        dels.push(
          core.client.del(
            core.keys.log(name, p), core.keys.meta(name, p), core.keys.producers(name, p), core.keys.producersSeen(name, p),
            core.keys.compactionKeys(name, p), core.keys.compactionTombstones(name, p),
          ),
        );
        core.forgetHighWater(`${name}\u0000${p}`);
      }
      await Promise.all(dels);
      // Committed offsets of a deleted topic go with it (a re-created topic starts afresh).
      await this.#offsets.forgetTopic(name, t.partitions);
    });
    core.uncacheTopic(name);
    for (let p = 0; p < t.partitions; p++) core.notifier.notify(name, p);
  }

  /** Changes retention and cleanup settings (other nodes see them at their next topic refresh: retention or compaction pass). */
  async alter(name: string, changes: Partial<AlterableTopicConfig>): Promise<void> {
    const core = this.#core;
    core.assertOpen();
    const { createdAt, ...current } = await core.topic(name, true);
    const c = alterTopicConfig(name, current, changes);
    const done = await core.call({ topic: name }, () =>
      SCRIPTS.alterTopic.run(core.client, [core.keys.topic(name)], [c.retentionMs ?? "", c.retentionBytes ?? "", c.cleanupPolicy, c.deleteRetentionMs, c.minCleanableDirtyRatio, c.segmentBytes ?? ""]),
    );
    if (Number(done) !== 1) {
      core.uncacheTopic(name);
      throw new TributaryError("UNKNOWN_TOPIC", `topic ${name} does not exist`, { topic: name });
    }
    core.cacheTopic(name, { ...c, createdAt });
  }

  async list(): Promise<string[]> {
    const core = this.#core;
    core.assertOpen();
    const names = await core.call({}, () => core.client.smembers(core.keys.topics()));
    return names.sort();
  }
}
