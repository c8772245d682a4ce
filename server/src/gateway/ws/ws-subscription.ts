import type { ResetPolicy } from "@tributary/client/protocol";
import type { DeliveryBatch } from "../../broker/delivery/delivery-batch.ts";
import type { CursorReset, DeliveryConsumer, DeliveryCursor, DeliveryEnv } from "../../broker/delivery/delivery-cursor.ts";
import type { PartitionFeed } from "../../broker/delivery/partition-feed.ts";
import type { ErrorCode, TributaryError } from "../../errors.ts";
import type { LogRecord } from "../../log/log-engine.ts";
import { encodeMessages, frameBytesOf, MAX_FRAME_BYTES, WS_BATCH, type FeedBatch } from "./feed-batch.ts";
import type { NativeFanout } from "./native-fanout.ts";
import type { KeyFilter } from "./topic-filter.ts";
import type { WsConnection } from "./ws-connection.ts";

/** What WebSocket subscriptions deliver with: the broker's delivery plus the gateway's native fan-out. */
export interface WsDeliveryEnv extends DeliveryEnv {
  native: NativeFanout;
}

/**
 * One client subscription (`sub`): a log topic, an optional key filter, a reset policy, a
 * credit window shared by its partitions, and one DeliveryCursor per partition; the
 * DeliveryConsumer the broker's cursors hand batches to.
 *
 * Credit counts messages the server may still send before the client grants more with a
 * `credit` frame (the records budget); the connection's SendBudget is the bytes budget. At
 * 0 credit or a paused socket every cursor of the subscription stops pulling from the log
 * and resumes on the next grant or drain. Credit never exceeds `maxCredit`.
 */
export class WsSubscription implements DeliveryConsumer {
  readonly id: number;
  readonly conn: WsConnection;
  /** The log topic. */
  readonly topic: string;
  /** The topic or filter as the client wrote it. */
  readonly spec: string;
  readonly filter: KeyFilter | null;
  readonly reset: ResetPolicy;
  readonly maxCredit: number;
  credit: number;
  /** False once stopped (unsubscribe, error, connection closed). */
  active = true;
  /** Cursors start after `subscribed` is sent; empty while the subscription resolves. */
  cursors: DeliveryCursor[] = [];
  /** Called once when the subscription stops (presence bookkeeping). */
  onStop: (() => void) | null = null;
  readonly env: WsDeliveryEnv;
  #waiters: (() => void)[] = [];

  constructor(init: {
    id: number;
    conn: WsConnection;
    topic: string;
    spec: string;
    filter: KeyFilter | null;
    reset: ResetPolicy;
    credit: number;
    maxCredit: number;
    env: WsDeliveryEnv;
  }) {
    this.id = init.id;
    this.conn = init.conn;
    this.topic = init.topic;
    this.spec = init.spec;
    this.filter = init.filter;
    this.reset = init.reset;
    this.maxCredit = init.maxCredit;
    this.credit = Math.min(init.credit, init.maxCredit);
    this.env = init.env;
  }

  get resetPolicy(): ResetPolicy {
    return this.reset;
  }

  /** True when a message may be sent now: active, credit left, socket not paused. */
  get canDeliver(): boolean {
    return this.active && this.credit > 0 && this.conn.canWrite;
  }

  // ---- DeliveryConsumer ------------------------------------------------------------------

  take(cursor: DeliveryCursor, batch: DeliveryBatch, from: number): number {
    const conn = this.conn;
    if (!this.active || !conn.open) return 0;
    const view = batch.view(WS_BATCH);
    const feed = cursor.feed;
    if (batch.feedId !== null && feed !== null) {
      const n = batch.length;
      const whole = from === 0 && this.filter === null && this.credit >= n;
      const { native } = this.env;
      if (native.isAttached(cursor)) {
        if (whole && conn.reserveNative(view.bytes(conn.format))) return this.#tookNatively(n);
        native.detach(cursor);
      } else if (whole && conn.feedFrames && conn.canWrite && native.attach(feed, cursor, conn, { sub: this.id, partition: cursor.partition }, batch)) {
        return this.#tookNatively(n);
      }
    }
    if (conn.feedFrames && conn.format === "cbor") return this.#takeAsMessages(batch, view, from);
    const messages = view.messages;
    let i = from;
    conn.ws.cork(() => {
      for (; i < messages.length; i++) {
        const pm = messages[i]!;
        if (this.filter !== null && !this.filter(pm.key)) continue;
        if (!this.canDeliver) break;
        conn.sendEncoded(pm.bytesFor(this.id, conn.format));
        this.credit--;
        conn.stats.delivered++;
      }
    });
    return i - from;
  }

