/**
 * Internal topics: the one rule for which log topics are reserved for the node, and what a
 * client may do with them. Every gateway asks here (HTTP routes, WebSocket publish and
 * subscribe, the MQTT mapping never produces such a name); nothing else decides it.
 *
 * A topic is internal when its name starts with `__` followed by anything but two
 * upper-case hex digits: `__mqtt.sessions`, `__mqtt.retained`, and the connector offsets
 * and stream changelogs to come. `__` + two hex digits is how the MQTT mapping escapes a
 * first level starting with `_` or `$` (`$SYS` → `__24SYS`, `_x` → `__5Fx`, see
 * gateway/mqtt/topic-mapping.ts): those are ordinary topics devices write to, readable by
 * SDK and HTTP clients like any other. Conversely that mapping never yields an internal
 * name, so MQTT clients cannot reach internal topics at all.
 *
 * No client may produce to, create, delete or reconfigure an internal topic, admin
 * included: `refusal` answers FORBIDDEN. Reading and subscribing are refused too, except
 * for an authenticated admin (`adminReader`: an identity proved by credentials that carry
 * the `admin` claim; the anonymous admin of "open" mode is not one, so a node without
 * auth configured keeps its internal topics unreadable). Listing
 * shows internal names only when asked (`GET /topics?internal=true`); describing one
 * (partitions and offsets, no records) is allowed. The node itself writes and reads them
 * through the broker, which does not ask.
 */
import { TributaryError } from "../errors.ts";

const UNDERSCORE = 0x5f;

/** True when `topic` is reserved for the node (see the module comment). On every publish: no regex, no allocation. */
export function isInternalTopic(topic: string): boolean {
  if (topic.charCodeAt(0) !== UNDERSCORE || topic.charCodeAt(1) !== UNDERSCORE) return false;
  return !(isUpperHex(topic.charCodeAt(2)) && isUpperHex(topic.charCodeAt(3)));
}

function isUpperHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46);
}

/** What a client asks to do with a topic. */
export type ClientTopicAction = "produce" | "read" | "subscribe" | "create" | "delete" | "configure" | "reset-offsets";

const WHAT: Record<ClientTopicAction, string> = {
  produce: "produce to",
  read: "read",
  subscribe: "subscribe to",
  create: "create",
  delete: "delete",
  configure: "reconfigure",
  "reset-offsets": "reset group offsets of",
};

/**
 * Why a client may not do `action` on `topic`: a FORBIDDEN error (not retriable) naming the
 * topic and the action, or null when the topic is not internal or `adminReader` reads it. For handlers that answer
 * errors in a frame (WebSocket); HTTP routes use `checkClientTopicAccess`.
 */
export function internalTopicRefusal(topic: string, action: ClientTopicAction, adminReader = false): TributaryError | null {
  if (!isInternalTopic(topic)) return null;
  if (adminReader && (action === "read" || action === "subscribe")) return null;
  return new TributaryError("FORBIDDEN", `internal topic "${topic}" is reserved for the node: clients may not ${WHAT[action]} it`, { topic, action });
}

/** Throws FORBIDDEN when a client may not do `action` on `topic` (see `internalTopicRefusal`). */
export function checkClientTopicAccess(topic: string, action: ClientTopicAction, adminReader = false): void {
  const refusal = internalTopicRefusal(topic, action, adminReader);
  if (refusal) throw refusal;
}
