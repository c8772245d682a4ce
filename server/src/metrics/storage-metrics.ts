import { performance } from "node:perf_hooks";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { OTHER_TOPIC, type TopicLabels } from "./traffic-metrics.ts";

/** What the partition metrics read at scrape time (the broker's view of the log engine). */
export interface PartitionSource {
  /** "file" engines' group commits are timed (tributary_fsync_duration_seconds). */
  readonly kind: string;
  listTopics(): Promise<string[]>;
  describeTopic(topic: string): Promise<{ partitionInfo: Array<{ partition: number; earliestOffset: number; endOffset: number }> }>;
  /** Bytes and segments of a partition, when the engine keeps files (file engine). */
  partitionStorage?(topic: string, partition: number): { bytes: number; segments: number };
  /** Retention and compaction passes since the engine opened, when the engine counts them. */
  maintenanceRuns?(): { retention: number; compaction: number };
}

/** The `component` label of the Redis metrics: which part of the node owns the connection. */
export const REDIS_COMPONENTS = ["log-engine", "node-registry", "group-coordinator"] as const;

/** A Redis client as far as the command metrics need it (ioredis Redis or Cluster). */
interface WatchedRedisClient {
  sendCommand(command: { name: string; promise: Promise<unknown> }, ...rest: unknown[]): unknown;
  on(event: "reconnecting" | "+node", listener: (...args: unknown[]) => void): unknown;
}

/**
 * Storage group commits (fsync rounds) of every file engine in the process reach the
 * live StorageMetrics through this set (weakly held: a node's metrics that are gone stop
 * receiving, nothing is kept alive by it). See `recordGroupCommit`.
 */
const groupCommitListeners = new Set<WeakRef<StorageMetrics>>();

/** Called by the file engine's GroupCommit after each fsync round: how long it took, how many waiters it served. */
export function recordGroupCommit(seconds: number, waiters: number): void {
  for (const ref of groupCommitListeners) {
    const m = ref.deref();
    if (m) m.groupCommitted(seconds, waiters);
    else groupCommitListeners.delete(ref);
  }
}

/**
 * Partitions (end and earliest offsets, bytes, segments; retention and compaction runs)
 * computed at scrape time from the engine; fsync duration and group-commit batch sizes
 * (file engine); Redis command latency, errors and reconnects.
 */
export class StorageMetrics {
  readonly enabled: boolean;
  readonly #topics: TopicLabels;
  #source: PartitionSource | null = null;

  readonly fsyncDuration: Histogram;
  readonly groupCommitBatch: Histogram;
  readonly redisCommandDuration: Histogram<"component">;
  readonly redisCommandErrors: Counter<"component">;
  readonly redisReconnects: Counter<"component">;

