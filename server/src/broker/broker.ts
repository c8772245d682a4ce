import { TributaryError, isTributaryError } from "../errors.ts";
import type {
  Acks,
  LogEngine,
  RecordHeaders,
  RecordInput,
  Tail,
  TailHandler,
  TopicConfig,
  TopicDescription,
} from "../log/log-engine.ts";
import { AppendCoalescer } from "./append-coalescer.ts";
import { KafkaPartitioner, type Partitioner } from "./partitioner.ts";
import { ProducerDedupe } from "./producer-dedupe.ts";
import { Metrics } from "../metrics/metrics.ts";

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
}

export interface ProducedRecord {
  partition: number;
  offset: number;
}

export interface BrokerOptions {
  /** Create unknown topics on first produce/subscribe with `topicDefaults` (MQTT needs it). */
  autoCreateTopics: boolean;
  topicDefaults: Partial<TopicConfig>;
  /** Largest accepted key + value + headers of one record, bytes. */
  maxRecordBytes: number;
  partitioner?: Partitioner;
  /** The node's instruments; a private registry when absent. */
  metrics?: Metrics;
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
 */
export class Broker {
  readonly engine: LogEngine;
  readonly options: BrokerOptions;
  readonly metrics: Metrics;
  readonly #partitioner: Partitioner;
  readonly #dedupe = new ProducerDedupe<ProducedRecord[]>();
  /** Partition counts of topics known to exist (cleared when a topic is deleted). */
  readonly #partitionCounts = new Map<string, number>();
  readonly #creating = new Map<string, Promise<TopicDescription>>();
  readonly #coalescer: AppendCoalescer;

  constructor(engine: LogEngine, options: BrokerOptions) {
    this.engine = engine;
    this.options = options;
    this.#partitioner = options.partitioner ?? new KafkaPartitioner();
    this.metrics = options.metrics ?? new Metrics({ defaultMetrics: false });
    this.#coalescer = new AppendCoalescer(engine, { maxBatchRecords: 4096, maxBatchBytes: 512 * 1024 });
  }

  /** Engine appends issued by the produce path so far (coalescing makes it lower than produce calls). */
  get engineAppends(): number {
    return this.#coalescer.appends;
  }

  async createTopic(name: string, config: Partial<TopicConfig> = {}): Promise<TopicDescription> {
    const description = await this.engine.createTopic(name, { ...this.options.topicDefaults, ...config });
    this.#partitionCounts.set(name, description.partitions);
    return description;
  }

  async deleteTopic(name: string): Promise<void> {
    this.#partitionCounts.delete(name);
    await this.engine.deleteTopic(name);
    this.#partitionCounts.delete(name);
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
      return await this.engine.describeTopic(topic);
    } catch (err) {
      if (!create || !isTributaryError(err, "UNKNOWN_TOPIC")) throw err;
    }
    let pending = this.#creating.get(topic);
    if (!pending) {
      pending = this.engine
        .createTopic(topic, this.options.topicDefaults)
        .catch((err: unknown) => {
          if (isTributaryError(err, "TOPIC_EXISTS")) return this.engine.describeTopic(topic);
          throw err;
        })
        .finally(() => this.#creating.delete(topic));
      this.#creating.set(topic, pending);
    }
    return pending;
  }

  produce(topic: string, records: ProduceRecord[], options: ProduceOptions = {}): Promise<ProducedRecord[]> {
    if (options.producerId !== undefined && options.sequence !== undefined) {
      let written = false;
      const result = this.#dedupe.run(options.producerId, options.sequence, () => {
        written = true;
        return this.#measured(topic, records, options.acks);
      });
      if (!written) this.metrics.duplicatePublishes.inc();
      return result;
    }
    return this.#measured(topic, records, options.acks);
  }

  async #measured(topic: string, records: ProduceRecord[], acks: Acks | undefined): Promise<ProducedRecord[]> {
    const acksLabel = String(acks ?? 1);
    const stop = this.metrics.produceDuration.startTimer({ acks: acksLabel });
    try {
      const result = await this.#produce(topic, records, acks);
      stop();
      this.metrics.producedRecords.inc({ acks: acksLabel }, records.length);
      this.metrics.produceRequests.inc({ code: "OK" });
      return result;
    } catch (err) {
      this.metrics.produceRequests.inc({ code: isTributaryError(err) ? err.code : "INTERNAL" });
      throw err;
    }
  }

  async #produce(topic: string, records: ProduceRecord[], acks: Acks | undefined): Promise<ProducedRecord[]> {
    if (records.length === 0) return [];
    for (const record of records) this.#checkSize(topic, record);
    let partitions = await this.partitions(topic);
    try {
      return await this.#appendAll(topic, records, partitions, acks);
    } catch (err) {
      // The topic may have been deleted (or re-created with another partition count).
      if (!isTributaryError(err, "UNKNOWN_TOPIC") && !isTributaryError(err, "UNKNOWN_PARTITION")) throw err;
      this.#partitionCounts.delete(topic);
      partitions = await this.partitions(topic);
      return this.#appendAll(topic, records, partitions, acks);
    }
  }

  async #appendAll(topic: string, records: ProduceRecord[], partitions: number, acks: Acks | undefined): Promise<ProducedRecord[]> {
    const byPartition = new Map<number, { inputs: RecordInput[]; indexes: number[] }>();
    let sticky: number | undefined;
    records.forEach((record, index) => {
      let partition: number;
      if (record.partition !== undefined) {
        if (!Number.isInteger(record.partition) || record.partition < 0 || record.partition >= partitions) {
          throw new TributaryError("UNKNOWN_PARTITION", `topic "${topic}" has partitions 0..${partitions - 1}, not ${record.partition}`, { topic, partition: record.partition });
        }
        partition = record.partition;
      } else if (record.key !== null) {
        partition = this.#partitioner.forKey(record.key, partitions);
      } else {
        partition = sticky ??= this.#partitioner.sticky(topic, partitions);
      }
      let group = byPartition.get(partition);
      if (!group) byPartition.set(partition, (group = { inputs: [], indexes: [] }));
      group.inputs.push({ key: record.key, value: record.value, headers: record.headers, timestamp: record.timestamp });
      group.indexes.push(index);
    });
    const results = new Array<ProducedRecord>(records.length);
    await Promise.all(
      [...byPartition].map(async ([partition, group]) => {
        const baseOffset = await this.#coalescer.append(topic, partition, group.inputs, acks ?? 1);
        group.indexes.forEach((index, i) => (results[index] = { partition, offset: baseOffset + i }));
      }),
    );
    return results;
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

  /** Tails one partition from `fromOffset` (see LogEngine.tail). */
  tail(topic: string, partition: number, fromOffset: number, handler: TailHandler): Tail {
    return this.engine.tail(topic, partition, fromOffset, handler);
  }
}
