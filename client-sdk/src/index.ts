/**
 * @tributary/client — the public entry point of the SDK (browsers and Node 20+).
 *
 *   import { connect } from "@tributary/client";
 *   const client = connect("ws://127.0.0.1:8080");
 *   client.subscribe("sensor-data", (msg) => console.log(msg.offset, msg.value));
 *   await client.publish("sensor-data", { temp: 21.5 }, { key: "d42" });
 *
 * Internals (transport, queue, frames) are not exported here; the wire protocol is at
 * `@tributary/client/protocol` for server and tool authors.
 */
export { connect, TributaryClient } from "./client/client.ts";
export { Subscription, type MessageHandler } from "./client/subscription.ts";
export { Presence } from "./client/presence.ts";
export type { GroupMember } from "./client/group-member.ts";
export { State } from "./client/state.ts";
export { TributaryClientError, isTributaryClientError } from "./client/errors.ts";
export { backoff } from "./client/backoff.ts";
export {
  cborCodec,
  jsonCodec,
  rawCodec,
  stringCodec,
  decodeByContentType,
  CONTENT_TYPE_HEADER,
  JSON_TYPE,
  TEXT_TYPE,
  BYTES_TYPE,
  CBOR_TYPE,
  type ValueCodec,
  type CodecName,
} from "./client/value-codec.ts";
export type { ConnectFailureReason } from "./client/transport.ts";
export type {
  ClientEvents,
  ClientOptions,
  DisconnectedEvent,
  Message,
  OffsetOutOfRangeEvent,
  Position,
  PresenceEvents,
  PresenceMember,
  PublishOptions,
  PublishResult,
  SubscribeOptions,
  SubscriptionEvents,
} from "./client/types.ts";
export { ERROR_CODES, type ErrorCode } from "./codes.ts";
export type { ResetPolicy, StartPosition, WireFormat } from "./protocol/index.ts";
