/**
 * The one error type of the streams library, with a stable `code` and a `retriable` flag
 * (the SDK's `TributaryClientError` is passed on as the `cause` where one was the reason).
 *
 * - INVALID_TOPOLOGY: the builder was used wrongly (not retriable: fix the code).
 * - TOPIC_MISMATCH: a topic the application needs has the wrong shape (partitions, cleanup
 *   policy) or is missing (not retriable: fix the topics).
 * - HTTP: an admin/read request to the node failed (retriable when the node was unavailable).
 * - CHANGELOG: a changelog or outbox record could not be read back (not retriable).
 * - PRODUCE: outputs or changelog records were not acknowledged; the application stops
 *   without committing, so the records are processed again after a restart.
 * - PROCESSING: a function of the topology threw; the application stops without committing
 *   (the record is processed again after a restart, as in Kafka Streams' default handler).
 * - COMMIT: committing input offsets failed (reported; the outputs are safe, see the outbox).
 * - CLOSED: the application was closed.
 */
export type StreamsErrorCode = "INVALID_TOPOLOGY" | "TOPIC_MISMATCH" | "HTTP" | "CHANGELOG" | "PRODUCE" | "PROCESSING" | "COMMIT" | "CLOSED";

const RETRIABLE: Record<StreamsErrorCode, boolean> = { INVALID_TOPOLOGY: false, TOPIC_MISMATCH: false, HTTP: true, CHANGELOG: false, PRODUCE: true, PROCESSING: false, COMMIT: true, CLOSED: false };

export class StreamsError extends Error {
  override readonly name = "StreamsError";
  readonly code: StreamsErrorCode;
  readonly retriable: boolean;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: StreamsErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options?.retriable ?? RETRIABLE[code];
    this.context = context;
  }
}
