/**
 * Exit codes of the `tributary` command (docs/cli.md):
 *
 *   0  success (also: Ctrl-C / SIGTERM ending `start` or `consume` cleanly)
 *   1  runtime or server failure (server unreachable, storage error, failed shutdown)
 *   2  usage or invalid input (bad flags, invalid config, invalid topic name, bad offset,
 *      record too large, policy violation, missing/invalid/expired token, not allowed)
 *   3  not found (unknown topic or partition)
 *   4  already exists (topics create without --if-not-exists)
 */
import type { ErrorCode } from "../errors.ts";

export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, NOT_FOUND: 3, EXISTS: 4 } as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  BAD_REQUEST: EXIT.USAGE,
  INVALID_CONFIG: EXIT.USAGE,
  INVALID_TOPIC: EXIT.USAGE,
  POLICY_VIOLATION: EXIT.USAGE,
  OFFSET_OUT_OF_RANGE: EXIT.USAGE,
  RECORD_TOO_LARGE: EXIT.USAGE,
  FRAME_TOO_LARGE: EXIT.USAGE,
  STALE_EPOCH: EXIT.USAGE,
  UNAUTHORIZED: EXIT.USAGE,
  FORBIDDEN: EXIT.USAGE,
  TOKEN_EXPIRED: EXIT.USAGE,
  UNKNOWN_TOPIC: EXIT.NOT_FOUND,
  UNKNOWN_PARTITION: EXIT.NOT_FOUND,
  NOT_FOUND: EXIT.NOT_FOUND,
  TOPIC_EXISTS: EXIT.EXISTS,
};

export function exitCodeOf(code: ErrorCode): number {
  return BY_CODE[code] ?? EXIT.FAILURE;
}
