/**
 * The publishes a client has accepted but the server has not acknowledged yet.
 *
 * Each publish gets a sequence number once, when accepted; with the client's producer id
 * it names the publish for the server's dedupe, so re-sending it (after a reconnect, when
 * its ack may have been lost) writes it at most once. Order: publishes are sent in seq
 * order, and in-flight ones go back to the front, still in seq order, when the connection
 * drops. Bounds: at most `maxQueued` waiting to be sent, `maxInflight` sent and unacked.
 *
 * Retries: a publish that failed with a retriable code goes back into the queue at its seq
 * position (`retry`), to be re-sent with the same seq; the client decides when (backoff) and
 * until when (its deadline).
 */
import type { PublishFrame } from "../protocol/index.ts";
import { TributaryClientError } from "./errors.ts";
import type { PublishResult } from "./types.ts";

export interface PendingPublish {
  seq: number;
  frame: Omit<PublishFrame, "id">;
  /** When (ms since the epoch) retrying stops: a retriable failure after it rejects. */
  deadline: number;
  /** Failed attempts so far (retriable errors from the server). */
  failures: number;
  /** The last retriable error, rejected with once the deadline passes. */
  lastError?: TributaryClientError;
  /** Rejects the publish at its deadline while it waits for a retry. */
  deadlineTimer?: ReturnType<typeof setTimeout>;
  resolve(result: PublishResult): void;
  reject(err: TributaryClientError): void;
}

export class PublishQueue {
  readonly maxQueued: number;
  readonly maxInflight: number;
  #nextSeq = 0;
  /** Waiting to be sent, in seq order. */
  #queued: PendingPublish[] = [];
  /** Sent on the current connection, by request id. */
  readonly #inflight = new Map<number, PendingPublish>();

  constructor(maxQueued: number, maxInflight: number) {
    this.maxQueued = maxQueued;
    this.maxInflight = maxInflight;
  }

  get queuedCount(): number {
    return this.#queued.length;
  }

  get inflightCount(): number {
    return this.#inflight.size;
  }

  /**
   * Accepts a publish (assigning its seq) or throws QUEUE_FULL when `maxQueued` publishes
   * already wait. Returns the pending entry (its promise is the caller's).
   */
  add(frame: Omit<PublishFrame, "id" | "seq">, resolve: PendingPublish["resolve"], reject: PendingPublish["reject"], deadline = Infinity): PendingPublish {
    if (this.#queued.length >= this.maxQueued) {
      throw new TributaryClientError("QUEUE_FULL", `publish queue is full (${this.maxQueued} publishes wait for the connection; maxQueuedPublishes)`, {
        topic: frame.topic,
        limit: this.maxQueued,
      });
    }
    const seq = this.#nextSeq++;
    const entry: PendingPublish = { seq, frame: { ...frame, seq }, deadline, failures: 0, resolve, reject };
    this.#queued.push(entry);
    return entry;
  }

  /** Takes the next publishes to send, while the in-flight window has room. */
  takeSendable(): PendingPublish[] {
    const room = this.maxInflight - this.#inflight.size;
    if (room <= 0 || this.#queued.length === 0) return [];
    return this.#queued.splice(0, room);
  }

  /** Records that `entry` was sent with request id `id` (acks 1/all: an ack will come). */
  markInflight(id: number, entry: PendingPublish): void {
    this.#inflight.set(id, entry);
  }

  /** The in-flight publish answered by request `id`, removed. */
  settle(id: number): PendingPublish | undefined {
    const entry = this.#inflight.get(id);
    if (entry) this.#inflight.delete(id);
    return entry;
  }

  /** Connection lost: in-flight publishes go back to the front, in seq order, to be re-sent with the same seq. */
  requeueInflight(): void {
    if (this.#inflight.size === 0) return;
    const back = [...this.#inflight.values()].sort((a, b) => a.seq - b.seq);
    this.#inflight.clear();
    this.#queued = [...back, ...this.#queued];
  }

  /** Puts a publish that failed (and is no longer in flight) back at its seq position, to be re-sent first. */
  retry(entry: PendingPublish): void {
    let i = 0;
    while (i < this.#queued.length && this.#queued[i]!.seq < entry.seq) i++;
    this.#queued.splice(i, 0, entry);
  }

  /** Removes a publish waiting to be (re-)sent; false when it is in flight or gone. */
  remove(entry: PendingPublish): boolean {
    const i = this.#queued.indexOf(entry);
    if (i < 0) return false;
    this.#queued.splice(i, 1);
    return true;
  }

  /** Rejects everything (client closed). */
  rejectAll(err: TributaryClientError): void {
    const all = [...this.#inflight.values(), ...this.#queued];
    this.#inflight.clear();
    this.#queued = [];
    for (const entry of all) entry.reject(err);
  }
}
