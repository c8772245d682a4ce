/**
 * The LogEngine contract: the only door to storage.
 *
 * Everything above this interface (broker, gateways, groups) is engine-agnostic and is
 * tested against every engine with the same suite (`contract/log-engine-contract.ts`).
 *
 * Guarantees every engine keeps:
 * - Offsets are integers, contiguous per partition, starting at 0 and never reused
 *   (JavaScript numbers: exact up to 2^53, far beyond any partition's life).
 * - Appends to one partition are atomic per batch and totally ordered: a batch gets a
 *   contiguous offset range and no other batch interleaves with it. Callers may append
 *   concurrently; per-caller order is kept (a caller's second append, issued after its
 *   first one was issued, gets higher offsets).
 * - Reads see every append whose promise has resolved (read-your-writes), whatever acks.
 * - `acks: "all"` resolves only once the batch is durable by the engine's definition
 *   (file: fsynced; Redis: acknowledged by the configured replicas via WAIT).
 * - A tail delivers records in offset order, starting exactly at the requested offset,
 *   catch-up then live, with no gap and no duplicate.
 * - Each partition has an epoch (an opaque string) that changes whenever its history may
 *   have been rewritten (topic re-created, a tail lost by the storage). A position is
 *   (epoch, offset).
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
  /** Delete whole segments/ranges older than this; null = keep forever. */
  retentionMs: number | null;
  /** Keep at most this many bytes per partition (whole segments); null = no limit. */
  retentionBytes: number | null;
  /** Copies of each partition. The file engine accepts only 1. */
  replicationFactor: number;
  /** Cleanup policy; only "delete" for now. */
  cleanupPolicy: "delete";
}

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
  /** The tail stopped with this error (e.g. OFFSET_OUT_OF_RANGE after retention, UNKNOWN_TOPIC after delete). */
  onError(err: Error): void;
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

export interface CommittedOffset {
  /** The next offset the group will consume (Kafka semantics). */
  offset: number;
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

  commitOffset(group: string, topic: string, partition: number, offset: number, metadata?: string): Promise<void>;
  fetchOffset(group: string, topic: string, partition: number): Promise<CommittedOffset | null>;
  /** All committed offsets of a group: topic → partition → committed. */
  fetchGroupOffsets(group: string): Promise<Map<string, Map<number, CommittedOffset>>>;
  listGroups(): Promise<string[]>;

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
};
