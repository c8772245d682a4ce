import { encodeFrame, type MessageFrame } from "@tributary/client/protocol";
import type { Broker } from "../../broker/broker.ts";
import { isTributaryError, toTributaryError } from "../../errors.ts";
import type { LogRecord, Tail } from "../../log/log-engine.ts";
import type { FeedBatch } from "./feed-batch.ts";
import type { FeedMember, FeedRegistry, PartitionFeed } from "./partition-feed.ts";
import { plainBytes } from "./prepared-message.ts";
import type { WsSubscription } from "./ws-subscription.ts";

export interface DeliveryEnv {
  broker: Broker;
  feeds: FeedRegistry;
}

/**
 * Delivery of one partition to one subscription, in offset order, from `nextOffset` on.
 *
 * Two modes, never both at once: on its own tail (catch-up, or after falling behind) or
 * a member of the partition's shared live feed. The own tail waits while the subscription
 * cannot deliver (credit 0, socket paused): that wait is the backpressure that stops
 * reading the log. After each batch a caught-up cursor joins the feed (creating it when
 * it is at the log end and none exists); it leaves the feed for its own tail as soon as
 * it cannot take a record. `nextOffset` only advances past records sent (or filtered
 * out), so switching modes never skips or repeats a record.
 *
 * In the feed, an unfiltered cursor of a client with feature `feed` is attached to the
 * feed's native fan-out while it can take whole batches (credit, socket room); it is
 * detached before the first batch it cannot take, which then goes the JS path.
 */
export class PartitionCursor implements FeedMember {
  readonly sub: WsSubscription;
  readonly partition: number;
  epoch: string;
  nextOffset: number;
  readonly #env: DeliveryEnv;
  #tail: Tail | null = null;
  #feed: PartitionFeed | null = null;
  /** Attached to the feed's native fan-out (see PartitionFeed.attach). */
  #native = false;
  #stopped = false;

  constructor(sub: WsSubscription, partition: number, epoch: string, nextOffset: number, env: DeliveryEnv) {
    this.sub = sub;
    this.partition = partition;
    this.epoch = epoch;
    this.nextOffset = nextOffset;
    this.#env = env;
  }

  /** Starts delivery; `atEnd` = `nextOffset` is the partition's end offset (may create the feed). */
  start(atEnd: boolean): void {
    if (this.#stopped) return;
    if (this.#joinFeed(atEnd)) return;
    this.#startOwnTail();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#closeTail();
    this.#feed?.leave(this);
    this.#feed = null;
    this.#native = false;
  }

  /** Which mode the cursor is in (for tests and metrics). */
  get mode(): "native" | "feed" | "tail" | "stopped" {
    return this.#stopped ? "stopped" : this.#native ? "native" : this.#feed ? "feed" : "tail";
  }

  // ---- feed mode ------------------------------------------------------------------------

  takeFromFeed(batch: FeedBatch): boolean {
    if (this.#stopped) return false;
    const sub = this.sub;
    const conn = sub.conn;
    if (!conn.open) return false;
    const n = batch.length;
    const whole = this.nextOffset === batch.firstOffset && sub.active && sub.credit >= n;
    if (this.#native) {
      if (whole && conn.reserveNative(batch.bytes(conn.format))) return this.#tookNatively(batch);
      this.#native = false;
      this.#feed?.detach(this);
    } else if (whole && sub.filter === null && conn.feedFrames && conn.canWrite && this.#feed?.attach(this, conn, { sub: sub.id, partition: this.partition }, batch)) {
      this.#native = true;
      return this.#tookNatively(batch);
    }
    let stay = true;
    conn.ws.cork(() => {
      for (const pm of batch.messages) {
        if (pm.offset < this.nextOffset) continue;
        if (pm.offset > this.nextOffset || !conn.open) {
          stay = false; // never expected: re-read the gap from the log
          break;
        }
        if (sub.filter !== null && !sub.filter(pm.key)) {
          this.nextOffset = pm.offset + 1;
          continue;
        }
        if (!sub.canDeliver) {
          stay = false;
          break;
        }
        conn.sendEncoded(pm.bytesFor(sub.id, conn.format));
        sub.credit--;
        conn.stats.delivered++;
        this.nextOffset = pm.offset + 1;
      }
    });
    if (!stay) {
      this.#feed = null;
      this.#native = false;
      // Continue on our own tail after the feed finished this batch (we are removed by the caller).
      queueMicrotask(() => this.#startOwnTail());
    }
    return stay;
  }

  /** The feed publishes `batch` to our socket after every member took it: account for it now. */
  #tookNatively(batch: FeedBatch): boolean {
    this.sub.credit -= batch.length;
    this.sub.conn.stats.delivered += batch.length;
    this.nextOffset = batch.endOffset;
    return true;
  }

  nativeDetached(): void {
    this.#native = false;
  }

  feedFailed(err: Error): void {
    this.#feed = null;
    this.#native = false;
    this.#failed(err);
  }

  #joinFeed(atEnd: boolean): boolean {
    const { topic } = this.sub;
    const feed = this.#env.feeds.get(topic, this.partition, this.epoch);
    if (feed) {
      if (!feed.join(this)) return false;
      this.#feed = feed;
    } else {
      if (!atEnd) return false;
      this.#feed = this.#env.feeds.createWith(topic, this.partition, this.epoch, this.nextOffset, this);
    }
    this.#closeTail();
    return true;
  }

  // ---- own-tail mode --------------------------------------------------------------------

  #startOwnTail(): void {
    if (this.#stopped || this.#tail || this.#feed) return;
    const tail: Tail = this.#env.broker.tail(this.sub.topic, this.partition, this.nextOffset, {
      onRecords: (records) => this.#onTailRecords(tail, records),
      onError: (err) => {
        if (this.#tail === tail) {
          this.#tail = null;
          this.#failed(err);
        }
      },
    });
    this.#tail = tail;
  }

