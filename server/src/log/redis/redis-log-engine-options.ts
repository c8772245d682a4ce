import type { RedisTarget } from "../../redis/redis-connection.ts";
import type { RedisErrorReporter } from "../../redis/redis-error-reporter.ts";

/** Options of `RedisLogEngine.connect`: where Redis is, plus the engine's own settings. */
export interface RedisLogEngineOptions extends RedisTarget {
  /** Prefix of every key (default "trib", redis/redis-key-prefix.ts). Engines sharing a prefix share the data. */
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
  /** Period of the compaction pass over compacted topics (default 15 s; 0 disables the timer, `compact()` still works). */
  compactionCheckIntervalMs?: number;
  /** Safety wake of tails, in case a notification is lost (default 1000 ms). */
  tailPollMs?: number;
  /** Idempotent produce: sequences remembered per producer and partition (default 1024). */
  producerWindow?: number;
  /** Idempotent produce: a producer that has not appended to a partition for this long is forgotten by the retention pass (default 1 h). */
  producerIdleMs?: number;
  /**
   * Where failures no caller sees go (connection errors, the retention pass, notification
   * subscriptions): logged and counted. Default: logged to stderr, not counted.
   */
  reporter?: RedisErrorReporter;
}
