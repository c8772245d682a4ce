import { TributaryError, isTributaryError } from "../errors.ts";
import type {
  AlterableTopicConfig,
  EngineHealth,
  Acks,
  LogEngine,
  LogRecord,
  PartitionInfo,
  ReadOptions,
  RecordHeaders,
  RecordInput,
  Tail,
  TailHandler,
  TopicConfig,
  TopicDescription,
} from "../log/log-engine.ts";
import { AppendCoalescer, type RequestProducer } from "./append-coalescer.ts";
import { KafkaPartitioner, producerPartition, type Partitioner } from "./partitioner.ts";
import { ProducerDedupe } from "./producer-dedupe.ts";
import { Metrics } from "../metrics/metrics.ts";
import { registerStorageHealthMetrics } from "../metrics/storage-health-metrics.ts";
import type { Protocol } from "../metrics/traffic-metrics.ts";
import type { PartitionSource } from "../metrics/storage-metrics.ts";
import { FeedRegistry } from "./delivery/partition-feed.ts";

export interface ProduceRecord {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers?: RecordHeaders;
  timestamp?: number;
  /** Explicit partition; otherwise the partitioner decides. */
  partition?: number;
}

export interface ProduceOptions {
  acks?: Acks;
  /** With `sequence`: deduplicates retries of the same request (idempotent produce). */
  producerId?: string;
  sequence?: number;
  /** Which protocol the records came in by (`tributary_records_in_total{protocol}`); default "internal". */
  source?: Protocol;
}

/** A topic created or deleted through this node. */
export interface TopicEvent {
  kind: "created" | "deleted";
  topic: string;
}

export interface ProducedRecord {
  partition: number;
  offset: number;
}

/** A produce acks level's instruments (duration histogram child, request and record tallies). */
interface ProduceInstruments {
  duration: { observe(v: number): void };
  tally: { requests: number; records: number };
}

/** How `produceOne` completes: `err` null with the record's partition and offset, or the error. Must not throw. */
export type ProduceDone = (err: unknown, partition: number, offset: number) => void;

export interface BrokerOptions {
  /** Create unknown topics on first produce/subscribe with `topicDefaults` (MQTT needs it). */
  autoCreateTopics: boolean;
  topicDefaults: Partial<TopicConfig>;
  /** Largest accepted key + value + headers of one record, bytes. */
  maxRecordBytes: number;
  partitioner?: Partitioner;
  /** The node's instruments; a private registry when absent. */
  metrics?: Metrics;
  /** Limits on topics and partitions (POLICY_VIOLATION past them); none when absent. */
  quotas?: TopicQuotas;
}

export interface TopicQuotas {
  maxTopics: number;
  maxPartitionsPerTopic: number;
  /** Over all topics: each partition keeps files open (file engine) or keys (Redis). */
  maxPartitions: number;
}

/**
 * The produce path and topic access shared by every gateway (HTTP, WebSocket, MQTT):
 * partitioning, topic auto-creation, size limits, idempotent produce, and tails.
 *
 * Guarantees: the records of one produce call that land in the same partition are
 * appended contiguously, in call order; results come back in the order of the input.
 * Produce calls to one partition that arrive in the same event-loop turn (or while its
 * previous append is in flight) share one engine append (AppendCoalescer): a call that
 * arrives after another gets higher offsets, idempotence stays per call, and a failed
 * append fails only the calls it carried.
 *
 * Idempotent produce: a call with (producerId, sequence) runs once per node (ProducerDedupe,
 * in memory) and is passed to the engine as a producer entry, so an engine with producer
 * state (Redis) also dedupes a retry that reaches another node. Its null-keyed records go
 * to `producerPartition(producerId, sequence)`, the same partition on every node.
 */
