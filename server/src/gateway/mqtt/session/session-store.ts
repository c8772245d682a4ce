import type { Broker } from "../../../broker/broker.ts";
import type { Logger } from "../../../logger.ts";
import { KeyedTopic } from "../../../broker/keyed-topic.ts";
import { isValidTopicFilter, parseSharedFilter } from "../../../broker/topic-filter.ts";
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
const dec = new TextDecoder("utf-8", { fatal: true });

/**
 * Durable MQTT session state, through the LogEngine only:
 * - the session (client id, expiry, subscriptions) is a record of `__mqtt.sessions`
 *   keyed by client id (last record per key wins; a null value deletes it), read back in
 *   full when the gateway starts;
 * - positions are the committed offsets of the consumer group `mqtt.session.<clientId>`
 *   per (log topic, partition): the lowest offset the client has not acknowledged, with
 *   the epoch it belongs to (a position of an older epoch is stale, see CursorSet).
 *
 * The node starts whatever the topic holds: `loadAll` checks every record against the
 * shape `save` writes (`readStoredSession`) and skips one that does not fit (not UTF-8 or
 * JSON, wrong shape or types, a client id other than its key, strings beyond MQTT's 65,535
 * bytes) as if it had not been written, with a warning `mqtt.session.unreadable` {key,
 * reason} and a count in `tributary_background_errors_total{task="mqtt-session-load"}`.
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
      const read = readStoredSession(clientId, r.value);
      if (typeof read === "string") {
        this.#log.warn("mqtt.session.unreadable", { key: clientId.length > 200 ? `${clientId.slice(0, 200)}...` : clientId, offset: r.offset, reason: read });
        this.#broker.metrics.backgroundErrors.inc({ task: "mqtt-session-load" });
        return;
      }
      sessions.set(clientId, read);
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

/** MQTT strings (client ids, topic filters) are at most 65,535 bytes of UTF-8. */
const MAX_MQTT_STRING_BYTES = 65_535;
/** Largest MQTT 5 Subscription Identifier. */
const MAX_SUBSCRIPTION_ID = 268_435_455;

/**
 * A stored session record of `key`, checked against what `save` writes, or the reason it
 * cannot be one. Fields this version does not know are ignored (a newer node may add some).
 */
export function readStoredSession(key: string, value: Uint8Array): StoredSession | string {
  let json: unknown;
  try {
    json = JSON.parse(dec.decode(value));
  } catch (err) {
    return `not UTF-8 JSON: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (!isObject(json)) return `expected a JSON object, got ${describe(json)}`;
  const { clientId, expiry, subscriptions, disconnectedAt } = json;
  if (typeof clientId !== "string") return `clientId: expected a string, got ${describe(clientId)}`;
  if (clientId !== key) return "clientId differs from the record key";
  if (!isMqttString(clientId) || clientId === "") return "clientId: not a valid MQTT client id (empty, NUL, or over 65535 bytes)";
  if (!Number.isSafeInteger(expiry) || (expiry as number) < 0 || (expiry as number) > 0xffffffff) return `expiry: expected seconds 0..4294967295, got ${describe(expiry)}`;
  if (disconnectedAt !== null && (!Number.isSafeInteger(disconnectedAt) || (disconnectedAt as number) < 0)) {
    return `disconnectedAt: expected null or ms since the epoch, got ${describe(disconnectedAt)}`;
  }
  if (!Array.isArray(subscriptions)) return `subscriptions: expected an array, got ${describe(subscriptions)}`;
  const subs: StoredSubscription[] = [];
  for (let i = 0; i < subscriptions.length; i++) {
    const sub = readStoredSubscription(subscriptions[i]);
    if (typeof sub === "string") return `subscriptions[${i}]: ${sub}`;
    subs.push(sub);
  }
  return { clientId, expiry: expiry as number, subscriptions: subs, disconnectedAt: disconnectedAt as number | null };
}

function readStoredSubscription(raw: unknown): StoredSubscription | string {
  if (!isObject(raw)) return `expected an object, got ${describe(raw)}`;
  const { filter, qos, nl, rap, rh, id, memberId } = raw;
  if (typeof filter !== "string" || !isMqttString(filter)) return `filter: expected an MQTT topic filter, got ${describe(filter)}`;
  const shared = parseSharedFilter(filter);
  if (shared === "invalid" || (shared === null && !isValidTopicFilter(filter))) return `filter: ${describe(filter)} is not a valid topic filter`;
  if (qos !== 0 && qos !== 1 && qos !== 2) return `qos: expected 0, 1 or 2, got ${describe(qos)}`;
  const out: StoredSubscription = { filter, qos };
  if (nl !== undefined) {
    if (typeof nl !== "boolean") return `nl: expected a boolean, got ${describe(nl)}`;
    if (nl) out.nl = true;
  }
  if (rap !== undefined) {
    if (typeof rap !== "boolean") return `rap: expected a boolean, got ${describe(rap)}`;
    if (rap) out.rap = true;
  }
  if (rh !== undefined) {
    if (rh !== 0 && rh !== 1 && rh !== 2) return `rh: expected 0, 1 or 2, got ${describe(rh)}`;
    if (rh) out.rh = rh;
  }
  if (id !== undefined) {
    if (!Number.isSafeInteger(id) || (id as number) < 1 || (id as number) > MAX_SUBSCRIPTION_ID) return `id: expected 1..${MAX_SUBSCRIPTION_ID}, got ${describe(id)}`;
    out.id = id as number;
  }
  if (memberId !== undefined) {
    if (typeof memberId !== "string" || memberId === "" || !isMqttString(memberId)) return `memberId: expected a non-empty string, got ${describe(memberId)}`;
    out.memberId = memberId;
  }
  return out;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

function isMqttString(s: string): boolean {
  return !s.includes("\u0000") && Buffer.byteLength(s, "utf8") <= MAX_MQTT_STRING_BYTES;
}

function describe(x: unknown): string {
  if (x === undefined) return "nothing";
  const text = typeof x === "string" ? JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}...` : x) : Array.isArray(x) ? `an array of ${x.length}` : JSON.stringify(x);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
