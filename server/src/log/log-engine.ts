/**
 * The LogEngine contract: the only door to storage.
 *
 * Everything above this interface (broker, gateways, groups) is engine-agnostic and is
 * tested against every engine with the same suite (`test/contract/log-engine-contract.ts`).
 *
 * Guarantees every engine keeps:
 * - Offsets are integers, assigned contiguously per partition, starting at 0 and never
 *   reused (JavaScript numbers: exact up to 2^53, far beyond any partition's life). On a
 *   compacted topic (cleanupPolicy "compact") removed records leave gaps: a read returns
 *   the next records that exist, and readers continue from the last offset they got + 1.
 * - Appends to one partition are atomic per batch and totally ordered: a batch gets a
 *   contiguous offset range and no other batch interleaves with it. Callers may append
 *   concurrently; per-caller order is kept (a caller's second append, issued after its
 *   first one was issued, gets higher offsets).
 * - Reads see every append whose promise has resolved (read-your-writes), whatever acks.
 * - `acks: "all"` resolves only once the batch is durable by the engine's definition
 *   (file: fsynced; Redis: acknowledged by the configured replicas via WAIT).
 * - A tail delivers records in offset order, starting at the requested offset (or the
 *   first record after it that compaction kept), catch-up then live, with no gap (beyond
 *   compaction's) and no duplicate.
 * - Each partition has an epoch (an opaque string) that changes whenever its history may
 *   have been rewritten (topic re-created, a tail lost by the storage). A position is
 *   (epoch, offset); committed group positions carry their epoch (`commitOffset`).
 *
 * Errors are TributaryError with codes: UNKNOWN_TOPIC, UNKNOWN_PARTITION, INVALID_TOPIC,
 * TOPIC_EXISTS, OFFSET_OUT_OF_RANGE, RECORD_TOO_LARGE, POLICY_VIOLATION, CORRUPT_RECORD,
 * NOT_ENOUGH_REPLICAS, STORAGE_ERROR, UNAVAILABLE (after close).
 */

export type Acks = 0 | 1 | "all";

/** Headers: string names to byte values (Kafka semantics). */
export type RecordHeaders = Record<string, Uint8Array>;

export interface TopicConfig {
  /** Number of partitions, >= 1. */
  partitions: number;
  /** Delete whole segments/ranges older than this; null = keep forever. Applies when cleanupPolicy includes "delete". */
  retentionMs: number | null;
  /** Keep at most this many bytes per partition (whole segments); null = no limit. Applies when cleanupPolicy includes "delete". */
  retentionBytes: number | null;
  /** Copies of each partition. The file engine accepts only 1. */
  replicationFactor: number;
  /**
   * Cleanup policy (Kafka's `cleanup.policy`): "delete" drops old records by retention;
   * "compact" keeps the last record per key (see `LogEngine.compact`), offsets unchanged,
   * and refuses keyless records (POLICY_VIOLATION); "compact,delete" does both.
   */
  cleanupPolicy: CleanupPolicy;
  /**
   * Compacted topics: how long a tombstone (a keyed record with a null value) is kept after
   * its timestamp before compaction removes it (Kafka's `delete.retention.ms`), so readers
   * that are behind still see the delete. Default 24 h.
   */
  deleteRetentionMs: number;
  /**
   * Compacted topics: compaction of a partition starts when the share of its log written
   * since the last compaction (dirty) reaches this ratio, 0 to 1 (Kafka's
   * `min.cleanable.dirty.ratio`). Default 0.5.
   */
  minCleanableDirtyRatio: number;
  /**
   * Roll a partition's active segment past this many bytes (Kafka's `segment.bytes`); null =
   * the engine's default (file engine: its `segmentBytes` option). Only sealed segments are
   * compacted, so a compacted topic read back at start-up (the node's keyed internal topics)
   * uses small segments. The Redis engine keeps it and has no segments.
   */
  segmentBytes: number | null;
}

export type CleanupPolicy = "delete" | "compact" | "compact,delete";

export const CLEANUP_POLICIES: readonly CleanupPolicy[] = ["delete", "compact", "compact,delete"];

/** True when the policy keeps the last record per key. */
export function isCompacted(policy: CleanupPolicy): boolean {
  return policy !== "delete";
}

/** What one compaction pass did (`LogEngine.compact`), summed over the partitions it cleaned. */
export interface CompactionStats {
  /** Partitions whose log was rewritten or cleaned. */
  partitionsCleaned: number;
  /** Records looked at (the cleanable range of each cleaned partition). */
  recordsRead: number;
  /** Records removed: superseded by a later record with the same key, expired tombstones, keyless records. */
  recordsRemoved: number;
  /** Tombstones among the removed records. */
  tombstonesRemoved: number;
  /** Bytes of log before and after (file: segment bytes of the cleaned range; Redis: tracked record bytes). */
  bytesBefore: number;
  bytesAfter: number;
}

