import { isTributaryError } from "../../errors.ts";
import { emptyCompactionStats, isCompacted, type CompactionStats } from "../log-engine.ts";
import { str, type RedisEngineCore, type StoredTopic } from "./redis-engine-core.ts";
import { SCRIPTS } from "./redis-scripts.ts";

/** Records indexed per compact.lua step: bounds the time one script holds the shard (~ms). */
const STEP_RECORDS = 2000;

/**
 * Log compaction of `RedisLogEngine` (internal to it), for topics whose cleanupPolicy
 * includes "compact". Per partition, compact.lua walks the stream from a cursor kept in the
 * meta hash, keeps the offset of each key's last record in a hash under the partition's hash
 * tag (`...:ckeys`, one field per live key) and deletes (XDEL) the record each new one
 * supersedes, so the stream keeps about one record per key; tombstones (no value) are
 * remembered in a sorted set (`...:ctomb`) and deleted once older than deleteRetentionMs.
 * Offsets never change: XDEL leaves gaps that reads skip. Record end-1 is never deleted (the
 * epoch guard checks its stream ID). Every key of a step shares the partition's hash tag, so
 * it runs on Redis Cluster like the other scripts.
 *
 * A partition is compacted when the records written since its last pass reach the topic's
 * minCleanableDirtyRatio of the stream's length (or always, with `force`). Work per pass is
 * proportional to the records written since the previous one, in steps of STEP_RECORDS.
 * Failures (Redis unreachable, a script error) are thrown, or with `report` (the periodic
 * pass) reported per partition while the pass goes on with the next one (on Redis Cluster
 * another shard may answer); a partition stopped half-way resumes from its cursor next time.
 */
export async function compactRedis(
  core: RedisEngineCore,
  listTopics: () => Promise<string[]>,
  only: string | undefined,
  options: { force?: boolean; now?: number },
  report?: (err: unknown, context: Record<string, unknown>) => void,
): Promise<CompactionStats> {
  const total = emptyCompactionStats();
  const names = only !== undefined ? [only] : await listTopics();
  for (const name of names) {
    if (core.closed) break;
    let t: StoredTopic;
    try {
      t = await core.topic(name, true);
    } catch (err) {
      if (only === undefined && isTributaryError(err, "UNKNOWN_TOPIC")) continue; // deleted since listTopics
      throw err;
    }
    if (!isCompacted(t.cleanupPolicy)) continue;
    const cutoff = (options.now ?? Date.now()) - t.deleteRetentionMs;
    for (let p = 0; p < t.partitions; p++) {
      if (core.closed) break;
      try {
        if (await compactPartition(core, t, name, p, cutoff, options.force ?? false, total)) total.partitionsCleaned++;
      } catch (err) {
        if (!report || core.closed) throw err;
        report(err, { topic: name, partition: p });
      }
    }
  }
  return total;
}

/** Steps of compact.lua over one partition until its cursor reaches the end; true when a step ran (not skipped). */
async function compactPartition(core: RedisEngineCore, t: StoredTopic, name: string, p: number, cutoff: number, force: boolean, total: CompactionStats): Promise<boolean> {
  const keys = [core.keys.log(name, p), core.keys.meta(name, p), core.keys.compactionKeys(name, p), core.keys.compactionTombstones(name, p)];
  let first = true;
  let cleaned = false;
  for (;;) {
    if (core.closed) break;
    const step = first;
    const reply = (await core.call({ topic: name, partition: p }, () =>
      SCRIPTS.compact.run(core.client, keys, [STEP_RECORDS, cutoff, force ? 0 : t.minCleanableDirtyRatio, step ? 1 : 0]),
    )) as unknown[];
    first = false;
    const status = str(reply[0]);
    if (status === "NOMETA" || status === "SKIP") break;
    const [indexed, removed, tombstones, done, before, after] = reply.slice(1).map((x) => Number(str(x)));
    if (step) total.bytesBefore += before!;
    total.recordsRead += indexed!;
    total.recordsRemoved += removed!;
    total.tombstonesRemoved += tombstones!;
    cleaned = true;
    if (done === 1) {
      total.bytesAfter += after!;
      break;
    }
  }
  return cleaned;
}
