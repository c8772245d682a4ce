/**
 * The connector contract: what a source or a sink implements, and what the runtime
 * (sink-task.ts, source-task.ts) guarantees around it.
 *
 * Sinks. The runtime consumes the connector's topics as consumer group `connect.<name>`
 * and calls `write` with batches, records of a partition in offset order, one call at a
 * time unless the sink sets `concurrentWrites`. `write` resolves once every record of the
 * batch is durably in the target; only then, and once every batch handed over before it
 * was written too, may the runtime commit the group's offsets past them. So delivery is
 * at-least-once: after a crash, records since the last commit are written again. A sink
 * that writes each record under its (topic, partition, offset) idempotently (the
 * PostgreSQL sink's unique key) turns that into exactly-once in the target.
 *
 * `write` fails with a SinkError saying whose fault it is:
 * - `target`: the target is unreachable or refusing everything (connection refused, the
 *   database restarting). The runtime retries the same batch with backoff for as long as
 *   it takes, without counting attempts: a target outage never sends records to the DLQ.
 * - `records`: the records are at fault (a value that is not JSON, an HTTP 4xx/5xx answer
 *   to this request). The runtime retries each record of the batch on its own, counting
 *   attempts; a record still failing after `maxRetries` retries (or at once, when the
 *   error is not `retriable`) goes to the dead-letter topic with headers saying why.
 *
 * Sources. `run` is called once per start with a context that produces records to the
 * node (idempotent producer: a retried batch is written once) and keeps the source's
 * position in the offsets topic. A source resumes from `ctx.position` (the last position
 * it saved, or null) and must give `send` records in the order they should be in the log.
 * `run` returns when `ctx.signal` aborts (pause, restart, shutdown) and may throw to fail
 * the connector (its status shows the error; `restart` starts it again).
 */

/** One record handed to a sink (bytes as stored in the log; `value` null for a record without one). */
export interface SinkRecord {
  topic: string;
  partition: number;
  offset: number;
  /** Append time, ms since the epoch. */
  timestamp: number;
  key: string | null;
  keyBytes: Uint8Array | null;
  value: Uint8Array | null;
  /** The record's `content-type` header, or null. */
  contentType: string | null;
  headers: Record<string, Uint8Array>;
}

export interface SinkConnector {
  /**
   * How many `write` calls may run at once (default 1: one after the other, so the target
   * sees the batches in order). More lets a batch go in while the one before it commits;
   * only for a sink whose writes of different batches are independent and whose target
   * does not care in which order they land (each record keyed by its position).
   */
  readonly concurrentWrites?: number;
  /** Opens connections, creates tables; a throw fails the connector's start (shown in its status). */
  start(): Promise<void>;
  /** Writes `records` durably, or throws a SinkError (see the module comment). */
  write(records: SinkRecord[]): Promise<void>;
  /** Closes connections; called once, after the last `write` settled. */
  stop(): Promise<void>;
}

/** One record a source produces. `value` is sent as given: bytes, or text with `contentType`. */
export interface SourceRecord {
  key: string | null;
  value: Uint8Array | string | null;
  contentType?: string;
  headers?: Record<string, string>;
  timestamp?: number;
}

export interface SourceContext {
  /** The position the source saved last (`send(..., position)`), or null on its first run. */
  readonly position: unknown;
  /** Aborts on pause, restart and shutdown. */
  readonly signal: AbortSignal;
  /**
   * Produces `records` to the connector's topic with acks=all through the idempotent producer
   * (a batch retried after a lost reply is written once), in order, then saves `position`
   * in the offsets topic (`undefined`: nothing to save). Resolves once both are done; retries while the node is
   * unavailable; rejects when `signal` aborted (Stopped) or the node refuses the records
   * for good. Calls must not overlap.
   */
  send(records: SourceRecord[], position: unknown): Promise<void>;
  /** Counts a failure of the source's own side (remote broker, file) for metrics and logs. */
  failed(what: string, err: unknown): void;
}

export interface SourceConnector {
  run(ctx: SourceContext): Promise<void>;
}

export type SinkErrorKind = "target" | "records";

/** Why a sink's `write` failed (see the module comment). */
export class SinkError extends Error {
  override readonly name = "SinkError";
  constructor(
    readonly kind: SinkErrorKind,
    message: string,
    /** Worth trying again (a `records` error that is not retriable goes to the DLQ at once). */
    readonly retriable = true,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isSinkError(err: unknown): err is SinkError {
  return err instanceof SinkError;
}

/** The value bytes as UTF-8 text. */
export function valueText(record: SinkRecord): string | null {
  return record.value === null ? null : Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength).toString("utf8");
}

/** True when the record's content type says JSON (`application/json`, `*+json`). */
export function isJsonType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const base = contentType.split(";")[0]!.trim().toLowerCase();
  return base === "application/json" || base.endsWith("+json");
}
