/** Public types of the SDK: options, messages, positions and the typed event maps. */
import type { ErrorCode } from "../codes.ts";
import type { ResetPolicy, StartPosition, WireFormat } from "../protocol/index.ts";
import type { TributaryClientError } from "./errors.ts";
import type { State } from "./state.ts";
import type { Subscription } from "./subscription.ts";
import type { CodecName, ValueCodec } from "./value-codec.ts";

export interface ClientOptions {
  /** Token (JWT) sent in `hello`; omit when the node runs without auth. For tokens that expire, prefer `getToken`. */
  token?: string;
  /**
   * Called for the token before every connection (first connect and each reconnect); wins
   * over `token`. The protocol has no in-place token refresh: when the token in use carries
   * an `exp`, the client reconnects with a fresh token `tokenRefreshMargin` ms before it
   * expires, resuming subscriptions and re-sending unacknowledged publishes as after any
   * reconnect (no record lost or duplicated). A connection refused or closed with
   * TOKEN_EXPIRED is retried with a new token too. A throwing `getToken` is reported as an
   * `error` event and retried with the reconnect backoff.
   */
  getToken?: () => string | Promise<string>;
  /** How long before the token's `exp` to reconnect with a fresh one from `getToken`, ms (default 5000; at most half the token's remaining life). */
  tokenRefreshMargin?: number;
  /** Names this client in server logs, metrics and presence; the server picks one when omitted (kept across reconnects). */
  clientId?: string;
  /** Who this client acts for, shown to presence watchers on a node without auth; with auth the server shows the token's `sub` instead. */
  user?: string;
  /**
   * How values are encoded and decoded: "json" (default: objects as `application/json`,
   * strings as `text/plain`, bytes as `application/octet-stream`, read by content type),
   * "cbor" (`application/cbor`), "raw", "string" or your own `ValueCodec`.
   */
  codec?: CodecName | ValueCodec<any>;
  /** Wire subprotocol: "cbor" (binary, default) or "json" (text, for debugging). */
  format?: WireFormat;
  /** Smallest reconnect backoff ceiling, ms (default 500). */
  minReconnectDelay?: number;
  /** Largest reconnect delay, ms (default 20 000). */
  maxReconnectDelay?: number;
  /** Publishes held while disconnected (or beyond the in-flight window); more reject with QUEUE_FULL (default 10 000). */
  maxQueuedPublishes?: number;
  /** Publishes sent but not yet acknowledged, per connection (default 256). */
  maxInflightPublishes?: number;
  /** Give up opening a connection (and try the next URL) after this many ms (default 10 000). */
  connectTimeout?: number;
  /** Ping the server after this many idle ms; 0 disables (default 25 000). */
  pingInterval?: number;
  /** A connection with no frame for pingInterval + pongTimeout ms is dropped and reopened (default 10 000). */
  pongTimeout?: number;
  /**
   * How long (ms from the `publish()` call) a publish that fails with a retriable code is
   * retried before it rejects with the last error (default 30 000). `publish(..., { timeoutMs })`
   * overrides it per call. A publish that only waits for a connection is not timed out.
   */
  publishTimeoutMs?: number;
  /** Smallest ceiling of the full-jitter delay before retrying failed publishes, ms (default 50). */
  minPublishRetryDelay?: number;
  /** Largest delay before retrying failed publishes, ms (default 1000). */
  maxPublishRetryDelay?: number;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  /** Random source for the backoff jitter (tests). */
  random?: () => number;
  /** WebSocket constructor to use instead of globalThis.WebSocket / the `ws` package. */
  WebSocket?: unknown;
}

