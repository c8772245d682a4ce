import type { Identity } from "./identity.ts";

/**
 * The one permission check of the node: the broker and every gateway ask it, for the
 * identity of the connection or request, before acting. Two address spaces, one policy:
 *
 * - MQTT space (MQTT gateway, MQTT over WebSocket): `canPublish(topic name)`,
 *   `canSubscribe(filter)`. The first level of an MQTT topic names the log topic.
 * - Log space (WebSocket SDK protocol, HTTP API): `canProduce(log topic, key)`,
 *   `canConsume(log topic or WS filter)`. A log topic is "all MQTT topics under its first
 *   level", so reading or writing it with any key needs `<topic>/#`.
 *
 * Guarantees:
 * - Pure decisions: no I/O, no await, no throw for any string input (an invalid topic or
 *   filter is simply not allowed); safe to call on every message.
 * - Deny by default: an identity this node's AuthService did not make, an expired one
 *   (`expiresAt` passed, checked on every call against the clock) or a revoked one (its
 *   password-file entry or JWT signing key removed by a reload) is denied everything.
 * - Internal topics (`__…` names no MQTT level maps to, e.g. `__mqtt.sessions`) are never
 *   granted by patterns: only admin may consume them, and nobody may produce to, create or
 *   delete them through a gateway (canProduce / canManageTopic are false even for admin).
 * - A subscription filter is allowed only if every topic it can match is allowed
 *   ("filter within pattern"), so delivery needs no per-message check.
 * - Decisions may be cached per identity and topic. A reload of the ACL file, the password
 *   file or the JWT keys invalidates every cached decision before AuthService emits its
 *   `change` event: a check made after that event sees the new files. Checks already made
 *   (live subscriptions) are the caller's to re-check on `change`.
 */
export interface Authorizer {
  /** May `identity` publish to MQTT topic name `mqttTopic` (MQTT PUBLISH, will messages, retained)? */
  canPublish(identity: Identity, mqttTopic: string): boolean;
  /**
   * May `identity` append a record with `key` to log topic `logTopic` (WS `publish`, HTTP
   * produce)? True when it may write the whole topic (`<topic>/#`), or when the key is the
   * MQTT topic name of a record of this log topic (`sensor-data/d1/temp` in `sensor-data`)
   * and canPublish allows that name. Internal topics: never.
   */
  canProduce(identity: Identity, logTopic: string, key: string | Uint8Array | null): boolean;
  /** May `identity` subscribe to MQTT filter `mqttFilter`? A `$share/<group>/<filter>` is judged by its inner filter (ask canJoinGroup for the group if it should be restricted). */
  canSubscribe(identity: Identity, mqttFilter: string): boolean;
  /**
   * May `identity` read `topicOrFilter` in log space: a log topic name (WS subscribe,
   * HTTP consume: every record, needs `<topic>/#`) or a WS key filter whose first level is
   * the log topic (`sensor-data/+/temp`: needs that MQTT filter)? Internal topics: admin only.
   */
  canConsume(identity: Identity, topicOrFilter: string): boolean;
  /** May `identity` join (and commit in) consumer group `group`? Internal groups: never. */
  canJoinGroup(identity: Identity, group: string): boolean;
  /** May `identity` be present on log topic `logTopic` and read its presence? */
  canPresence(identity: Identity, logTopic: string): boolean;
  /** May `identity` create, delete, reconfigure log topic `logTopic` or reset offsets on it? Admin only, never internal topics. */
  canManageTopic(identity: Identity, logTopic: string): boolean;
  /** The admin surface as a whole (cluster, group listings, internal groups). */
  isAdmin(identity: Identity): boolean;
}
