/**
 * Tributary wire protocol v1: the frames client and server exchange over WebSocket.
 *
 * Subprotocols: `tributary.v1` (binary frames, one CBOR map each) and `tributary.v1.json`
 * (text frames, one JSON object each; byte fields base64-encoded, see codec.ts).
 * Every frame has `op`. Requests carry a client-chosen `id` (uint) echoed in the reply.
 * A subscription is named by a client-chosen `sub` (uint) unique within the connection.
 * Documented with one example per op in client-sdk/PROTOCOL.md.
 */
import type { ErrorCode } from "../codes.ts";

export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL_CBOR = "tributary.v1";
export const SUBPROTOCOL_JSON = "tributary.v1.json";
/** Path of the SDK endpoint on a node's base URL. */
export const WS_PATH = "/ws";

export type Bytes = Uint8Array;
export type Headers = Record<string, Bytes>;

/** Where a subscription starts. `offsets`: partition → next offset to deliver. */
export type StartPosition =
  | "earliest"
  | "latest"
  | { timestamp: number }
  | { offsets: Record<number, number>; epochs?: Record<number, string> };

/** What to do when a requested position no longer exists (retention, stale epoch). */
export type ResetPolicy = "earliest" | "latest" | "error";

// ---- client → server --------------------------------------------------------------------

export interface HelloFrame {
  op: "hello";
  id: number;
  protocol: number;
  clientId?: string;
  token?: string;
  /** Who the client acts for, shown in presence (until token claims carry it). */
  user?: string;
  /** Optional protocol features the client understands (see `FEATURES`); unknown ones are ignored. */
  features?: string[];
}

/**
 * Optional protocol features a client announces in `hello`. A server never sends a frame
 * of a feature the client did not announce, so older clients keep working unchanged.
 * - `feed`: the server may deliver a subscription's live records as `messages` frames
 *   addressed to a shared feed (`attach` / `detach` map a feed id to the subscription).
 * - `acks`: the server may answer several publishes with one `acks` frame.
 */
export const FEATURES = { FEED: "feed", ACKS: "acks" } as const;

export interface PublishFrame {
  op: "publish";
  id: number;
  topic: string;
  key?: Bytes | null;
  value: Bytes | null;
  headers?: Headers;
  partition?: number;
  acks?: 0 | 1 | "all";
  /** With `seq`: the server deduplicates a retried publish (offline queue, lost ack). */
  producerId?: string;
  seq?: number;
}

export interface SubscribeFrame {
  op: "subscribe";
  id: number;
  sub: number;
  /** A topic name, or an MQTT-style filter `topic/+/level/#` matched against record keys. */
  topic: string;
  from?: StartPosition;
  reset?: ResetPolicy;
  /** Initial flow-control window (messages); default the server's `defaultCredit`. */
  credit?: number;
  /** Join the topic's presence (who is subscribed) while subscribed. Default false. */
  presence?: boolean;
  /**
   * Consumer group: the server joins this subscription as a member of `group` (reply
   * `joined`, then `assign` / `revoke`); `from` is ignored (members start at the group's
   * committed positions), `reset` ("earliest" | "latest") applies when there is none, or
   * when it is unusable: retention passed it, or it belongs to another epoch (`assign`
   * then says `committed: false`).
   */
  group?: string;
  /** Assignment strategies the member supports, preferred first (default ["cooperative-sticky", "range"]). */
  strategies?: string[];
  /** How long the member stays in the group without a live connection (default the server's, 10 s). */
  sessionTimeoutMs?: number;
  /** Re-bind as this member after a reconnect within the session timeout (no rebalance). */
  memberId?: string;
}

/** A partition of a topic (group frames). */
export interface TopicPartitionRef {
  topic: string;
  partition: number;
}

/** Confirms a `revoke` of a group subscription, after committing what was processed. */
export interface RevokedFrame {
  op: "revoked";
  sub: number;
  generation: number;
  partitions: TopicPartitionRef[];
}

