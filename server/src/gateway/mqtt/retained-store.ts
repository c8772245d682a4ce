import type { Broker } from "../../broker/broker.ts";
import { isTributaryError } from "../../errors.ts";
import type { RecordHeaders } from "../../log/log-engine.ts";
import { OutgoingMessage } from "./record-mapping.ts";
import type { TopicFilter } from "./topic-filter.ts";

/** Internal log topic holding retained messages (unreachable from MQTT, see topic-mapping.ts). */
export const RETAINED_TOPIC = "__mqtt.retained";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Retained {
  payload: Uint8Array;
  headers: RecordHeaders;
  timestamp: number;
}

/**
 * Retained messages: the last retained PUBLISH per MQTT topic.
 *
 * Persistence: every retained PUBLISH is also appended to `__mqtt.retained` (1 partition,
 * no retention) with key = MQTT topic, value = payload, the same headers as the main
 * record; an empty payload clears the topic. The in-memory index is rebuilt by reading
 * that topic from its start when the gateway starts (last record per key wins).
 */
export class RetainedStore {
  readonly #broker: Broker;
  readonly #index = new Map<string, Retained>();
  #ready: Promise<void> | null = null;

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  async load(): Promise<void> {
    await this.#ensureTopic();
    const engine = this.#broker.engine;
    let offset = (await engine.offsets(RETAINED_TOPIC, 0)).earliestOffset;
    for (;;) {
      const records = await engine.read(RETAINED_TOPIC, 0, offset, { maxRecords: 1000 });
      if (records.length === 0) break;
      for (const r of records) {
        if (!r.key) continue;
        this.#apply(dec.decode(r.key), r.value ?? new Uint8Array(0), r.headers, r.timestamp);
      }
      offset = records[records.length - 1]!.offset + 1;
    }
  }

  #ensureTopic(): Promise<void> {
    this.#ready ??= this.#broker.engine.createTopic(RETAINED_TOPIC, { partitions: 1, retentionMs: null, retentionBytes: null }).then(
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

  #apply(topic: string, payload: Uint8Array, headers: RecordHeaders, timestamp: number): void {
    if (payload.length === 0) this.#index.delete(topic);
    else this.#index.set(topic, { payload, headers, timestamp });
  }

  /** Sets (or with an empty payload clears) the retained message of `topic`; durable when the promise resolves. */
  async put(topic: string, payload: Uint8Array, headers: RecordHeaders): Promise<void> {
    const timestamp = Date.now();
    this.#apply(topic, payload, headers, timestamp);
    await this.#ensureTopic();
    await this.#broker.engine.append(RETAINED_TOPIC, 0, [{ key: enc.encode(topic), value: payload, headers, timestamp }], { acks: 1 });
  }

  /** Retained messages whose topic matches `filter` (expired ones skipped). */
  *matching(filter: TopicFilter): IterableIterator<OutgoingMessage> {
    const now = Date.now();
    for (const [topic, r] of this.#index) {
      if (!filter.matches(topic)) continue;
      const msg = new OutgoingMessage(-1, topic, r.payload, r.headers, r.timestamp);
      if (msg.expiresAt !== null && msg.expiresAt <= now) continue;
      yield msg;
    }
  }

  get size(): number {
    return this.#index.size;
  }
}