/** What an engine knows of its storage's health (`LogEngine.health`). */
export interface EngineHealth {
  /** False once the storage failed in a way only a restart repairs (file engine: a failed fdatasync). */
  ok: boolean;
  /** Why it is not ok (null when ok). */
  problem: string | null;
  /** Failed fdatasync calls since open (file engine; 0 elsewhere). */
  fsyncFailures: number;
}

/** Topic settings that can be changed after creation (`LogEngine.alterTopicConfig`). */
export type AlterableTopicConfig = Pick<TopicConfig, "retentionMs" | "retentionBytes" | "cleanupPolicy" | "deleteRetentionMs" | "minCleanableDirtyRatio" | "segmentBytes">;

export interface PartitionInfo {
  partition: number;
  /** First offset still readable. */
  earliestOffset: number;
  /** Offset the next appended record will get (= last offset + 1). */
  endOffset: number;
  epoch: string;
}

export interface TopicDescription extends TopicConfig {
  name: string;
  createdAt: number;
  partitionInfo: PartitionInfo[];
}

export interface RecordInput {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers?: RecordHeaders;
  /** Milliseconds since the epoch; defaults to the append time. */
  timestamp?: number;
}

export interface LogRecord {
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeaders;
}

/**
 * One produce request inside an append batch, named by its producer: records
 * `first .. first + count - 1` of the batch are the request `(producerId, sequence)`.
 */
export interface ProducerEntry {
  producerId: string;
  sequence: number;
  first: number;
  count: number;
}

export interface AppendOptions {
  /** Default 1. `0` may resolve before the write reaches storage. */
  acks?: Acks;
  /**
   * Idempotent produce across nodes. An engine that keeps producer state (Redis) stores,
   * atomically with the append and per partition, the base offset of each entry's
   * `(producerId, sequence)`; an entry it has already stored is not appended again and is
   * reported in `AppendResult.duplicates` with the first write's base offset. The window is
   * bounded (recent sequences per producer, idle producers forgotten): see the engine.
   * Engines without producer state (file: single node, the broker's in-memory dedupe
   * covers it) ignore this and append everything.
   */
  producers?: ProducerEntry[];
}

export interface AppendResult {
  /**
   * Offset of the first appended record. Without duplicates the i-th record has
   * baseOffset + i; records of duplicate entries are skipped and the others keep their
   * order, contiguous from baseOffset.
   */
  baseOffset: number;
  /** Timestamp the engine stored for the batch (max record timestamp). */
  timestamp: number;
  /** Entries (index into `AppendOptions.producers`) already written: the first write's base offset. */
  duplicates?: Array<{ entry: number; baseOffset: number }>;
}

export interface ReadOptions {
  /** Upper bound on records returned (default 500). */
  maxRecords?: number;
  /** Soft upper bound on bytes returned; at least one record is always returned. */
  maxBytes?: number;
}

/**
 * Receives a tail's records. If `onRecords` returns a promise, the tail waits for it
 * before delivering more (backpressure).
 */
export interface TailHandler {
  onRecords(records: LogRecord[], partition: PartitionPosition): void | Promise<void>;
  /** The tail stopped with this error (e.g. OFFSET_OUT_OF_RANGE after retention, UNKNOWN_TOPIC after delete, STALE_EPOCH when the partition's history changed under it). */
  onError(err: Error): void;
  /**
   * Optional: the tail reached the partition's end (a read found nothing after `nextOffset`)
   * and now waits for appends. Called once per catch-up, not on every wake-up.
   */
  onCaughtUp?(nextOffset: number, partition: PartitionPosition): void;
}

export interface PartitionPosition {
  topic: string;
  partition: number;
  epoch: string;
}

export interface Tail {
  /** Stops delivery; no callback runs after close() returns. Idempotent. */
  close(): void;
}

/** What a commit stores besides the offset (see `LogEngine.commitOffset`). */
export interface CommitOptions {
  /**
   * Epoch of the partition history the offset belongs to: the epoch under which the
   * committer read the records before `offset` (the epoch of its assignment or position),
   * not the partition's epoch at commit time. Omitted or null: unknown.
   */
  epoch?: string | null;
  /** Free text kept with the commit (Kafka's offset metadata). Default "". */
  metadata?: string;
}

export interface CommittedOffset {
  /** The next offset the group will consume (Kafka semantics). */
  offset: number;
  /**
   * Epoch of the history `offset` belongs to, as committed; null = unknown (committed
   * without one, e.g. before commits carried epochs). A reader compares it with the
   * partition's current epoch: another epoch means the offset may name other records now.
   */
  epoch: string | null;
  metadata: string;
  committedAt: number;
}

export interface LogEngine {
  /** Human-readable engine name ("file", "redis"). */
  readonly kind: string;

  createTopic(name: string, config: Partial<TopicConfig>): Promise<TopicDescription>;
  deleteTopic(name: string): Promise<void>;
  describeTopic(name: string): Promise<TopicDescription>;
  listTopics(): Promise<string[]>;

