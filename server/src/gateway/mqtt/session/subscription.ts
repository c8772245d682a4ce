import type { QoS } from "../record-mapping.ts";
import { TopicFilter } from "../../../broker/topic-filter.ts";

/** One subscription of a session, with its MQTT 5 options. */
export interface Subscription {
  /** The filter as the client sent it (with the `$share/<group>/` prefix for shared ones). */
  readonly filter: string;
  /** The filter that is matched (without the `$share` prefix). */
  readonly topicFilter: TopicFilter;
  qos: QoS;
  /** No Local: not sent messages this client published. */
  nl: boolean;
  /** Retain As Published. */
  rap: boolean;
  /** Retain Handling: 0 send retained on subscribe, 1 only if new, 2 never. */
  rh: 0 | 1 | 2;
  /** Subscription Identifier (MQTT 5). */
  id?: number;
  /** Share group name for `$share/<group>/<filter>`. */
  share?: string;
  /** Consumer-group member id of a `$share` subscription (re-bound on reconnect and restart). */
  memberId?: string;
}

export interface StoredSubscription {
  filter: string;
  qos: QoS;
  nl?: boolean;
  rap?: boolean;
  rh?: 0 | 1 | 2;
  id?: number;
  memberId?: string;
}

export function toStored(s: Subscription): StoredSubscription {
  const out: StoredSubscription = { filter: s.filter, qos: s.qos };
  if (s.nl) out.nl = true;
  if (s.rap) out.rap = true;
  if (s.rh) out.rh = s.rh;
  if (s.id !== undefined) out.id = s.id;
  if (s.memberId !== undefined) out.memberId = s.memberId;
  return out;
}

export function makeSubscription(stored: StoredSubscription, inner: string, share?: string): Subscription {
  return {
    filter: stored.filter,
    topicFilter: new TopicFilter(inner),
    qos: stored.qos,
    nl: stored.nl ?? false,
    rap: stored.rap ?? false,
    rh: stored.rh ?? 0,
    id: stored.id,
    share,
    memberId: stored.memberId,
  };
}
