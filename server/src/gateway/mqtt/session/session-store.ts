import type { Broker } from "../../../broker/broker.ts";
import { isTributaryError } from "../../../errors.ts";
import type { Logger } from "../../../logger.ts";
import type { StoredSubscription } from "./subscription.ts";

/** Internal log topic holding session state; MQTT clients cannot name it (see topic-mapping.ts). */
export const SESSIONS_TOPIC = "__mqtt.sessions";

export interface StoredSession {
  clientId: string;
  /** Session Expiry Interval, seconds. */
  expiry: number;
  subscriptions: StoredSubscription[];
  /** Wall-clock ms of the last disconnect; null = was connected when written. */
  disconnectedAt: number | null;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Durable MQTT session state, through the LogEngine only:
 * - the session (client id, expiry, subscriptions) is a record of `__mqtt.sessions`
 *   keyed by client id (last record per key wins; a null value deletes it), read back in
 *   full when the gateway starts;
 * - positions are the committed offsets of the consumer group `mqtt.session.<clientId>`
 *   per (log topic, partition): the lowest offset the client has not acknowledged.
 */
export class SessionStore {
  readonly #broker: Broker;
  readonly #log: Logger;
  #ready: Promise<void> | null = null;

  constructor(broker: Broker, log: Logger) {
    this.#broker = broker;
    this.#log = log;
  }

  /** An internal group (groups/internal-groups.ts): hidden from admin listings by default. */
  static groupOf(clientId: string): string {
    return `mqtt.session.${clientId}`;
  }

  #ensureTopic(): Promise<void> {
    this.#ready ??= this.#broker.engine
      .createTopic(SESSIONS_TOPIC, { partitions: 1, retentionMs: null, retentionBytes: null })
      .then(
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

  async loadAll(): Promise<Map<string, StoredSession>> {
    await this.#ensureTopic();
    const sessions = new Map<string, StoredSession>();
    const engine = this.#broker.engine;
    let offset = (await engine.offsets(SESSIONS_TOPIC, 0)).earliestOffset;
    for (;;) {
      const records = await engine.read(SESSIONS_TOPIC, 0, offset, { maxRecords: 1000 });
      if (records.length === 0) break;
      for (const r of records) {
        if (!r.key) continue;
        const clientId = dec.decode(r.key);
        if (!r.value || r.value.length === 0) sessions.delete(clientId);
        else {
          try {
            sessions.set(clientId, JSON.parse(dec.decode(r.value)) as StoredSession);
          } catch (err) {
            this.#log.warn("mqtt.session.unreadable", { clientId, error: String(err) });
          }
        }
      }
      offset = records[records.length - 1]!.offset + 1;
    }
    return sessions;
  }

  async save(session: StoredSession): Promise<void> {
    await this.#ensureTopic();
    await this.#broker.engine.append(SESSIONS_TOPIC, 0, [{ key: enc.encode(session.clientId), value: enc.encode(JSON.stringify(session)) }], { acks: 1 });
  }

  async remove(clientId: string): Promise<void> {
    await this.#ensureTopic();
    await this.#broker.engine.append(SESSIONS_TOPIC, 0, [{ key: enc.encode(clientId), value: null }], { acks: 1 });
  }

  async commit(clientId: string, logTopic: string, partition: number, offset: number): Promise<void> {
    await this.#broker.engine.commitOffset(SessionStore.groupOf(clientId), logTopic, partition, offset);
  }

  async positions(clientId: string): Promise<Map<string, Map<number, number>>> {
    const all = await this.#broker.engine.fetchGroupOffsets(SessionStore.groupOf(clientId));
    const out = new Map<string, Map<number, number>>();
    for (const [topic, parts] of all) {
      const m = new Map<number, number>();
      for (const [p, c] of parts) m.set(p, c.offset);
      out.set(topic, m);
    }
    return out;
  }
}
