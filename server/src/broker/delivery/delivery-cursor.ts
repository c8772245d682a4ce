import { toTributaryError, TributaryError } from "../../errors.ts";
import type { LogRecord, PartitionPosition, Tail } from "../../log/log-engine.ts";
import type { Logger } from "../../logger.ts";
import type { Broker } from "../broker.ts";
import type { Protocol } from "../../metrics/traffic-metrics.ts";
import { DeliveryBatch } from "./delivery-batch.ts";
import type { FeedMember, FeedRegistry, PartitionFeed } from "./partition-feed.ts";

/** What a consumer does when its position is gone (retention) or its history changed (epoch). */
export type ResetPolicy = "earliest" | "latest" | "error";

/** A position the reset policy moved. */
export interface CursorReset {
  reason: "OFFSET_OUT_OF_RANGE" | "STALE_EPOCH";
  /** The offset the cursor was at. */
  requested: number;
  previousEpoch: string;
  /** Where it continues, in `epoch`. */
  offset: number;
  epoch: string;
}

/**
 * The protocol side of delivery: a WebSocket subscription, an MQTT session's cursor, an
 * MQTT `$share` member or an SDK group member. Implementations decide what "taking" a
 * record means (send a frame, a PUBLISH, or skip it as filtered out) and when they can
 * take more (credit, in-flight window, socket budget: see SendBudget).
 */
export interface DeliveryConsumer {
  /** False once the consumer stopped for good: its cursors stop too. */
  readonly active: boolean;
  readonly resetPolicy: ResetPolicy;
  /**
   * Offers `batch.records[from..]` (`from` is the cursor's `nextOffset`). Returns how many
   * it took, a prefix: delivered or deliberately skipped (filtered, expired). Fewer than
   * offered = it cannot take more now; the cursor then waits on `whenReady` and offers the
   * rest again (from the log, not from memory, when the batch came from a shared feed).
   */
  take(cursor: DeliveryCursor, batch: DeliveryBatch, from: number): number;
  /** Resolves when `take` may make progress again (or the consumer stopped). Must not resolve at once while blocked. */
  whenReady(cursor: DeliveryCursor): Promise<void>;
  /** The reset policy moved the cursor (tell the client, log it). Delivery continues from `reset.offset`. */
  resetTo(cursor: DeliveryCursor, reset: CursorReset): void;
  /** Delivery of this partition ended with an error the policy does not cover (UNKNOWN_TOPIC, policy "error", ...). */
  failed(cursor: DeliveryCursor, err: TributaryError): void;
  /** The cursor left the shared feed (optional: WebSocket native fan-out detaches). */
  leftFeed?(cursor: DeliveryCursor, feed: PartitionFeed): void;
}

export interface DeliveryEnv {
  broker: Broker;
  feeds: FeedRegistry;
  log?: Logger;
  /** The consumers' protocol, for `tributary_records_out_total` and the publish→deliver latency; default "internal". */
  protocol?: Protocol;
}

/** First wait before re-reading after a transient storage error; doubled up to MAX_RETRY_MS. */
const MIN_RETRY_MS = 100;
const MAX_RETRY_MS = 2000;

/**
 * Delivery of one partition to one consumer, in offset order, from `nextOffset` on: the
 * one delivery path of the node, for every protocol.
 *
 * Two modes, never both at once: on its own tail (catch-up, or after falling behind) or a
 * member of the partition's shared live feed on this node. The own tail waits while the
 * consumer cannot take (its `whenReady`): that wait is the backpressure that stops reading
 * the log, and nothing is buffered per consumer. A cursor that caught up joins the feed
 * (creating it when none exists); it leaves for its own tail as soon as it cannot take a
 * record. `nextOffset` only advances past records taken, so switching modes never skips or
 * repeats a record.
 *
 * Positions are (epoch, offset). A history change under the cursor (STALE_EPOCH) and a
 * position below the earliest offset (OFFSET_OUT_OF_RANGE) are handled by the consumer's
 * reset policy the same way for every protocol; transient storage errors (UNAVAILABLE,
 * TIMEOUT) are retried with capped backoff from the same position.
 */
export class DeliveryCursor implements FeedMember {
  readonly topic: string;
  readonly partition: number;
  epoch: string;
  nextOffset: number;
  readonly consumer: DeliveryConsumer;
  /** Free for the consumer's own per-cursor state (e.g. WebSocket native fan-out attachment); the cursor never reads it. */
  consumerState: unknown = null;
  readonly #env: DeliveryEnv;
  #tail: Tail | null = null;
  #feed: PartitionFeed | null = null;
  #running = false;
  #closed = false;
  #retryMs = MIN_RETRY_MS;
  #retryTimer: NodeJS.Timeout | null = null;

