/**
 * Stable error codes shared by the server, the wire protocol and the SDK.
 *
 * A code never changes meaning once published. `retriable` tells a client whether the
 * same request may succeed if sent again later (after a reconnect or a backoff); clients
 * decide retries from this flag, never by parsing messages.
 */
export const ERROR_CODES = {
  // --- request errors: fix the request, do not retry -----------------------------------
  BAD_REQUEST: { retriable: false, description: "The request is malformed or has a field of the wrong type." },
  INVALID_TOPIC: { retriable: false, description: "The topic name is not valid: [a-zA-Z0-9._-]{1,249}." },
  UNKNOWN_TOPIC: { retriable: false, description: "The topic does not exist." },
  TOPIC_EXISTS: { retriable: false, description: "A topic with this name already exists." },
  UNKNOWN_PARTITION: { retriable: false, description: "The partition does not exist in this topic." },
  OFFSET_OUT_OF_RANGE: { retriable: false, description: "The offset is below the earliest or above the end offset of the partition." },
  RECORD_TOO_LARGE: { retriable: false, description: "A record or batch is larger than the configured maximum." },
  POLICY_VIOLATION: { retriable: false, description: "The request breaks a configured policy (replication factor, retention, limits)." },
  INVALID_CONFIG: { retriable: false, description: "The configuration is not valid." },
  FRAME_TOO_LARGE: { retriable: false, description: "A protocol frame is larger than the server accepts." },
  MALFORMED_FRAME: { retriable: false, description: "A protocol frame could not be decoded." },
  UNKNOWN_OP: { retriable: false, description: "The protocol op is not known to this server." },
  UNAUTHORIZED: { retriable: false, description: "The credentials are missing or invalid." },
  FORBIDDEN: { retriable: false, description: "The credentials do not allow this action." },
  TOKEN_EXPIRED: { retriable: false, description: "The token has expired (at connect or while connected); get a fresh token (SDK getToken()) and connect again." },
  STALE_EPOCH: { retriable: false, description: "The partition's history changed since the position was taken; reset by policy." },
  NOT_FOUND: { retriable: false, description: "No such HTTP route (HTTP API only; unknown topics are UNKNOWN_TOPIC)." },
  UNSUPPORTED_MEDIA_TYPE: { retriable: false, description: "The request body's Content-Type is not one the route accepts (HTTP API only: application/json, application/cbor, application/x-ndjson)." },
  // --- consumer groups (docs/consumer-groups.md) ---------------------------------------
  UNKNOWN_GROUP: { retriable: false, description: "The consumer group has no members and no committed offsets." },
  UNKNOWN_MEMBER: { retriable: false, description: "The member id is not (or no longer) in the group, e.g. after its session timed out; join again." },
  ILLEGAL_GENERATION: { retriable: false, description: "The request carries a stale group generation; use the generation of the latest assignment." },
  PARTITION_NOT_OWNED: { retriable: false, description: "The member does not own this partition in its generation (revoked or never assigned): the commit is fenced." },
  GROUP_NOT_EMPTY: { retriable: false, description: "The operation needs a group with no active members (e.g. resetting offsets)." },
  INCONSISTENT_GROUP_PROTOCOL: { retriable: false, description: "The member's assignment strategies share none with the group's members." },
  // --- server-side conditions: retry with backoff --------------------------------------
  CORRUPT_RECORD: { retriable: false, description: "Stored data failed its checksum or is structurally invalid." },
  NOT_ENOUGH_REPLICAS: { retriable: true, description: "The write could not be replicated to the required replicas in time." },
  STORAGE_ERROR: { retriable: true, description: "The storage engine failed to read or write." },
  UNAVAILABLE: { retriable: true, description: "The service is shutting down or its storage is unreachable." },
  TIMEOUT: { retriable: true, description: "The request did not complete in time." },
  SLOW_CONSUMER: { retriable: true, description: "The connection fell too far behind and was dropped." },
  QUEUE_FULL: { retriable: true, description: "A bounded queue is full; try again later." },
  INTERNAL: { retriable: true, description: "An unexpected server error." },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === "string" && Object.prototype.hasOwnProperty.call(ERROR_CODES, x);
}