export class Broker {
  readonly #engine: LogEngine;
  readonly options: BrokerOptions;
  readonly metrics: Metrics;
  readonly #partitioner: Partitioner;
  readonly #dedupe = new ProducerDedupe<ProducedRecord[]>();
  /** Partition counts of topics known to exist (cleared when a topic is deleted). */
  readonly #partitionCounts = new Map<string, number>();
  readonly #creating = new Map<string, Promise<TopicDescription>>();
  readonly #coalescer: AppendCoalescer;
  /** The node's shared live feeds, one per partition with subscribers at its live edge (delivery/). */
  readonly feeds: FeedRegistry;
  readonly #topicListeners = new Set<(event: TopicEvent) => void>();
  readonly #byAcks = new Map<string, ProduceInstruments>();

  constructor(engine: LogEngine, options: BrokerOptions) {
    this.#engine = engine;
    this.options = options;
    this.#partitioner = options.partitioner ?? new KafkaPartitioner();
    this.metrics = options.metrics ?? new Metrics({ defaultMetrics: false });
    this.metrics.storage.setSource(engine); // partitions' offsets and sizes, read at scrape time
    registerStorageHealthMetrics(this.metrics.registry, () => engine.health?.() ?? null); // fsync failures, read at scrape time
    this.feeds = new FeedRegistry(this);
    this.#coalescer = new AppendCoalescer(engine, { maxBatchRecords: 4096, maxBatchBytes: 512 * 1024, onDuplicate: () => this.metrics.duplicatePublishes.inc() });
  }

  /** Engine appends issued by the produce path so far (coalescing makes it lower than produce calls). */
  get engineAppends(): number {
    return this.#coalescer.appends;
  }

  async createTopic(name: string, config: Partial<TopicConfig> = {}): Promise<TopicDescription> {
    const resolved = { ...this.options.topicDefaults, ...config };
    const description = await this.#withinQuota(name, resolved.partitions ?? 1, () => this.#engine.createTopic(name, resolved));
    this.#partitionCounts.set(name, description.partitions);
    this.#emit({ kind: "created", topic: name });
    return description;
  }

  async deleteTopic(name: string): Promise<void> {
    this.#partitionCounts.delete(name);
    const partitions = this.#totals ? (await this.#engine.describeTopic(name)).partitions : 0;
    await this.#engine.deleteTopic(name);
    if (this.#totals) {
      this.#totals.topics--;
      this.#totals.partitions -= partitions;
    }
    this.#partitionCounts.delete(name);
    this.#emit({ kind: "deleted", topic: name });
  }

  /** Topics and partitions on the node (loaded on the first create under quotas, then kept up to date here). */
  #totals: { topics: number; partitions: number } | null = null;
  #loadingTotals: Promise<{ topics: number; partitions: number }> | null = null;