  constructor(env: DeliveryEnv, consumer: DeliveryConsumer, topic: string, partition: number, epoch: string, nextOffset: number) {
    this.#env = env;
    this.consumer = consumer;
    this.topic = topic;
    this.partition = partition;
    this.epoch = epoch;
    this.nextOffset = nextOffset;
  }

  /** Delivery metrics of records the consumer took (plain tallies; no work with metrics off). */
  #counted(batch: DeliveryBatch, from: number, taken: number): void {
    const traffic = this.#env.broker.metrics.traffic;
    if (traffic.enabled) traffic.delivered(this.#env.protocol ?? "internal", this.topic, taken, batch.payloadBytesOf(from, taken), batch.records[from]!);
  }

  /** Which mode the cursor is in (for tests and metrics). */
  get mode(): "feed" | "tail" | "waiting" | "stopped" {
    return !this.#running ? "stopped" : this.#feed ? "feed" : this.#tail ? "tail" : "waiting";
  }

  /** The feed the cursor is a member of, if any. */
  get feed(): PartitionFeed | null {
    return this.#feed;
  }

  /**
   * Starts (or restarts) delivery from `nextOffset`. `atEnd`: `nextOffset` is known to be
   * the partition's end offset, so the cursor may create the shared feed at once.
   */
  start(atEnd = false): void {
    if (this.#closed || (this.#running && (this.#tail || this.#feed))) return;
    this.#running = true;
    if (this.#joinFeed(atEnd)) return;
    this.#startOwnTail();
  }

  /** Stops delivery; the position is kept and `start` continues from it. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#closeTail();
    this.#leaveFeed();
  }

  /** Stops for good. */
  close(): void {
    this.stop();
    this.#closed = true;
  }

  // ---- feed mode ------------------------------------------------------------------------

  takeFromFeed(batch: DeliveryBatch): boolean {
    if (!this.#running || !this.consumer.active) return false;
    if (this.nextOffset >= batch.endOffset) return true;
    if (batch.firstOffset <= this.nextOffset) {
      const from = firstAtOrAfter(batch, this.nextOffset);
      const taken = this.consumer.take(this, batch, from);
      if (taken > 0) this.#counted(batch, from, taken);
      this.#advance(batch, from + taken);
      if (from + taken === batch.length) return true;
    }
    // Could not take it all (or a gap, never expected): continue on our own tail from
    // nextOffset once the feed finished this batch (it removes us when we return false).
    const feed = this.#feed;
    this.#feed = null;
    if (feed) this.consumer.leftFeed?.(this, feed);
    queueMicrotask(() => this.#startOwnTail());
    return false;
  }

  feedFailed(err: Error): void {
    const feed = this.#feed;
    this.#feed = null;
    if (feed) this.consumer.leftFeed?.(this, feed);
    this.#failed(err);
  }

  #joinFeed(atEnd: boolean): boolean {
    const { feeds } = this.#env;
    let feed = feeds.get(this.topic, this.partition, this.epoch);
    if (feed) {
      if (!feed.join(this)) return false;
    } else {
      if (!atEnd) return false;
      feed = feeds.createWith(this.topic, this.partition, this.epoch, this.nextOffset, this);
    }
    this.#feed = feed;
    this.#closeTail();
    return true;
  }

  #leaveFeed(): void {
    const feed = this.#feed;
    if (!feed) return;
    this.#feed = null;
    feed.leave(this);
    this.consumer.leftFeed?.(this, feed);
  }

  // ---- own-tail mode --------------------------------------------------------------------

  #startOwnTail(): void {
    if (!this.#running || this.#tail || this.#feed) return;
    const tail: Tail = this.#env.broker.tail(this.topic, this.partition, this.nextOffset, {
      onRecords: (records, where) => this.#onTailRecords(tail, records, where),
      onCaughtUp: (next, where) => {
        if (this.#tail === tail && where.epoch === this.epoch && next === this.nextOffset) this.#joinFeed(true);
      },
      onError: (err) => {
        if (this.#tail !== tail) return;
        this.#tail = null;
        this.#failed(err);
      },
    });
    this.#tail = tail;
  }

  async #onTailRecords(tail: Tail, records: LogRecord[], where: PartitionPosition): Promise<void> {
    if (this.#tail !== tail) return;
    if (where.epoch !== this.epoch) {
      this.#closeTail();
      this.#failed(new TributaryError("STALE_EPOCH", `partition ${this.partition} of "${this.topic}" has epoch ${where.epoch}, not ${this.epoch}`, { topic: this.topic, partition: this.partition, epoch: where.epoch }));
      return;
    }
    this.#retryMs = MIN_RETRY_MS;
    const batch = new DeliveryBatch(this.topic, this.partition, this.epoch, records, null);
    let from = firstAtOrAfter(batch, this.nextOffset);
    while (from < batch.length) {
      if (this.#tail !== tail || !this.consumer.active) return;
      const taken = this.consumer.take(this, batch, from);
      if (taken > 0) this.#counted(batch, from, taken);
      from += taken;
      this.#advance(batch, from);
      if (from < batch.length) await this.consumer.whenReady(this);
    }
    // Caught up with an existing feed? Join it (at the end of the log, onCaughtUp creates one).
    if (this.#tail === tail && this.#env.feeds.get(this.topic, this.partition, this.epoch)) this.#joinFeed(false);
  }

  /** The consumer took `batch.records[..taken)`: the position moves past the last of them (offsets may have gaps: compaction). */
  #advance(batch: DeliveryBatch, taken: number): void {
    if (taken > 0) this.nextOffset = Math.max(this.nextOffset, batch.records[taken - 1]!.offset + 1);
  }

  #closeTail(): void {
    const tail = this.#tail;
    this.#tail = null;
    tail?.close();
  }

  // ---- errors and resets ----------------------------------------------------------------

  #failed(err: unknown): void {
    if (!this.#running) return;
    const e = toTributaryError(err);
    if ((e.code === "OFFSET_OUT_OF_RANGE" || e.code === "STALE_EPOCH") && this.consumer.resetPolicy !== "error") {
      void this.#reset(e.code);
      return;
    }
    if (e.code === "UNAVAILABLE" || e.code === "TIMEOUT") {
      this.#retryLater(() => this.#startOwnTail(), e);
      return;
    }
    this.#running = false;
    this.consumer.failed(this, e);
  }

  /** Storage unreachable for a moment: try again from the same position after a backoff. */
  #retryLater(action: () => void, cause: TributaryError): void {
    this.#env.broker.metrics.backgroundErrors.inc({ task: "delivery-read" });
    if (this.#retryMs === MIN_RETRY_MS) this.#env.log?.warn("delivery.read_failed", { topic: this.topic, partition: this.partition, offset: this.nextOffset, error: cause.message });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#running) action();
    }, this.#retryMs);
    this.#retryTimer.unref();
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
  }

  async #reset(reason: CursorReset["reason"]): Promise<void> {
    let info;
    try {
      info = await this.#env.broker.offsets(this.topic, this.partition);
    } catch (err) {
      const e = toTributaryError(err);
      if (e.code === "UNAVAILABLE" || e.code === "TIMEOUT") this.#retryLater(() => void this.#reset(reason), e);
      else if (this.#running) {
        this.#running = false;
        this.consumer.failed(this, e);
      }
      return;
    }
    if (!this.#running || this.#tail || this.#feed) return;
    const reset: CursorReset = {
      // A position past the end of a new history is out of range because the history changed.
      reason: info.epoch !== this.epoch ? "STALE_EPOCH" : reason,
      requested: this.nextOffset,
      previousEpoch: this.epoch,
      offset: this.consumer.resetPolicy === "earliest" ? info.earliestOffset : info.endOffset,
      epoch: info.epoch,
    };
    this.epoch = reset.epoch;
    this.nextOffset = reset.offset;
    this.#env.log?.info("delivery.reset", { topic: this.topic, partition: this.partition, ...reset });
    this.consumer.resetTo(this, reset);
    if (this.#running) {
      this.#running = false; // start() again from the new position
      this.start(reset.offset >= info.endOffset);
    }
  }
}

/** Index of the first record of `batch` at or after `offset` (records ascend; usually index 0). */
function firstAtOrAfter(batch: DeliveryBatch, offset: number): number {
  const records = batch.records;
  const guess = offset - batch.firstOffset; // exact when the batch has no gaps
  if (guess <= 0) return 0;
  if (guess < records.length && records[guess]!.offset === offset) return guess;
  let lo = 0;
  let hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (records[mid]!.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