  append(topic: string, partition: number, records: RecordInput[], options?: AppendOptions): Promise<AppendResult>;
  /** Records from `offset` (inclusive). Empty array when offset === end offset. */
  read(topic: string, partition: number, offset: number, options?: ReadOptions): Promise<LogRecord[]>;
  offsets(topic: string, partition: number): Promise<PartitionInfo>;
  /** First offset whose timestamp >= `timestamp`; the end offset if none. */
  offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number>;
  /** Delivers records from `fromOffset` on, catch-up then live. */
  tail(topic: string, partition: number, fromOffset: number, handler: TailHandler): Tail;

  /**
   * Commits a group's position on a partition: `offset` (the next offset to consume) and
   * the epoch it belongs to, `(epoch, offset)`, as one value. Resolves once durable (file:
   * fsynced; Redis: written on the primary). The position is stored and returned as given:
   * the engine does not check the epoch against the partition's (a commit from an old
   * history is kept, so the reader can tell it is stale). Per (group, topic, partition)
   * the last commit wins, with one exception on engines that repair a rolled-back store
   * (Redis): within one epoch (or with an unknown epoch) a commit never lowers the stored
   * offset; a commit under another known epoch replaces it, whatever its offset.
   * Callers serialise commits of one (group, partition) (the group coordinator does).
   * Errors: UNKNOWN_TOPIC / UNKNOWN_PARTITION, BAD_REQUEST (group, offset, epoch,
   * metadata), STORAGE_ERROR, UNAVAILABLE.
   */
  commitOffset(group: string, topic: string, partition: number, offset: number, options?: CommitOptions): Promise<void>;
  /** The group's position on a partition with its epoch (null epoch: committed without one); null when none. */
  fetchOffset(group: string, topic: string, partition: number): Promise<CommittedOffset | null>;
  /** All committed positions of a group: topic → partition → committed (epochs as in `fetchOffset`). */
  fetchGroupOffsets(group: string): Promise<Map<string, Map<number, CommittedOffset>>>;
  listGroups(): Promise<string[]>;

  /**
   * Changes a topic's retention and cleanup settings (not its partitions or replication
   * factor), durably, and returns the new description. Switching to "compact" makes later
   * appends of keyless records fail and lets the cleaner compact the existing log (keyless
   * records already in it are removed by compaction). Errors: UNKNOWN_TOPIC,
   * INVALID_CONFIG / POLICY_VIOLATION (a bad value), STORAGE_ERROR, UNAVAILABLE.
   */
  alterTopicConfig(name: string, changes: Partial<AlterableTopicConfig>): Promise<TopicDescription>;

  /**
   * Log compaction now (the engine's background cleaner runs the same pass on its own
   * schedule): for every partition of `topic` (or of every compacted topic) whose policy
   * includes "compact", removes each record that a later record with the same key
   * supersedes and each tombstone older than `deleteRetentionMs`; offsets never change
   * (reads skip the gaps: `read(o)` of a removed offset returns the records after it). The
   * newest records are not touched (file: the active segment; Redis: nothing newer than the
   * pass's snapshot of the end, and never the last record). `force` ignores the dirty ratio.
   * A partition being appended to meanwhile stays consistent: compaction never changes
   * what a read returns except by removing superseded records.
   */
  compact(topic?: string, options?: { force?: boolean; now?: number }): Promise<CompactionStats>;

  /**
   * Optional: the storage's health, synchronously (no I/O). The file engine reports a failed
   * fdatasync here (it stays unhealthy until restart); engines whose storage is remote
   * (Redis) leave it out and are checked by a round trip instead.
   */
  health?(): EngineHealth;

  /** Makes every acknowledged append durable (fsync/flush). */
  flush(): Promise<void>;
  /** Flushes and releases everything. Later calls fail with UNAVAILABLE. */
  close(): Promise<void>;
}

export const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;

export const DEFAULT_TOPIC_CONFIG: TopicConfig = {
  partitions: 1,
  retentionMs: 7 * 24 * 3600 * 1000,
  retentionBytes: null,
  replicationFactor: 1,
  cleanupPolicy: "delete",
  deleteRetentionMs: 24 * 3600 * 1000,
  minCleanableDirtyRatio: 0.5,
  segmentBytes: null,
};

export function emptyCompactionStats(): CompactionStats {
  return { partitionsCleaned: 0, recordsRead: 0, recordsRemoved: 0, tombstonesRemoved: 0, bytesBefore: 0, bytesAfter: 0 };
}

export function addCompactionStats(into: CompactionStats, add: CompactionStats): CompactionStats {
  into.partitionsCleaned += add.partitionsCleaned;
  into.recordsRead += add.recordsRead;
  into.recordsRemoved += add.recordsRemoved;
  into.tombstonesRemoved += add.tombstonesRemoved;
  into.bytesBefore += add.bytesBefore;
  into.bytesAfter += add.bytesAfter;
  return into;
}
