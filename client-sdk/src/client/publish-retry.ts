/**
 * Retries of publishes that failed with a retriable code (UNAVAILABLE, TIMEOUT,
 * NOT_ENOUGH_REPLICAS, STORAGE_ERROR, QUEUE_FULL, ...), modelled on Kafka's idempotent
 * producer (`retries` + `delivery.timeout.ms`):
 *
 * - A failed publish goes back into the queue at its seq position and is re-sent with the
 *   same (producerId, seq), so the server writes it at most once even if the failed attempt
 *   was in fact written (e.g. NOT_ENOUGH_REPLICAS, or a reply lost with Redis).
 * - Backoff is for the whole publish pipeline, not per publish: after a failure no publish
 *   is sent (not even newer ones) until a full-jitter delay has passed, so a publish issued
 *   after the failure can never overtake the retry. The delay's ceiling doubles with each
 *   failure that follows a pause (from `minDelay` up to `maxDelay`) and drops back after an ack.
 * - Each publish has a deadline (`publishTimeoutMs` from the `publish()` call). A retriable
 *   failure after it, or the deadline passing while the publish waits for its retry, rejects
 *   with the last error (code and `retriable` kept). Non-retriable codes reject at once.
 */
import { backoff } from "./backoff.ts";
import { TributaryClientError } from "./errors.ts";
import type { PendingPublish, PublishQueue } from "./publish-queue.ts";

export interface PublishRetryOptions {
  minDelay: number;
  maxDelay: number;
  random?: () => number;
}

export class PublishRetry {
  readonly #queue: PublishQueue;
  readonly #options: PublishRetryOptions;
  readonly #resume: () => void;
  /** Consecutive pauses without an ack in between (the backoff attempt). */
  #attempt = 0;
  #resumeAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `resume` is called when the pause ends (send what the queue holds). */
  constructor(queue: PublishQueue, options: PublishRetryOptions, resume: () => void) {
    this.#queue = queue;
    this.#options = options;
    this.#resume = resume;
  }

  /** True while the pipeline waits for a retry's backoff: nothing may be sent. */
  get paused(): boolean {
    return this.#timer !== undefined;
  }

  /** An acknowledged publish: the next failure starts the backoff from `minDelay` again. */
  succeeded(): void {
    this.#attempt = 0;
  }

  /**
   * `entry` (no longer in flight) failed with `err`. Retriable and before its deadline: it
   * is queued again and the pipeline pauses; otherwise it is rejected. Returns true when retried.
   */
  failed(entry: PendingPublish, err: TributaryClientError): boolean {
    const now = Date.now();
    if (!err.retriable) {
      entry.reject(err);
      return false;
    }
    entry.failures++;
    entry.lastError = err;
    if (now >= entry.deadline) {
      entry.reject(gaveUp(entry, err));
      return false;
    }
    this.#queue.retry(entry);
    if (entry.deadlineTimer === undefined && Number.isFinite(entry.deadline)) {
      entry.deadlineTimer = setTimeout(() => {
        // Waiting for its retry: give up now. In flight: that attempt's outcome decides.
        if (this.#queue.remove(entry)) entry.reject(gaveUp(entry, entry.lastError!));
      }, entry.deadline - now);
    }
    if (!this.paused) {
      const delay = backoff(this.#attempt++, this.#options.minDelay, this.#options.maxDelay, this.#options.random);
      this.#resumeAt = now + delay;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#resume();
      }, delay);
    }
    return true;
  }

  /** When the current pause ends (ms since the epoch; 0 if never paused). */
  get resumeAt(): number {
    return this.#resumeAt;
  }

  /** Client closed: no more resumes. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** The error a publish is rejected with once its deadline passed: the last error's code, and how long it tried. */
function gaveUp(entry: PendingPublish, last: TributaryClientError): TributaryClientError {
  return new TributaryClientError(
    last.code,
    `${last.message} (publish given up at its deadline after ${entry.failures} failed attempt${entry.failures === 1 ? "" : "s"}; publishTimeoutMs)`,
    { ...last.context, attempts: entry.failures },
    { cause: last },
  );
}
