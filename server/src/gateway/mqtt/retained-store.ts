import type { Broker } from "../../broker/broker.ts";
import type { LogRecord, RecordHeaders } from "../../log/log-engine.ts";
import { KeyedTopic } from "../../broker/keyed-topic.ts";
import { createLogger, type Logger } from "../../logger.ts";
import { OutgoingMessage } from "./record-mapping.ts";
import { isValidTopicName, type TopicFilter } from "../../broker/topic-filter.ts";

/** Internal log topic holding retained messages (unreachable from MQTT, see topic-mapping.ts). */
export const RETAINED_TOPIC = "__mqtt.retained";

interface Retained {
  payload: Uint8Array;
  headers: RecordHeaders;
  timestamp: number;
  /** Counted against `maxBytes`: topic (UTF-8) + payload. */
  bytes: number;
}

/** Caps on what the store keeps (config `mqtt.maxRetainedMessages`, `mqtt.maxRetainedBytes`); 0 = no limit. */
export interface RetainedLimits {
  maxMessages: number;
  maxBytes: number;
}

/** Why a retained PUBLISH cannot be kept: the limit it would pass, named by its config key. */
export interface RetainedRefusal {
  limit: "mqtt.maxRetainedMessages" | "mqtt.maxRetainedBytes";
  message: string;
}

/**
 * Retained messages: the last retained PUBLISH per MQTT topic.
 *
 * Persistence: every retained PUBLISH is also appended to `__mqtt.retained` (1 partition,
 * no retention) with key = MQTT topic, value = payload, the same headers as the main
 * record; an empty payload clears the topic. The in-memory index is rebuilt by reading
 * that topic from its start when the gateway starts (last record per key wins).
 *
 * The node starts whatever the topic holds: a record that could not have come from a
 * retained PUBLISH (`retainedRecordProblem`: a key that is not an MQTT topic name, a QoS or
 * expiry header that is not a number MQTT allows) is skipped as if it had not been written,
 * with a warning `mqtt.retained.unreadable` {key, reason} and a count in
 * `tributary_background_errors_total{task="mqtt-retained-load"}`.
 *
 * Limits: `admit` says whether a retained PUBLISH fits `RetainedLimits` (count of topics
 * with a retained message; bytes = topic + payload over all of them). Clearing always fits,
 * and so does replacing a topic's message when the new one is not larger. The caller decides
 * what a refusal means for the client (handlers/publish.ts). State loaded at start is kept
 * whole even when it is over a limit lowered since: new retained messages are then refused
 * until enough are cleared.
 */
export class RetainedStore {
  readonly #index = new Map<string, Retained>();
  readonly #topic: KeyedTopic;
  readonly #broker: Broker;
  readonly #log: Logger;
  #bytes = 0;

  /** `log`: where skipped records are reported (default: warnings on stderr). */
  constructor(broker: Broker, log: Logger = createLogger("warn")) {
    this.#broker = broker;
    this.#topic = new KeyedTopic(broker, RETAINED_TOPIC);
    this.#log = log;
  }

  async load(): Promise<void> {
    await this.#topic.replay((topic, r) => {
      const problem = retainedRecordProblem(topic, r);
      if (problem !== null) {
        this.#log.warn("mqtt.retained.unreadable", { key: topic.length > 200 ? `${topic.slice(0, 200)}...` : topic, offset: r.offset, reason: problem });
        this.#broker.metrics.backgroundErrors.inc({ task: "mqtt-retained-load" });
        return;
      }
      this.#apply(topic, r.value ?? new Uint8Array(0), r.headers, r.timestamp);
    });
  }

  #apply(topic: string, payload: Uint8Array, headers: RecordHeaders, timestamp: number): void {
    const previous = this.#index.get(topic);
    if (previous) this.#bytes -= previous.bytes;
    if (payload.length === 0) {
      this.#index.delete(topic);
      return;
    }
    const bytes = Buffer.byteLength(topic) + payload.length;
    this.#bytes += bytes;
    // A view into a larger buffer (a socket read, a log cache slab) would keep all of it alive for as long as
    // the message stays retained, beyond what maxRetainedBytes counts: keep an exact-size copy instead.
    const own = payload.byteLength === payload.buffer.byteLength ? payload : new Uint8Array(payload);
    this.#index.set(topic, { payload: own, headers, timestamp, bytes });
  }

  /** Null when a retained PUBLISH of `payload` on `topic` fits `limits`, else the limit it would pass. */
  admit(topic: string, payload: Uint8Array, limits: RetainedLimits): RetainedRefusal | null {
    if (payload.length === 0) return null; // clearing always works
    const previous = this.#index.get(topic);
    if (limits.maxMessages > 0 && !previous && this.#index.size >= limits.maxMessages) {
      return { limit: "mqtt.maxRetainedMessages", message: `the node keeps at most ${limits.maxMessages} retained messages (mqtt.maxRetainedMessages); clear some (empty retained payload) first` };
    }
    const bytes = Buffer.byteLength(topic) + payload.length;
    const growth = bytes - (previous?.bytes ?? 0);
    if (limits.maxBytes > 0 && growth > 0 && this.#bytes + growth > limits.maxBytes) {
      return { limit: "mqtt.maxRetainedBytes", message: `retained messages would hold ${this.#bytes + growth} bytes, over mqtt.maxRetainedBytes (${limits.maxBytes})` };
    }
    return null;
  }

  /** Bytes (topic + payload) of all retained messages. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Sets (or with an empty payload clears) the retained message of `topic`; durable when the promise resolves. */
  async put(topic: string, payload: Uint8Array, headers: RecordHeaders): Promise<void> {
    const timestamp = Date.now();
    this.#apply(topic, payload, headers, timestamp);
    await this.#topic.put(topic, payload, headers, timestamp);
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

const MAX_TOPIC_BYTES = 65_535;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Why a record of `__mqtt.retained` keyed `topic` (decoded as the KeyedTopic decodes keys)
 * cannot be a retained message, or null when it can. Headers other than the ones checked
 * here are read leniently at delivery (record-mapping.ts).
 */
export function retainedRecordProblem(topic: string, record: LogRecord): string | null {
  const keyBytes = record.key?.byteLength ?? 0;
  if (keyBytes > MAX_TOPIC_BYTES) return `the key is ${keyBytes} bytes, over MQTT's ${MAX_TOPIC_BYTES}`;
  if (!isValidTopicName(topic)) return "the key is not an MQTT topic name (empty, a wildcard, NUL, or not UTF-8)";
  const qos = record.headers["mqtt.qos"];
  if (qos !== undefined && (qos.length !== 1 || qos[0]! < 0x30 || qos[0]! > 0x32)) return "header mqtt.qos: expected 0, 1 or 2";
  const expiry = record.headers["mqtt.message-expiry"];
  if (expiry !== undefined) {
    let text: string;
    try {
      text = utf8.decode(expiry);
    } catch {
      return "header mqtt.message-expiry: not UTF-8";
    }
    if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffffffff) return "header mqtt.message-expiry: expected seconds 0..4294967295";
  }
  return null;
}
