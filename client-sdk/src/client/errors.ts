import { ERROR_CODES, isErrorCode, type ErrorCode } from "../codes.ts";

/**
 * The one error type the SDK throws, rejects with and emits. `code` is stable (codes.ts);
 * `retriable` says whether the same call may succeed later (after a reconnect or backoff):
 * decide retries from it, never from `message`. `context` carries what a caller needs to act
 * (topic, partition, offset...).
 */
export class TributaryClientError extends Error {
  override readonly name = "TributaryClientError";
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.retriable = ERROR_CODES[code]?.retriable ?? false;
    this.context = context;
  }
}

export function isTributaryClientError(err: unknown, code?: ErrorCode): err is TributaryClientError {
  return err instanceof TributaryClientError && (code === undefined || err.code === code);
}

/** The error an `error` frame stands for (an unknown code becomes INTERNAL). */
export function errorFromFrame(code: unknown, message: string, context: Record<string, unknown> = {}): TributaryClientError {
  return new TributaryClientError(isErrorCode(code) ? code : "INTERNAL", message, context);
}