export interface PublishOptions {
  /** Record key: same key, same partition (murmur2, like Kafka). Strings are sent as UTF-8. */
  key?: string | Uint8Array | null;
  /** Record headers; string values are sent as UTF-8. A `content-type` here overrides the codec's. */
  headers?: Record<string, string | Uint8Array>;
  /** The value's content type (the record's `content-type` header), instead of the one the codec picks. */
  contentType?: string;
  /** Explicit partition (otherwise chosen from the key, or sticky for null keys). */
  partition?: number;
  /** 0: no acknowledgement; 1: in the node's log (default); "all": durable (fsynced). */
  acks?: 0 | 1 | "all";
  /** Retry deadline for this publish, ms from the call (overrides the client's `publishTimeoutMs`). */
  timeoutMs?: number;
}

/** Where a publish landed. With `acks: 0` both are -1 (the server does not say). */
export interface PublishResult {
  partition: number;
  offset: number;
}

export interface SubscribeOptions {
  /** Where to start: "latest" (default), "earliest", { timestamp } or { offsets: {partition: offset} }. */
  from?: StartPosition;
  /** When the position is gone (retention) or stale (epoch changed): "latest" (default), "earliest" or "error". */
  reset?: ResetPolicy;
  /** Flow-control window: messages the server may send before the SDK grants more (default the server's). */
  credit?: number;
  /** Overrides the client's value codec for this subscription. */
  codec?: CodecName | ValueCodec<any>;
  /** Be present on the topic while subscribed (see `client.presence`). Default true. */
  presence?: boolean;
  /**
   * Consume as a member of this consumer group: the group's members share the topic's
   * partitions, each partition goes to one member, positions are committed per group.
   * `from` is ignored (members start at the committed offsets; `reset` when there is none).
   */
  group?: string;
  /** Group: commit processed positions every `autoCommitIntervalMs`, on revoke and on leave (default true). */
  autoCommit?: boolean;
  /** Group: auto-commit period in ms (default 5000). */
  autoCommitIntervalMs?: number;
  /** Group: assignment strategy, or several preferred first: "cooperative-sticky" | "range" | "round-robin" (default ["cooperative-sticky", "range"]). */
  strategy?: string | string[];
  /** Group: how long the member survives without a connection before its partitions move (ms; server default 10 000). */
  sessionTimeoutMs?: number;
  /**
   * Group: called when partitions are revoked (not lost), after the handler finished its
   * message of them and before their commit (with `autoCommit`) and the confirmation: the
   * partitions move only once the returned promise settles, so finish (flush, commit) work
   * of them here, like Kafka's `onPartitionsRevoked`. A throw or rejection is reported on
   * the client's `error` event and the revoke goes on.
   */
  onRevoke?: (partitions: number[]) => void | Promise<void>;
}

/** One record, delivered in offset order per partition. */
export interface Message<T = unknown> {
  topic: string;
  partition: number;
  offset: number;
  /** Append time, ms since the epoch. */
  timestamp: number;
  /** Key as text (UTF-8), or null. `keyBytes` has the raw bytes. */
  key: string | null;
  keyBytes: Uint8Array | null;
  /**
   * The value, decoded by its content type with the codec (default: JSON types → the
   * parsed value, `text/*` → a string, `application/cbor` → the CBOR value, anything else
   * and records without a content type → the bytes). Null when the record has no value.
   */
  value: T;
  /** The raw value bytes (null when the record has no value). */
  bytes: Uint8Array | null;
  /** The record's `content-type` header, or null when it has none (MQTT 3.1.1, raw producers). */
  contentType: string | null;
  /**
   * Header values: a string when the bytes are valid UTF-8, else the bytes. Headers
   * published as strings come back as strings; bytes that happen to be UTF-8 come back as
   * strings too (the log keeps header values as untyped bytes, see docs/semantics.md).
   */
  headers: Record<string, string | Uint8Array>;
  /** Header values as the raw bytes stored in the log. */
  headerBytes: Record<string, Uint8Array>;
  /** The value bytes as UTF-8 text ("" for a record without a value; invalid sequences become U+FFFD). */
  text(): string;
  /** The value bytes parsed as JSON text; throws a SyntaxError when they are not JSON (null for a record without a value). */
  json<J = unknown>(): J;
}