  /**
   * The JS path for a client that reads `messages` frames (feature `feed`, CBOR): runs of
   * records (those the key filter passes, within credit, up to MAX_FRAME_BYTES) go as one
   * `messages` frame addressed to this subscription, in one corked write, instead of a
   * `message` frame each: catch-up, partial credit and filtered subscriptions cost one
   * encode and one frame per run, not per record. Returns how far into the batch it got.
   */
  #takeAsMessages(batch: DeliveryBatch, view: FeedBatch, from: number): number {
    const conn = this.conn;
    const records = view.records;
    const filter = this.filter;
    let i = from;
    conn.ws.cork(() => {
      while (i < records.length && this.canDeliver) {
        const picked: LogRecord[] | null = filter === null ? null : [];
        let count = 0;
        let bytes = 0;
        let j = i;
        for (; j < records.length && count < this.credit; j++) {
          const r = records[j]!;
          if (filter !== null && !filter(r.key)) continue;
          const size = frameBytesOf(r);
          if (count > 0 && bytes + size > MAX_FRAME_BYTES) break;
          bytes += size;
          count++;
          picked?.push(r);
        }
        if (count > 0) {
          conn.sendEncoded(picked === null ? encodeMessages("sub", this.id, batch.topic, batch.partition, records, i, j, "cbor") : encodeMessages("sub", this.id, batch.topic, batch.partition, picked, 0, count, "cbor"));
          this.credit -= count;
          conn.stats.delivered += count;
        }
        i = j;
      }
    });
    return i - from;
  }

  /** The feed publishes the batch to our socket after every member took it: account for it now. */
  #tookNatively(n: number): number {
    this.credit -= n;
    this.conn.stats.delivered += n;
    return n;
  }

  /** Waits until `canDeliver` or the subscription/connection stopped. */
  async whenReady(): Promise<void> {
    while (this.active && this.conn.open && !this.canDeliver) {
      if (this.credit <= 0) await new Promise<void>((resolve) => this.#waiters.push(resolve));
      else await this.conn.whenWritable();
    }
  }

  leftFeed(cursor: DeliveryCursor, _feed: PartitionFeed): void {
    this.env.native.detach(cursor);
  }

  /** The reset policy moved a partition: the client hears it before any message from the new position. */
  resetTo(cursor: DeliveryCursor, r: CursorReset): void {
    this.conn.send({ op: "reset", sub: this.id, partition: cursor.partition, reason: r.reason, requested: r.requested, offset: r.offset, epoch: r.epoch });
  }

  failed(cursor: DeliveryCursor, err: TributaryError): void {
    this.fail(err.code, `partition ${cursor.partition}: ${err.message}`);
  }

  // ---- client side -----------------------------------------------------------------------

  /** Starts a cursor per partition (after `subscribed` went out). */
  startCursors(cursors: DeliveryCursor[], atEnd: boolean[]): void {
    this.cursors = cursors;
    cursors.forEach((c, i) => c.start(atEnd[i]));
  }

  addCredit(n: number): void {
    this.credit = Math.min(this.maxCredit, this.credit + n);
    if (this.credit > 0) this.#wake();
  }

  /** Stops delivery for good. Idempotent. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    for (const cursor of this.cursors) cursor.close();
    this.#wake();
    const onStop = this.onStop;
    this.onStop = null;
    onStop?.();
  }

  /** Ends the subscription with an error frame naming it (e.g. OFFSET_OUT_OF_RANGE under policy "error"). */
  fail(code: ErrorCode, message: string): void {
    if (!this.active) return;
    this.stop();
    if (this.conn.subscriptions.get(this.id) === this) this.conn.subscriptions.delete(this.id);
    this.conn.sendError(code, message, { sub: this.id });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