  /** `onCollectError`: the partitions could not be read for a scrape (storage down): their series are left out of it. */
  constructor(registry: Registry, topics: TopicLabels, options: { enabled: boolean; onCollectError: (err: unknown, what: string) => void }) {
    this.enabled = options.enabled;
    this.#topics = topics;
    const self = this;
    type Row = { topic: string; partition: number; earliest: number; end: number; bytes: number | null; segments: number | null };
    let snapshot: { at: number; value: Promise<Row[]> } | null = null;
    const rows = (): Promise<Row[]> => {
      const now = Date.now();
      if (!snapshot || now - snapshot.at >= 500) {
        // A failed read leaves the partition series out of this scrape (the rest of /metrics still answers).
        const value = self.#readPartitions().catch((err: unknown) => {
          options.onCollectError(err, "partitions");
          return [];
        });
        snapshot = { at: now, value };
      }
      return snapshot.value;
    };
    const partitionGauge = (name: string, help: string, pick: (r: Row) => number | null, summable: boolean) =>
      new Gauge({
        name,
        help: `${help} Per topic and partition${summable ? `; topics past metrics.maxTopicLabels summed as topic="${OTHER_TOPIC}", partition=""` : " (topics within metrics.maxTopicLabels)"}.`,
        labelNames: ["topic", "partition"] as const,
        registers: [registry],
        async collect() {
          if (!self.#source) return;
          const all = await rows();
          this.reset();
          let other: number | null = null;
          for (const r of all) {
            const value = pick(r);
            if (value === null) continue;
            const topic = self.#topics.label(r.topic);
            if (topic !== OTHER_TOPIC) this.set({ topic, partition: String(r.partition) }, value);
            else if (summable) other = (other ?? 0) + value;
          }
          if (other !== null) this.set({ topic: OTHER_TOPIC, partition: "" }, other);
        },
      });
    partitionGauge("tributary_partition_end_offset", "Offset the next record appended to the partition will get (last offset + 1).", (r) => r.end, false);
    partitionGauge("tributary_partition_earliest_offset", "First offset of the partition still readable (retention moves it up).", (r) => r.earliest, false);
    partitionGauge("tributary_partition_bytes", "Bytes of the partition's segment files (file engine).", (r) => r.bytes, true);
    partitionGauge("tributary_partition_segments", "Segment files of the partition (file engine).", (r) => r.segments, true);
    new Counter({
      name: "tributary_log_maintenance_runs_total",
      help: "Retention and compaction passes of the log engine since the node started, by kind (retention, compaction).",
      labelNames: ["kind"] as const,
      registers: [registry],
      collect() {
        const runs = self.#source?.maintenanceRuns?.();
        this.reset();
        this.inc({ kind: "retention" }, runs?.retention ?? 0);
        this.inc({ kind: "compaction" }, runs?.compaction ?? 0);
      },
    });
    this.fsyncDuration = new Histogram({
      name: "tributary_fsync_duration_seconds",
      help: "Duration of the file engine's fsync rounds (group commit: one fdatasync serves every waiting producer).",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    });
    this.groupCommitBatch = new Histogram({
      name: "tributary_group_commit_batch_size",
      help: "Waiters (produce requests with acks=all, flushes, offset commits) one fsync round served.",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers: [registry],
    });
    this.redisCommandDuration = new Histogram({
      name: "tributary_redis_command_duration_seconds",
      help: `Redis command round trips (sent to reply), by component (${REDIS_COMPONENTS.join(", ")}); blocking reads of the subscriber connections excluded.`,
      labelNames: ["component"] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    });
    this.redisCommandErrors = new Counter({
      name: "tributary_redis_command_errors_total",
      help: "Redis commands that failed (error reply, connection lost, timeout), by component.",
      labelNames: ["component"] as const,
      registers: [registry],
    });
    this.redisReconnects = new Counter({
      name: "tributary_redis_reconnects_total",
      help: "Times a Redis connection was lost and ioredis started reconnecting, by component.",
      labelNames: ["component"] as const,
      registers: [registry],
    });
    for (const component of REDIS_COMPONENTS) {
      this.redisCommandDuration.zero({ component });
      this.redisCommandErrors.labels({ component }).inc(0);
      this.redisReconnects.labels({ component }).inc(0);
    }
  }

  /**
   * The engine to read partitions from at scrape time. A file engine's metrics also receive
   * the process's group commits (fsync rounds are timed per process: one node per process
   * in production; in-process test nodes on the file engine share them).
   */
  setSource(source: PartitionSource): void {
    this.#source = source;
    if (this.enabled && source.kind === "file") groupCommitListeners.add(new WeakRef(this));
  }

  groupCommitted(seconds: number, waiters: number): void {
    this.fsyncDuration.observe(seconds);
    this.groupCommitBatch.observe(waiters);
  }

  /** Times every command of `client` and counts its failures and reconnects under `component`. */
  watchRedis(client: WatchedRedisClient, component: string): void {
    if (!this.enabled) return;
    const duration = this.redisCommandDuration.labels({ component });
    const errors = this.redisCommandErrors.labels({ component });
    const send = client.sendCommand.bind(client) as WatchedRedisClient["sendCommand"];
    client.sendCommand = (command, ...rest) => {
      const started = performance.now();
      const result = send(command, ...rest);
      command.promise.then(
        () => duration.observe((performance.now() - started) / 1000),
        () => errors.inc(), // the caller gets this rejection through its own promise; counted here
      );
      return result;
    };
    client.on("reconnecting", () => this.redisReconnects.inc({ component }));
  }

  async #readPartitions(): Promise<Array<{ topic: string; partition: number; earliest: number; end: number; bytes: number | null; segments: number | null }>> {
    const source = this.#source!;
    const out = [];
    for (const topic of (await source.listTopics()).sort()) {
      let description;
      try {
        description = await source.describeTopic(topic);
      } catch (err) {
        if ((err as { code?: string }).code === "UNKNOWN_TOPIC") continue; // deleted between list and describe
        throw err;
      }
      for (const p of description.partitionInfo) {
        const storage = source.partitionStorage?.(topic, p.partition) ?? null;
        out.push({ topic, partition: p.partition, earliest: p.earliestOffset, end: p.endOffset, bytes: storage?.bytes ?? null, segments: storage?.segments ?? null });
      }
    }
    return out;
  }
}
