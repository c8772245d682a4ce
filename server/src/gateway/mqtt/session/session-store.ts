import type { Broker } from "../../../broker/broker.ts";
import type { Logger } from "../../../logger.ts";
import { KeyedTopic } from "../../../broker/keyed-topic.ts";
import type { StoredPosition } from "../delivery/cursor-set.ts";
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
 *   per (log topic, partition): the lowest offset the client has not acknowledged, with
 *   the epoch it belongs to (a position of an older epoch is stale, see CursorSet).
 */
export class SessionStore {
  readonly #broker: Broker;
  readonly #log: Logger;
  readonly #topic: KeyedTopic;

  constructor(broker: Broker, log: Logger) {
    this.#broker = broker;
    this.#log = log;
    this.#topic = new KeyedTopic(broker, SESSIONS_TOPIC);
  }

  /** An internal group (groups/internal-groups.ts): hidden from admin listings by default. */
  static groupOf(clientId: string): string {
    return `mqtt.session.${clientId}`;
  }

  async loadAll(): Promise<Map<string, StoredSession>> {
    const sessions = new Map<string, StoredSession>();
    await this.#topic.replay((clientId, r) => {
      if (!r.value || r.value.length === 0) {
        sessions.delete(clientId);
        return;
      }
      try {
        sessions.set(clientId, JSON.parse(dec.decode(r.value)) as StoredSession);
      } catch (err) {
        this.#log.warn("mqtt.session.unreadable", { clientId, error: String(err) });
      }
    });
    return sessions;
  }

  async save(session: StoredSession): Promise<void> {
    await this.#topic.put(session.clientId, enc.encode(JSON.stringify(session)));
  }

  async remove(clientId: string): Promise<void> {
    await this.#topic.put(clientId, null);
  }

  /** Stores the session's position `(epoch, offset)` in a partition. */
  async commit(clientId: string, logTopic: string, partition: number, offset: number, epoch: string): Promise<void> {
    await this.#broker.commitOffset(SessionStore.groupOf(clientId), logTopic, partition, offset, { epoch });
  }

  /** The session's stored positions: log topic → partition → (epoch, offset). */
  async positions(clientId: string): Promise<Map<string, Map<number, StoredPosition>>> {
    const all = await this.#broker.fetchGroupOffsets(SessionStore.groupOf(clientId));
    const out = new Map<string, Map<number, StoredPosition>>();
    for (const [topic, parts] of all) {
      const m = new Map<number, StoredPosition>();
      for (const [p, c] of parts) m.set(p, { offset: c.offset, epoch: c.epoch });
      out.set(topic, m);
    }
    return out;
  }
}