/**
 * Commits a group member's positions `(epoch, offset)`; `offset` is the next offset to
 * consume, `epoch` the partition epoch it belongs to: the `epoch` of the partition's
 * `assign` (or of a `reset` frame since). Optional: without it the server stores the epoch
 * of the member's latest assignment of the partition. A position of another epoch than the
 * partition's current one is stale: the next owner starts by its reset policy. Reply `committed`.
 */
export interface CommitFrame {
  op: "commit";
  id: number;
  sub: number;
  /** The generation of the member's latest `assign` (fencing). */
  generation: number;
  offsets: Array<{ topic: string; partition: number; offset: number; epoch?: string; metadata?: string }>;
}

/** Keeps a group member alive (optional: the server heartbeats members of live connections itself). */
export interface HeartbeatFrame {
  op: "heartbeat";
  sub: number;
}

/** Who is present on `topic` now (reply `presence`); `watch` true/false starts/stops `presence_event` frames. */
export interface PresenceFrame {
  op: "presence";
  id: number;
  topic: string;
  watch?: boolean;
}

export interface UnsubscribeFrame {
  op: "unsubscribe";
  id: number;
  sub: number;
}

/** Grants the server `credit` more messages for subscription `sub`. */
export interface CreditFrame {
  op: "credit";
  sub: number;
  credit: number;
}

export interface PingFrame {
  op: "ping";
  id?: number;
}

// ---- server → client --------------------------------------------------------------------

export interface ServerLimits {
  maxFrameBytes: number;
  maxRecordBytes: number;
  maxSubscriptions: number;
  defaultCredit: number;
  maxCredit: number;
}

export interface WelcomeFrame {
  op: "welcome";
  id: number;
  sessionId: string;
  clientId: string;
  node: string;
  limits: ServerLimits;
}

export interface AckFrame {
  op: "ack";
  id: number;
  partition: number;
  offset: number;
}

/** Several `ack`s at once (feature `acks`): each entry is `[id, partition, offset]`, in the order the acks were due. */
export interface AcksFrame {
  op: "acks";
  acks: Array<[id: number, partition: number, offset: number]>;
}

export interface SubscribedPartition {
  partition: number;
  /** Offset of the first message that will be delivered. */
  offset: number;
  epoch: string;
}

export interface SubscribedFrame {
  op: "subscribed";
  id: number;
  sub: number;
  topic: string;
  partitions: SubscribedPartition[];
}

export interface UnsubscribedFrame {
  op: "unsubscribed";
  id: number;
  sub: number;
}

export interface MessageFrame {
  op: "message";
  sub: number;
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: Bytes | null;
  value: Bytes | null;
  headers?: Headers;
}

/** One record of a `messages` frame. */
export interface BatchRecord {
  offset: number;
  timestamp: number;
  key: Bytes | null;
  value: Bytes | null;
  headers?: Headers;
}

/**
 * Several records of one partition in offset order (feature `feed`). Addressed to a feed
 * (`feed`, the same bytes go to every subscriber of the partition on the node: map it to
 * the subscription with `attach`) or to one subscription (`sub`); exactly one of the two.
 * Each record counts as one message for credit.
 */
export interface MessagesFrame {
  op: "messages";
  feed?: number;
  sub?: number;
  topic: string;
  partition: number;
  records: BatchRecord[];
}

/**
 * From now on, `messages` frames carrying `feed` are for subscription `sub` (its partition
 * `partition`), until `detach`. Sent in order with the subscription's other frames: the
 * first feed frame continues exactly where the subscription's previous message ended.
 */
export interface AttachFrame {
  op: "attach";
  sub: number;
  partition: number;
  feed: number;
}

/** No more `messages` of `feed` for `sub`; its messages continue addressed by `sub`, with no gap. */
export interface DetachFrame {
  op: "detach";
  sub: number;
  partition: number;
  feed: number;
}

/** A subscription's position was moved by the reset policy (data gone or epoch changed). */
export interface ResetFrame {
  op: "reset";
  sub: number;
  partition: number;
  reason: "OFFSET_OUT_OF_RANGE" | "STALE_EPOCH";
  /** The requested offset that could not be served. */
  requested: number;
  /** Where delivery continues. */
  offset: number;
  epoch: string;
}

