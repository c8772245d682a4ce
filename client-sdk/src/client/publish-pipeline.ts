import type { ErrorCode } from "../codes.ts";
import type { ClientFrame } from "../protocol/index.ts";
import { errorFromFrame, TributaryClientError } from "./errors.ts";
import { PublishQueue, type PendingPublish } from "./publish-queue.ts";
import { PublishRetry } from "./publish-retry.ts";
import type { PublishOptions, PublishResult } from "./types.ts";
import { CONTENT_TYPE_HEADER, contentTypeOf, encodeHeaders, encodeKey, type ValueCodec } from "./value-codec.ts";

export interface PublishPipelineSettings {
  maxQueuedPublishes: number;
  maxInflightPublishes: number;
  publishTimeoutMs: number;
  minPublishRetryDelay: number;
  maxPublishRetryDelay: number;
  random?: () => number;
}

/** What the publish pipeline needs from its client. */
export interface PublishPipelineHost {
  connected(): boolean;
  closed(): boolean;
  /** Sends on the current connection; false when there is none. */
  send(frame: ClientFrame): boolean;
  /** A fresh request id (shared with requests). */
  nextId(): number;
}

/**
 * The publish path of `TributaryClient` (internal to it): encodes, queues (bounded) with a
 * deadline, sends within the in-flight window while connected, settles on `ack`/`acks` and
 * `error` frames, and retries retriable failures in order (see publish-retry.ts).
 */
export class PublishPipeline {
  readonly #queue: PublishQueue;
  readonly #retry: PublishRetry;
  readonly #settings: PublishPipelineSettings;
  readonly #codec: ValueCodec<any>;
  readonly #producerId: string;
  readonly #host: PublishPipelineHost;

  constructor(settings: PublishPipelineSettings, codec: ValueCodec<any>, producerId: string, host: PublishPipelineHost) {
    this.#settings = settings;
    this.#codec = codec;
    this.#producerId = producerId;
    this.#host = host;
    this.#queue = new PublishQueue(settings.maxQueuedPublishes, settings.maxInflightPublishes);
    this.#retry = new PublishRetry(
      this.#queue,
      { minDelay: settings.minPublishRetryDelay, maxDelay: settings.maxPublishRetryDelay, ...(settings.random ? { random: settings.random } : {}) },
      () => this.flush(),
    );
  }

  get queuedCount(): number {
    return this.#queue.queuedCount;
  }

  get inflightCount(): number {
    return this.#queue.inflightCount;
  }

  publish(topic: string, value: unknown, options: PublishOptions): Promise<PublishResult> {
    if (this.#host.closed()) return Promise.reject(new TributaryClientError("UNAVAILABLE", "the client is closed", { topic }));
    let bytes: Uint8Array | null;
    let headers: Record<string, Uint8Array> | undefined;
    try {
      bytes = value === null && this.#codec.name === "raw" ? null : this.#codec.encode(value);
      headers = encodeHeaders(options.headers);
      // The value's content type: the publish's own (option, then header) wins over the codec's.
      const contentType = options.contentType ?? (headers?.[CONTENT_TYPE_HEADER] ? undefined : bytes === null ? undefined : contentTypeOf(this.#codec, value));
      if (contentType !== undefined) headers = { ...headers, [CONTENT_TYPE_HEADER]: encodeKey(contentType)! };
    } catch (cause) {
      return Promise.reject(new TributaryClientError("BAD_REQUEST", `value cannot be encoded with the ${this.#codec.name} codec: ${String((cause as Error)?.message ?? cause)}`, { topic }, { cause }));
    }
    const timeoutMs = options.timeoutMs ?? this.#settings.publishTimeoutMs;
    return new Promise<PublishResult>((resolve, reject) => {
      let entry: PendingPublish | undefined;
      const settled = () => {
        if (entry?.deadlineTimer) clearTimeout(entry.deadlineTimer);
      };
      try {
        entry = this.#queue.add(
          {
            op: "publish",
            topic,
            key: encodeKey(options.key),
            value: bytes,
            ...(headers ? { headers } : {}),
            ...(options.partition !== undefined ? { partition: options.partition } : {}),
            ...(options.acks !== undefined ? { acks: options.acks } : {}),
            producerId: this.#producerId,
          },
          (result) => {
            settled();
            resolve(result);
          },
          (err) => {
            settled();
            reject(err);
          },
          Date.now() + timeoutMs,
        );
      } catch (err) {
        reject(err);
        return;
      }
      this.flush();
    });
  }

  /** Sends what the in-flight window allows (connected and not paused by a pending retry). */
  flush(): void {
    // Paused: a failed publish waits for its retry at the head of the queue; nothing may overtake it.
    if (!this.#host.connected() || this.#retry.paused) return;
    for (;;) {
      const batch = this.#queue.takeSendable();
      if (batch.length === 0) return;
      for (const entry of batch) {
        const id = this.#host.nextId();
        if (!this.#host.send({ ...entry.frame, id })) {
          // The socket went away under us: keep it for the next connection.
          this.#queue.markInflight(id, entry);
          continue;
        }
        if (entry.frame.acks === 0) entry.resolve({ partition: -1, offset: -1 });
        else this.#queue.markInflight(id, entry);
      }
    }
  }

  /** Resolves the publish with request id `id`; false when `id` is not a publish. Call `acked()` after. */
  settle(id: number, partition: number, offset: number): boolean {
    const entry = this.#queue.settle(id);
    if (!entry) return false;
    entry.resolve({ partition, offset });
    return true;
  }

  /** After acks settled publishes: ends a retry pause and sends on. */
  acked(): void {
    this.#retry.succeeded();
    this.flush();
  }

  /** An `error` frame for request id `id`: fails or retries the publish; false when `id` is not a publish. */
  failed(id: number, code: ErrorCode, message: string): boolean {
    const publish = this.#queue.settle(id);
    if (!publish) return false;
    const err = errorFromFrame(code, message, { topic: publish.frame.topic, seq: publish.seq });
    if (this.#host.closed()) publish.reject(err);
    else this.#retry.failed(publish, err);
    this.flush();
    return true;
  }

  /** Connection lost: in-flight publishes go back to the queue (same seq), sent again after reconnect. */
  requeueInflight(): void {
    this.#queue.requeueInflight();
  }

  /** Client closing: stops retry timers. */
  stopRetries(): void {
    this.#retry.close();
  }

  /** Client closed: every publish not yet acknowledged rejects with `err`. */
  rejectAll(err: TributaryClientError): void {
    this.#queue.rejectAll(err);
  }
}
