import { isTributaryError } from "../errors.ts";
import { isCompacted, type LogRecord, type RecordHeaders, type TopicConfig } from "../log/log-engine.ts";
import type { Broker } from "./broker.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * How a keyed topic is created: one partition, no time or size retention, compacted, and
 * 4 MiB segments (the active segment is never compacted: start-up reads the live keys plus
 * at most this much history).
 */
export const KEYED_TOPIC_CONFIG = { partitions: 1, retentionMs: null, retentionBytes: null, cleanupPolicy: "compact", segmentBytes: 4 << 20 } satisfies Partial<TopicConfig>;

/**
 * An internal single-partition topic used as a durable key → value table (MQTT retained
 * messages, MQTT sessions), through the broker like any other topic: created on first use
 * compacted (cleanupPolicy "compact", no retention), written one record per change through
 * the produce path (size limits, coalescing; `put` with a null or empty value writes a
 * tombstone: a null value, which compaction removes after the topic's deleteRetentionMs),
 * and read back from its start on load (last record per key wins). Compaction keeps about
 * one record per live key, so loading costs what the live keys cost, not the history.
 *
 * A topic that exists with another policy or no segment size of its own (a data directory
 * from before compaction) is switched to "compact" and 4 MiB segments by `ensure` (its
 * history is compacted by the engine's cleaner).
 *
 * Guarantees: `put`s of one KeyedTopic resolve in call order and land in call order;
 * `replay` sees every `put` that resolved before it started.
 */
export class KeyedTopic {
  readonly name: string;
  readonly #broker: Broker;
  #ready: Promise<void> | null = null;

  constructor(broker: Broker, name: string) {
    this.#broker = broker;
    this.name = name;
  }

  /** Creates the topic once; a concurrent or earlier creation is fine. */
  ensure(): Promise<void> {
    this.#ready ??= this.#create().catch((err: unknown) => {
      this.#ready = null;
      throw err;
    });
    return this.#ready;
  }

  async #create(): Promise<void> {
    try {
      await this.#broker.createTopic(this.name, KEYED_TOPIC_CONFIG);
      return;
    } catch (err) {
      if (!isTributaryError(err, "TOPIC_EXISTS")) throw err;
    }
    const existing = await this.#broker.describeTopic(this.name);
    if (!isCompacted(existing.cleanupPolicy) || existing.segmentBytes === null) {
      await this.#broker.alterTopicConfig(this.name, { cleanupPolicy: "compact", segmentBytes: existing.segmentBytes ?? KEYED_TOPIC_CONFIG.segmentBytes });
    }
  }

  /** Appends one record keyed by `key` (a null or empty value: a tombstone); durable as acks=1 when the promise resolves. */
  async put(key: string, value: Uint8Array | null, headers?: RecordHeaders, timestamp?: number): Promise<void> {
    await this.ensure();
    const stored = value === null || value.length === 0 ? null : value;
    await this.#broker.produce(this.name, [{ key: enc.encode(key), value: stored, headers, timestamp, partition: 0 }], { acks: 1 });
  }

  /**
   * Calls `apply(key, record)` for every keyed record from the earliest offset, in order
   * (a tombstone has a null value). Gap-safe: each read continues after the last offset it got.
   */
  async replay(apply: (key: string, record: LogRecord) => void): Promise<void> {
    await this.ensure();
    let offset = (await this.#broker.offsets(this.name, 0)).earliestOffset;
    for (;;) {
      const records = await this.#broker.read(this.name, 0, offset, { maxRecords: 1000 });
      if (records.length === 0) return;
      for (const r of records) if (r.key) apply(dec.decode(r.key), r);
      offset = records[records.length - 1]!.offset + 1;
    }
  }
}