/** A group subscription joined its group (reply to a `subscribe` with `group`). */
export interface JoinedFrame {
  op: "joined";
  id: number;
  sub: number;
  group: string;
  memberId: string;
}

/** A partition the member starts consuming now, at `offset` (the committed offset, or the reset policy's when `committed` is false). */
export interface AssignedPartitionRef extends TopicPartitionRef {
  offset: number;
  epoch: string;
  committed: boolean;
}

/**
 * The member's assignment in a new generation: `partitions` is the complete set, `added`
 * the ones whose `message` frames start now. Commits from now on carry `generation`.
 */
export interface AssignFrame {
  op: "assign";
  sub: number;
  group: string;
  generation: number;
  strategy: string;
  partitions: TopicPartitionRef[];
  added: AssignedPartitionRef[];
}

/** No `message` of `partitions` follows; commit what was processed, then confirm with `revoked`. */
export interface RevokeFrame {
  op: "revoke";
  sub: number;
  group: string;
  generation: number;
  partitions: TopicPartitionRef[];
}

export interface CommittedFrame {
  op: "committed";
  id: number;
}

export interface PresenceMember {
  clientId: string;
  user: string | null;
  node: string;
  /** ms since the epoch. */
  joinedAt: number;
}

export interface PresenceResultFrame {
  op: "presence";
  id: number;
  topic: string;
  members: PresenceMember[];
}

/** A client joined or left `topic` (to connections watching it). `reason` on leave: "leave" (unsubscribed) or "timeout" (gone). */
export interface PresenceEventFrame {
  op: "presence_event";
  topic: string;
  event: "join" | "leave";
  clientId: string;
  user: string | null;
  node: string;
  reason?: "leave" | "timeout";
}

export interface PongFrame {
  op: "pong";
  id?: number;
}

/** Request failure (with `id`), subscription failure (with `sub`) or connection-level error. */
export interface ErrorFrame {
  op: "error";
  id?: number;
  sub?: number;
  code: ErrorCode;
  message: string;
}

/**
 * Sent right before the server closes the connection. `reconnect` tells the SDK whether
 * reconnecting can help (slow consumer, shutdown: yes; bad credentials: no).
 */
export interface DisconnectFrame {
  op: "disconnect";
  code: ErrorCode;
  reason: string;
  reconnect: boolean;
}

export type ClientFrame =
  | HelloFrame
  | PublishFrame
  | SubscribeFrame
  | UnsubscribeFrame
  | CreditFrame
  | PingFrame
  | RevokedFrame
  | CommitFrame
  | HeartbeatFrame
  | PresenceFrame;
export type ServerFrame =
  | WelcomeFrame
  | AckFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | MessageFrame
  | ResetFrame
  | PongFrame
  | ErrorFrame
  | DisconnectFrame
  | JoinedFrame
  | AssignFrame
  | RevokeFrame
  | CommittedFrame
  | PresenceResultFrame
  | PresenceEventFrame
  | MessagesFrame
  | AttachFrame
  | DetachFrame
  | AcksFrame;
export type Frame = ClientFrame | ServerFrame;

export const CLIENT_OPS = ["hello", "publish", "subscribe", "unsubscribe", "credit", "ping", "revoked", "commit", "heartbeat", "presence"] as const;
export const SERVER_OPS = [
  "welcome",
  "ack",
  "subscribed",
  "unsubscribed",
  "message",
  "reset",
  "pong",
  "error",
  "disconnect",
  "joined",
  "assign",
  "revoke",
  "committed",
  "presence",
  "presence_event",
  "messages",
  "attach",
  "detach",
  "acks",
] as const;

/** WebSocket close codes (4000-4499: reconnect may help; 4500-4999: do not reconnect). */
export const CLOSE_CODES = {
  SHUTDOWN: 4000,
  SLOW_CONSUMER: 4001,
  SERVER_ERROR: 4002,
  /** The identity's token expired (at `hello` or while connected): connect again with a fresh token (SDK `getToken()`). */
  TOKEN_EXPIRED: 4003,
  PROTOCOL_ERROR: 4500,
  UNAUTHORIZED: 4501,
  FRAME_TOO_LARGE: 4502,
} as const;