  /**
   * Runs `create` if one more topic of `partitions` partitions fits the quotas, reserving
   * its share first so that concurrent creations cannot overshoot together; released if
   * the creation fails. POLICY_VIOLATION names the limit and its config key.
   */
  async #withinQuota<T>(topic: string, partitions: number, create: () => Promise<T>): Promise<T> {
    const q = this.options.quotas;
    if (!q) return create();
    if (partitions > q.maxPartitionsPerTopic) {
      throw new TributaryError("POLICY_VIOLATION", `topic "${topic}": ${partitions} partitions is more than limits.maxPartitionsPerTopic (${q.maxPartitionsPerTopic})`, { topic, partitions, limit: q.maxPartitionsPerTopic });
    }
    const totals =
      this.#totals ??
      (await (this.#loadingTotals ??= this.#loadTotals().catch((err: unknown) => {
        this.#loadingTotals = null; // try again at the next creation
        throw err;
      })));
    if (totals.topics + 1 > q.maxTopics) {
      throw new TributaryError("POLICY_VIOLATION", `topic "${topic}": the node holds ${totals.topics} topics, the most limits.maxTopics allows`, { topic, limit: q.maxTopics });
    }
    if (totals.partitions + partitions > q.maxPartitions) {
      throw new TributaryError("POLICY_VIOLATION", `topic "${topic}": ${partitions} more partitions would pass limits.maxPartitions (${q.maxPartitions}; ${totals.partitions} in use)`, { topic, partitions, limit: q.maxPartitions });
    }
    totals.topics++;
    totals.partitions += partitions;
    try {
      return await create();
    } catch (err) {
      totals.topics--;
      totals.partitions -= partitions;
      throw err;
    }
  }

  async #loadTotals(): Promise<{ topics: number; partitions: number }> {
    const names = await this.#engine.listTopics();
    let partitions = 0;
    for (const name of names) {
      try {
        partitions += (await this.#engine.describeTopic(name)).partitions;
      } catch (err) {
        if (!isTributaryError(err, "UNKNOWN_TOPIC")) throw err; // deleted meanwhile: not counted
      }
    }
    this.#totals = { topics: names.length, partitions };
    return this.#totals;
  }

  /**
   * Topics created or deleted through this node (other nodes' changes are not seen here:
   * listeners that must see them also poll). Returns the unsubscribe function.
   */
  onTopicEvent(listener: (event: TopicEvent) => void): () => void {
    this.#topicListeners.add(listener);
    return () => this.#topicListeners.delete(listener);
  }

  #emit(event: TopicEvent): void {
    for (const listener of [...this.#topicListeners]) listener(event);
  }

  /** Partition count of `topic`, creating the topic if allowed and missing. */
  async partitions(topic: string, create = this.options.autoCreateTopics): Promise<number> {
    const known = this.#partitionCounts.get(topic);
    if (known !== undefined) return known;
    const description = await this.describeOrCreate(topic, create);
    this.#partitionCounts.set(topic, description.partitions);
    return description.partitions;
  }

  async describeOrCreate(topic: string, create = this.options.autoCreateTopics): Promise<TopicDescription> {
    try {
      return await this.#engine.describeTopic(topic);
    } catch (err) {
      if (!create || !isTributaryError(err, "UNKNOWN_TOPIC")) throw err;
    }
    let pending = this.#creating.get(topic);
    if (!pending) {
      pending = this.#withinQuota(topic, this.options.topicDefaults.partitions ?? 1, () => this.#engine.createTopic(topic, this.options.topicDefaults))
        .then((created) => {
          this.#emit({ kind: "created", topic });
          return created;
        })
        .catch((err: unknown) => {
          if (isTributaryError(err, "TOPIC_EXISTS")) return this.#engine.describeTopic(topic);
          throw err;
        })
        .finally(() => this.#creating.delete(topic));
      this.#creating.set(topic, pending);
    }
    return pending;
  }

  produce(topic: string, records: ProduceRecord[], options: ProduceOptions = {}): Promise<ProducedRecord[]> {
    if (options.producerId !== undefined && options.sequence !== undefined) {
      const producer = { producerId: options.producerId, sequence: options.sequence };
      let written = false;
      const result = this.#dedupe.run(options.producerId, options.sequence, () => {
        written = true;
        return this.#measured(topic, records, options.acks, producer, options.source);
      });
      if (!written) this.metrics.duplicatePublishes.inc();
      return result;
    }
    return this.#measured(topic, records, options.acks, undefined, options.source);
  }

  /** Labelled instrument children, resolved once per acks level (label lookup per request is costly). */
  #instruments(acks: Acks | undefined): ProduceInstruments {
    const label = String(acks ?? 1);
    let m = this.#byAcks.get(label);
    if (!m) {
      m = { duration: this.metrics.produceDurationFast.labels({ acks: label }), tally: this.metrics.tallyFor(label) };
      this.#byAcks.set(label, m);
    }
    return m;
  }

  #measured(topic: string, records: ProduceRecord[], acks: Acks | undefined, producer: RequestProducer | undefined, source: Protocol = "internal"): Promise<ProducedRecord[]> {
    const m = this.#instruments(acks);
    const started = performance.now();
    return this.#produce(topic, records, acks, producer).then(
      (result) => {
        this.#produced(m, started, source, topic, records);
        return result;
      },
      (err: unknown) => {
        this.#produceFailed(err);
        throw err;
      },
    );
  }

  /** A produce request succeeded: its duration, request and record tallies, traffic. */
  #produced(m: ProduceInstruments, started: number, source: Protocol, topic: string, records: ProduceRecord[]): void {
    m.duration.observe((performance.now() - started) / 1000);
    m.tally.records += records.length;
    m.tally.requests++;
    if (this.metrics.enabled) this.metrics.traffic.produced(source, topic, records.length, payloadBytes(records));
  }

  #produceFailed(err: unknown): void {
    this.metrics.produceRequests.inc({ code: isTributaryError(err) ? err.code : "INTERNAL" });
  }

  /**
   * `produce(topic, [record], options)` completing through a callback: the per-publish path
   * of the WebSocket gateway, with no promise per publish when the topic's partition count
   * is known and the request carries no producer (otherwise it takes `produce` underneath).
   * Same partitioning, limits, coalescing, order and metrics as `produce`.
   */
  produceOne(topic: string, record: ProduceRecord, options: ProduceOptions, done: ProduceDone): void {
    const known = options.producerId === undefined || options.sequence === undefined ? this.#partitionCounts.get(topic) : undefined;
    if (known === undefined) {
      this.produce(topic, [record], options).then(
        (results) => done(null, results[0]!.partition, results[0]!.offset),
        (err: unknown) => done(err, -1, -1),
      );
      return;
    }
    const m = this.#instruments(options.acks);
    const started = performance.now();
    this.#appendOne(topic, record, known, options.acks, undefined, (err, partition, offset) => {
      if (err === null) this.#produced(m, started, options.source ?? "internal", topic, [record]);
      else this.#produceFailed(err);
      done(err, partition, offset);
    });
  }

  /**
   * One record to a topic of `partitions` partitions (known: no lookup before the coalescer,
   * so calls reach it in call order), completing through `done`. A stale partition count
   * (the topic deleted or re-created meanwhile) is looked up again and the record produced
   * through `#produceMany`.
   */
  #appendOne(topic: string, record: ProduceRecord, partitions: number, acks: Acks | undefined, producer: RequestProducer | undefined, done: ProduceDone): void {
    let partition: number;
    try {
      this.#checkSize(topic, record);
      partition = this.#partitionFor(topic, record, partitions, undefined, producer);
    } catch (err) {
      done(err, -1, -1);
      return;
    }
    const input: RecordInput = { key: record.key, value: record.value, headers: record.headers, timestamp: record.timestamp };
    this.#coalescer.appendThen(topic, partition, [input], acks ?? 1, producer, (err, offset) => {
      if (err === null) done(null, partition, offset);
      else if (!isStaleTopicError(err)) done(err, -1, -1);
      else {
        this.#partitionCounts.delete(topic);
        this.#produceMany(topic, [record], acks, producer).then(
          ([result]) => done(null, result!.partition, result!.offset),
          (retryErr: unknown) => done(retryErr, -1, -1),
        );
      }
    });
  }

  #produce(topic: string, records: ProduceRecord[], acks: Acks | undefined, producer: RequestProducer | undefined): Promise<ProducedRecord[]> {
    if (records.length === 0) return Promise.resolve([]);
    const known = this.#partitionCounts.get(topic);
    if (known === undefined) return this.#afterLookup(topic, () => this.#produce(topic, records, acks, producer));
    // A known topic: no await before the coalescer, so calls reach it in call order.
    // (Callbacks are inline arrows: no closure object kept per call beyond the promise's.)
    if (records.length > 1) {
      try {
        for (const record of records) this.#checkSize(topic, record);
      } catch (err) {
        return Promise.reject(err);
      }
      return this.#appendAll(topic, records, known, acks, producer).catch((err: unknown) => this.#retryAfterTopicChange(err, topic, records, acks, producer));
    }
    // One record: no Map, no Promise.all.
    return new Promise((resolve, reject) =>
      this.#appendOne(topic, records[0]!, known, acks, producer, (err, partition, offset) => (err === null ? resolve([{ partition, offset }]) : reject(err))),
    );
  }

  /** The cached partition count was stale (topic deleted or re-created): look it up and produce again. */
  #retryAfterTopicChange(err: unknown, topic: string, records: ProduceRecord[], acks: Acks | undefined, producer: RequestProducer | undefined): Promise<ProducedRecord[]> {
    if (!isStaleTopicError(err)) throw err;
    this.#partitionCounts.delete(topic);
    return this.#produceMany(topic, records, acks, producer);
  }

  /**
   * One lookup per topic this node does not know yet (its partition count: describe, or
   * auto-create): produce calls for it wait behind that one promise in call order, and its
   * callbacks run in one microtask run, so they reach the coalescer in call order before any
   * later call (which finds the topic known) can. With a lookup per call, a call arriving
   * once the first lookup had filled the cache overtook calls still waiting for theirs: a
   * key's records landed out of publish order (seen on a Redis node whose SDK subscribers on
   * other nodes had created the topic).
   */
  readonly #lookups = new Map<string, Promise<number>>();

  #afterLookup<T>(topic: string, then: () => Promise<T>): Promise<T> {
    let lookup = this.#lookups.get(topic);
    if (!lookup) {
      const started: Promise<number> = this.partitions(topic).finally(() => {
        if (this.#lookups.get(topic) === started) this.#lookups.delete(topic);
      });
      this.#lookups.set(topic, started);
      lookup = started;
    }
    return lookup.then(then);
  }

  async #produceMany(topic: string, records: ProduceRecord[], acks: Acks | undefined, producer: RequestProducer | undefined): Promise<ProducedRecord[]> {
    for (const record of records) this.#checkSize(topic, record);
    let partitions = await this.partitions(topic);
    try {
      return await this.#appendAll(topic, records, partitions, acks, producer);
    } catch (err) {
      // The topic may have been deleted (or re-created with another partition count).
      if (!isStaleTopicError(err)) throw err;
      this.#partitionCounts.delete(topic);
      partitions = await this.partitions(topic);
      return this.#appendAll(topic, records, partitions, acks, producer);
    }
  }

  async #appendAll(topic: string, records: ProduceRecord[], partitions: number, acks: Acks | undefined, producer: RequestProducer | undefined): Promise<ProducedRecord[]> {
    const byPartition = new Map<number, { inputs: RecordInput[]; indexes: number[] }>();
    let sticky: number | undefined;
    records.forEach((record, index) => {
      const partition = this.#partitionFor(topic, record, partitions, sticky, producer);
      if (record.partition === undefined && record.key === null) sticky = partition;
      let group = byPartition.get(partition);
      if (!group) byPartition.set(partition, (group = { inputs: [], indexes: [] }));
      group.inputs.push({ key: record.key, value: record.value, headers: record.headers, timestamp: record.timestamp });
      group.indexes.push(index);
    });
    const results = new Array<ProducedRecord>(records.length);
    await Promise.all(
      [...byPartition].map(async ([partition, group]) => {
        const baseOffset = await this.#coalescer.append(topic, partition, group.inputs, acks ?? 1, producer);
        group.indexes.forEach((index, i) => (results[index] = { partition, offset: baseOffset + i }));
      }),
    );
    return results;
  }

  /**
   * The record's partition: explicit, murmur2 of the key, or the call's sticky one (`sticky`,
   * else the producer's partition for this sequence, else a new pick).
   */
  #partitionFor(topic: string, record: ProduceRecord, partitions: number, sticky: number | undefined, producer: RequestProducer | undefined): number {
    if (record.partition !== undefined) {
      if (!Number.isInteger(record.partition) || record.partition < 0 || record.partition >= partitions) {
        throw new TributaryError("UNKNOWN_PARTITION", `topic "${topic}" has partitions 0..${partitions - 1}, not ${record.partition}`, { topic, partition: record.partition });
      }
      return record.partition;
    }
    if (record.key !== null) return this.#partitioner.forKey(record.key, partitions);
    if (sticky !== undefined) return sticky;
    return producer ? producerPartition(producer.producerId, producer.sequence, partitions) : this.#partitioner.sticky(topic, partitions);
  }

  #checkSize(topic: string, record: ProduceRecord): void {
    let size = (record.key?.length ?? 0) + (record.value?.length ?? 0);
    if (record.headers) for (const [name, value] of Object.entries(record.headers)) size += name.length + value.length;
    if (size > this.options.maxRecordBytes) {
      throw new TributaryError(
        "RECORD_TOO_LARGE",
        `record of ${size} bytes exceeds the limit of ${this.options.maxRecordBytes} bytes (limits.maxRecordBytes)`,
        { topic, size, limit: this.options.maxRecordBytes },
      );
    }
  }

  // ---- reads and topic metadata: the gateways' door to the log (LogEngine semantics) ----

  /** The engine's name ("file", "redis"), for health and status output. */
  get engineKind(): string {
    return this.#engine.kind;
  }

  describeTopic(name: string): Promise<TopicDescription> {
    return this.#engine.describeTopic(name);
  }

  /**
   * Bytes the topic's partitions take in storage, when the engine keeps files (file
   * engine: segment files); null when it does not say (Redis) or a partition is gone.
   */
  topicSizeBytes(description: TopicDescription): number | null {
    const source: PartitionSource = this.#engine;
    if (!source.partitionStorage) return null;
    try {
      return description.partitionInfo.reduce((n, p) => n + source.partitionStorage!(description.name, p.partition).bytes, 0);
    } catch (err) {
      if (isTributaryError(err, "UNKNOWN_TOPIC") || isTributaryError(err, "UNKNOWN_PARTITION")) return null; // deleted meanwhile
      throw err;
    }
  }

  /** The log engine's storage health (`LogEngine.health`), or null when the engine has none to report (Redis: checked by a round trip). */
  storageHealth(): EngineHealth | null {
    return this.#engine.health?.() ?? null;
  }

  /** Changes a topic's retention and cleanup settings (`LogEngine.alterTopicConfig`); the node's own use (keyed internal topics). */
  alterTopicConfig(name: string, changes: Partial<AlterableTopicConfig>): Promise<TopicDescription> {
    return this.#engine.alterTopicConfig(name, changes);
  }

  listTopics(): Promise<string[]> {
    return this.#engine.listTopics();
  }

  offsets(topic: string, partition: number): Promise<PartitionInfo> {
    return this.#engine.offsets(topic, partition);
  }

  /** Records from `offset` (inclusive); see LogEngine.read. */
  read(topic: string, partition: number, offset: number, options?: ReadOptions): Promise<LogRecord[]> {
    return this.#engine.read(topic, partition, offset, options);
  }

  offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    return this.#engine.offsetForTimestamp(topic, partition, timestamp);
  }

  /** Tails one partition from `fromOffset` (see LogEngine.tail). Delivery to subscribers goes through `delivery/`. */
  tail(topic: string, partition: number, fromOffset: number, handler: TailHandler): Tail {
    return this.#engine.tail(topic, partition, fromOffset, handler);
  }

  /** Offsets stored under an internal group name (MQTT session positions); consumer groups commit through their coordinator. */
  commitOffset(...args: Parameters<LogEngine["commitOffset"]>): Promise<void> {
    return this.#engine.commitOffset(...args);
  }

  fetchGroupOffsets(group: string): ReturnType<LogEngine["fetchGroupOffsets"]> {
    return this.#engine.fetchGroupOffsets(group);
  }
}
export { TOPIC_NAME_PATTERN } from "../log/log-engine.ts";

/** Key + value bytes of produced records (`tributary_bytes_in_total`). */
function payloadBytes(records: ProduceRecord[]): number {
  let n = 0;
  for (const r of records) n += (r.key?.length ?? 0) + (r.value?.length ?? 0);
  return n;
}

/** The partition count a produce used was stale: the topic was deleted or re-created with other partitions. */
function isStaleTopicError(err: unknown): boolean {
  return isTributaryError(err, "UNKNOWN_TOPIC") || isTributaryError(err, "UNKNOWN_PARTITION");
}