/**
 * A subscription's position: per partition, the offset of the next message it will hand
 * to the application, and the partition's epoch. Pass `{ offsets, epochs }` built from it
 * as `from` to continue exactly there later.
 */
export type Position = Record<number, { offset: number; epoch: string }>;

export interface OffsetOutOfRangeEvent {
  topic: string;
  partition: number;
  /** OFFSET_OUT_OF_RANGE (data gone by retention) or STALE_EPOCH (history rewritten). */
  reason: "OFFSET_OUT_OF_RANGE" | "STALE_EPOCH";
  /** The offset the subscription asked for. */
  requested: number;
  /** Where delivery continues now (the reset policy applied). */
  offset: number;
  epoch: string;
  /** The policy that was applied. */
  reset: ResetPolicy;
}

export interface DisconnectedEvent {
  /** WebSocket close code (4000-4499: reconnect may help; 4500+: the server refuses for good). */
  code: number;
  reason: string;
  /** The server's error code, when it sent a `disconnect` frame. */
  error?: ErrorCode;
  /** Whether the client will reconnect. */
  reconnect: boolean;
}

/** Client events, one line each. */
export interface ClientEvents {
  /** The server welcomed the client; subscriptions resumed, queued publishes are on their way. */
  connected: { url: string; sessionId: string; clientId: string; node: string };
  /** The connection is gone; `reconnect` says whether a reconnect follows. */
  disconnected: DisconnectedEvent;
  /** A reconnect attempt is scheduled in `delay` ms (attempt counts from 1 since the last success). */
  reconnecting: { attempt: number; delay: number; url: string };
  /**
   * Something went wrong that no promise reports: each failed connect attempt (UNAVAILABLE,
   * `context.reason` refused | dns | timeout | http (+ `status`) | tls | protocol | closed |
   * token | network, `context.attempt`), a server error frame, a failed subscription, a value
   * that does not decode. Also kept in `client.lastError`.
   */
  error: TributaryClientError;
  /** A subscription's position no longer existed; its reset policy moved it (see the event). */
  offsetOutOfRange: OffsetOutOfRangeEvent & { subscription: Subscription<any> };
  /** The connection state changed. */
  state: { state: State; previous: State };
}

/** One client present on a topic. */
export interface PresenceMember {
  clientId: string;
  user: string | null;
  /** The node holding its connection. */
  node: string;
  /** ms since the epoch. */
  joinedAt: number;
}

/** Presence events, one line each. */
export interface PresenceEvents {
  /** A client subscribed to the topic (a reconnect of a present client is not a join). */
  join: PresenceMember;
  /** A client left: it unsubscribed ("leave") or its connection was gone for the session timeout ("timeout"). */
  leave: PresenceMember & { reason: "leave" | "timeout" };
}

/** Subscription events, one line each. */
export interface SubscriptionEvents {
  /** Group: the member joined (or re-joined) its group. */
  joined: { group: string; memberId: string };
  /** Group: a new generation; `partitions` are all the member owns now, `added` the ones starting now (at `offset`). */
  assigned: { group: string; generation: number; partitions: number[]; added: Array<{ partition: number; offset: number; committed: boolean }> };
  /** Group: partitions taken away (after committing them); `lost` when the member was removed and could not commit. */
  revoked: { group: string; generation: number; partitions: number[]; lost: boolean };
  /** The server confirmed (or, after a reconnect, re-confirmed) the subscription. */
  subscribed: { topic: string; partitions: { partition: number; offset: number; epoch: string }[] };
  /** The position was gone or stale; the reset policy moved it to `offset`. */
  offsetOutOfRange: OffsetOutOfRangeEvent;
  /** The subscription failed for good (e.g. reset "error", FORBIDDEN); it is closed. */
  error: TributaryClientError;
}
