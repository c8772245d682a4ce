import { isTributaryError } from "../../errors.ts";
import type { LogEngine, LogRecord, RecordHeaders } from "../../log/log-engine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * An internal single-partition log topic used as a durable key → value table (retained
 * messages, MQTT sessions): created on first use with no retention, written one record per
 * change (`put` with null/empty value = delete, by the reader's rule), and read back from
 * its start on load (last record per key wins).
 */
export class KeyedLogTopic {
  #ready: Promise<void> | null = null;

  constructor(
    readonly engine: LogEngine,
    readonly name: string,
  ) {}

  /** Creates the topic once; a concurrent or earlier creation is fine. */
  ensure(): Promise<void> {
    this.#ready ??= this.engine.createTopic(this.name, { partitions: 1, retentionMs: null, retentionBytes: null }).then(
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
    await this.engine.append(this.name, 0, [{ key: enc.encode(key), value, headers, timestamp }], { acks: 1 });
  }

  /** Calls `apply(key, record)` for every keyed record from the earliest offset, in order. */
  async replay(apply: (key: string, record: LogRecord) => void): Promise<void> {
    await this.ensure();
    let offset = (await this.engine.offsets(this.name, 0)).earliestOffset;
    for (;;) {
      const records = await this.engine.read(this.name, 0, offset, { maxRecords: 1000 });
      if (records.length === 0) return;
      for (const r of records) if (r.key) apply(dec.decode(r.key), r);
      offset = records[records.length - 1]!.offset + 1;
    }
  }
}
