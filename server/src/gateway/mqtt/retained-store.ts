import type { Broker } from "../../broker/broker.ts";
import type { RecordHeaders } from "../../log/log-engine.ts";
import { KeyedTopic } from "../../broker/keyed-topic.ts";
import { OutgoingMessage } from "./record-mapping.ts";
import type { TopicFilter } from "../../broker/topic-filter.ts";

/** Internal log topic holding retained messages (unreachable from MQTT, see topic-mapping.ts). */
export const RETAINED_TOPIC = "__mqtt.retained";

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
  readonly #index = new Map<string, Retained>();
  readonly #log: KeyedTopic;

  constructor(broker: Broker) {
    this.#log = new KeyedTopic(broker, RETAINED_TOPIC);
  }

  async load(): Promise<void> {
    await this.#log.replay((topic, r) => this.#apply(topic, r.value ?? new Uint8Array(0), r.headers, r.timestamp));
  }

  #apply(topic: string, payload: Uint8Array, headers: RecordHeaders, timestamp: number): void {
    if (payload.length === 0) this.#index.delete(topic);
    else this.#index.set(topic, { payload, headers, timestamp });
  }

  /** Sets (or with an empty payload clears) the retained message of `topic`; durable when the promise resolves. */
  async put(topic: string, payload: Uint8Array, headers: RecordHeaders): Promise<void> {
    const timestamp = Date.now();
    this.#apply(topic, payload, headers, timestamp);
    await this.#log.put(topic, payload, headers, timestamp);
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
