import { isTributaryError } from "../errors.ts";
import type { LogRecord, RecordHeaders } from "../log/log-engine.ts";
import type { Broker } from "./broker.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * An internal single-partition topic used as a durable key → value table (MQTT retained
 * messages, MQTT sessions), through the broker like any other topic: created on first use
 * with no retention, written one record per change through the produce path (size limits,
 * coalescing; `put` with a null/empty value = delete, by the reader's rule), and read back
 * from its start on load (last record per key wins).
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
    this.#ready ??= this.#broker.createTopic(this.name, { partitions: 1, retentionMs: null, retentionBytes: null }).then(
      () => undefined,
      (err: unknown) => {
        if (!isTributaryError(err, "TOPIC_EXISTS")) {
          this.#ready = null;
          throw err;
        }
      },
    );
    return this.#ready;
  }

  /** Appends one record keyed by `key`; durable as acks=1 when the promise resolves. */
  async put(key: string, value: Uint8Array | null, headers?: RecordHeaders, timestamp?: number): Promise<void> {
    await this.ensure();
    await this.#broker.produce(this.name, [{ key: enc.encode(key), value, headers, timestamp, partition: 0 }], { acks: 1 });
  }

  /** Calls `apply(key, record)` for every keyed record from the earliest offset, in order. */
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
