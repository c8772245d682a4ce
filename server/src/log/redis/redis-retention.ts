import { isTributaryError } from "../../errors.ts";
import type { RedisEngineCore, StoredTopic } from "./redis-engine-core.ts";
import { SCRIPTS } from "./redis-scripts.ts";

/**
 * The maintenance pass of `RedisLogEngine` (internal to it): for every topic, forgets the
 * producers idle for `producerIdleMs` (1000 per script run), then trims every partition to
 * the topic's time and byte retention. `listTopics` is the engine's. Any failure but a topic
 * deleted meanwhile ends the pass and is thrown (the engine reports it; the next pass starts over).
 */
export async function enforceRedisRetention(core: RedisEngineCore, listTopics: () => Promise<string[]>): Promise<void> {
  if (core.closed) return;
  const now = Date.now();
  const idleBefore = now - (core.options.producerIdleMs ?? 3_600_000);
  for (const name of await listTopics()) {
    let t: StoredTopic;
    try {
      t = await core.topic(name, true);
    } catch (err) {
      if (isTributaryError(err, "UNKNOWN_TOPIC")) continue; // deleted since listTopics: nothing to trim
      throw err;
    }
    for (let p = 0; p < t.partitions; p++) {
      const producerKeys = [core.keys.producers(name, p), core.keys.producersSeen(name, p)];
      while (Number(await core.call({ topic: name, partition: p }, () => SCRIPTS.expireProducers.run(core.client, producerKeys, [idleBefore, 1000]))) === 1000);
    }
    if (t.cleanupPolicy === "compact") continue; // retention applies with "delete" or "compact,delete" only (Kafka)
    if (t.retentionMs === null && t.retentionBytes === null) continue;
    for (let p = 0; p < t.partitions; p++) {
      await core.call({ topic: name, partition: p }, () =>
        SCRIPTS.trim.run(core.client, [core.keys.log(name, p), core.keys.meta(name, p)], [
          t.retentionMs === null ? "" : now - t.retentionMs,
          t.retentionBytes === null ? "" : t.retentionBytes,
        ]),
      );
    }
  }
}
