/**
 * Exit codes of the `tributary` command: one table for every command (docs/cli.md "Exit
 * codes"). Every error code the server can send has its row here (a new code does not
 * compile until it is placed), and commander's own usage errors exit 2 with `BAD_REQUEST`.
 *
 *   0  success (also: Ctrl-C / SIGTERM ending `start` or `consume` cleanly)
 *   1  runtime or server failure: try again later or ask the operator
 *   2  usage or invalid input: fix the command, the input, the credentials or the config
 *   3  not found (topic, partition, group, member, user, route)
 *   4  conflict: already exists, or the group's state does not allow it now
 */
import type { ErrorCode } from "../errors.ts";

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, NOT_FOUND: 3, CONFLICT: 4 } as const;

export const EXIT_BY_CODE: Record<ErrorCode, number> = {
  BAD_REQUEST: EXIT.USAGE,
  INVALID_TOPIC: EXIT.USAGE,
  OFFSET_OUT_OF_RANGE: EXIT.USAGE,
  RECORD_TOO_LARGE: EXIT.USAGE,
  POLICY_VIOLATION: EXIT.USAGE,
  INVALID_CONFIG: EXIT.USAGE,
  FRAME_TOO_LARGE: EXIT.USAGE,
  MALFORMED_FRAME: EXIT.USAGE,
  UNKNOWN_OP: EXIT.USAGE,
  UNSUPPORTED_MEDIA_TYPE: EXIT.USAGE,
  STALE_EPOCH: EXIT.USAGE,
  UNAUTHORIZED: EXIT.USAGE,
  FORBIDDEN: EXIT.USAGE,
  TOKEN_EXPIRED: EXIT.USAGE,
  INCONSISTENT_GROUP_PROTOCOL: EXIT.USAGE,
  UNKNOWN_TOPIC: EXIT.NOT_FOUND,
  UNKNOWN_PARTITION: EXIT.NOT_FOUND,
  UNKNOWN_GROUP: EXIT.NOT_FOUND,
  UNKNOWN_MEMBER: EXIT.NOT_FOUND,
  NOT_FOUND: EXIT.NOT_FOUND,
  TOPIC_EXISTS: EXIT.CONFLICT,
  GROUP_NOT_EMPTY: EXIT.CONFLICT,
  ILLEGAL_GENERATION: EXIT.CONFLICT,
  PARTITION_NOT_OWNED: EXIT.CONFLICT,
  CORRUPT_RECORD: EXIT.FAILURE,
  NOT_ENOUGH_REPLICAS: EXIT.FAILURE,
  STORAGE_ERROR: EXIT.FAILURE,
  UNAVAILABLE: EXIT.FAILURE,
  TIMEOUT: EXIT.FAILURE,
  SLOW_CONSUMER: EXIT.FAILURE,
  QUEUE_FULL: EXIT.FAILURE,
  INTERNAL: EXIT.FAILURE,
};

export function exitCodeOf(code: ErrorCode): number {
  return EXIT_BY_CODE[code] ?? EXIT.FAILURE;
}

/**
 * Commander's own error text (`error: unknown option '--x'`, possibly over several lines)
 * in the documented form `tributary: <message> [BAD_REQUEST]`.
 */
export function formatUsageError(text: string): string {
  const message = text.replace(/^error:\s*/i, "").trim().replace(/\s*\n\s*/g, " ");
  return `tributary: ${message} [BAD_REQUEST]\n`;
}
