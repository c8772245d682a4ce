import { ERROR_CODES, type ErrorCode } from "@tributary/client/codes";

export type { ErrorCode } from "@tributary/client/codes";

/**
 * The one error root of the server. `code` is stable and machine-readable; `retriable`
 * comes from the code's definition; `context` carries the fields a caller needs to act
 * (topic, partition, offset, earliest, ...). Callers switch on `code`, never on `message`.
 */
export class TributaryError extends Error {
  override readonly name = "TributaryError";
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.retriable = ERROR_CODES[code].retriable;
    this.context = context;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isTributaryError(err: unknown, code?: ErrorCode): err is TributaryError {
  return err instanceof TributaryError && (code === undefined || err.code === code);
}

/** Wraps anything thrown into a TributaryError (INTERNAL unless it already is one). */
export function toTributaryError(err: unknown): TributaryError {
  if (err instanceof TributaryError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TributaryError("INTERNAL", message, {}, { cause: err });
}

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  INVALID_TOPIC: 400,
  INVALID_CONFIG: 400,
  MALFORMED_FRAME: 400,
  UNKNOWN_OP: 400,
  POLICY_VIOLATION: 400,
  UNAUTHORIZED: 401,
  TOKEN_EXPIRED: 401,
  FORBIDDEN: 403,
  UNKNOWN_TOPIC: 404,
  UNKNOWN_PARTITION: 404,
  UNKNOWN_GROUP: 404,
  NOT_FOUND: 404,
  TOPIC_EXISTS: 409,
  STALE_EPOCH: 409,
  GROUP_NOT_EMPTY: 409,
  UNKNOWN_MEMBER: 409,
  ILLEGAL_GENERATION: 409,
  PARTITION_NOT_OWNED: 409,
  INCONSISTENT_GROUP_PROTOCOL: 409,
  OFFSET_OUT_OF_RANGE: 416,
  RECORD_TOO_LARGE: 413,
  FRAME_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  QUEUE_FULL: 429,
  CORRUPT_RECORD: 500,
  INTERNAL: 500,
  STORAGE_ERROR: 503,
  UNAVAILABLE: 503,
  NOT_ENOUGH_REPLICAS: 503,
  TIMEOUT: 504,
};

export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[code] ?? 500;
}