  async #onTailRecords(tail: Tail, records: LogRecord[]): Promise<void> {
    const sub = this.sub;
    const conn = sub.conn;
    let i = 0;
    while (i < records.length) {
      if (this.#tail !== tail || this.#stopped || !conn.open) return;
      if (!sub.canDeliver) {
        await sub.whenReady();
        continue;
      }
      conn.ws.cork(() => {
        for (; i < records.length; i++) {
          const record = records[i]!;
          if (record.offset < this.nextOffset) continue;
          if (sub.filter !== null && !sub.filter(record.key)) {
            this.nextOffset = record.offset + 1;
            continue;
          }
          if (!sub.canDeliver) break;
          const frame = this.#messageFrame(record);
          conn.sendEncoded(encodeFrame(conn.format === "json" ? plainBytes(frame) : frame, conn.format));
          sub.credit--;
          conn.stats.delivered++;
          this.nextOffset = record.offset + 1;
        }
      });
    }
    if (this.#tail !== tail || this.#stopped) return;
    // Caught up with the shared feed? Join it. No feed yet: create one if we are at the end.
    if (this.#env.feeds.get(sub.topic, this.partition, this.epoch)) {
      this.#joinFeed(false);
      return;
    }
    let info;
    try {
      info = await this.#env.broker.engine.offsets(sub.topic, this.partition);
    } catch {
      return; // storage unreachable for a moment: stay on the own tail (it waits and retries)
    }
    if (this.#tail !== tail || this.#stopped) return;
    if (info.epoch === this.epoch && this.nextOffset >= info.endOffset) this.#joinFeed(true);
  }

  #messageFrame(record: LogRecord): MessageFrame {
    const frame: MessageFrame = {
      op: "message",
      sub: this.sub.id,
      topic: this.sub.topic,
      partition: this.partition,
      offset: record.offset,
      timestamp: record.timestamp,
      key: record.key,
      value: record.value,
    };
    if (Object.keys(record.headers).length > 0) frame.headers = record.headers;
    return frame;
  }

  #closeTail(): void {
    const tail = this.#tail;
    this.#tail = null;
    tail?.close();
  }

  // ---- errors and resets ----------------------------------------------------------------

  /** A tail failed: reset by policy if the position is gone, else end the subscription. */
  #failed(err: Error): void {
    if (this.#stopped) return;
    if (isTributaryError(err, "OFFSET_OUT_OF_RANGE") && this.sub.reset !== "error") {
      void this.#resetAfterOutOfRange();
      return;
    }
    if ((isTributaryError(err, "UNAVAILABLE") || isTributaryError(err, "TIMEOUT")) && this.sub.conn.open) {
      // Storage unreachable (e.g. Redis restarting): resume from nextOffset shortly, not a subscription failure.
      setTimeout(() => {
        if (this.#stopped || this.#tail || this.#feed) return;
        try {
          this.#startOwnTail();
        } catch (again) {
          const e = toTributaryError(again);
          this.sub.fail(e.code, `partition ${this.partition}: ${e.message}`);
        }
      }, 250).unref?.();
      return;
    }
    const e = toTributaryError(err);
    this.sub.fail(e.code, `partition ${this.partition}: ${e.message}`);
  }

  async #resetAfterOutOfRange(): Promise<void> {
    try {
      const info = await this.#env.broker.engine.offsets(this.sub.topic, this.partition);
      if (this.#stopped) return;
      const requested = this.nextOffset;
      const offset = this.sub.reset === "earliest" ? info.earliestOffset : info.endOffset;
      this.epoch = info.epoch;
      this.nextOffset = offset;
      this.sub.conn.send({
        op: "reset",
        sub: this.sub.id,
        partition: this.partition,
        reason: "OFFSET_OUT_OF_RANGE",
        requested,
        offset,
        epoch: info.epoch,
      });
      this.start(offset >= info.endOffset);
    } catch (err) {
      const e = toTributaryError(err);
      this.sub.fail(e.code, `partition ${this.partition}: ${e.message}`);
    }
  }
}
