import type { WireFormat } from "@tributary/client/protocol";
import type { DeliveryBatch } from "../../broker/delivery/delivery-batch.ts";
import type { DeliveryCursor } from "../../broker/delivery/delivery-cursor.ts";
import type { FeedHook, PartitionFeed } from "../../broker/delivery/partition-feed.ts";
import { WS_BATCH } from "./feed-batch.ts";
import type { WsConnection } from "./ws-connection.ts";

/** Identifies an attached cursor to its client: `attach` / `detach` frames name these. */
export interface NativeAddress {
  sub: number;
  partition: number;
}

/** Publishes to a uWS pub/sub topic (`app.publish`): one native call fans out to every socket subscribed. */
export type NativePublish = (topic: string, message: Uint8Array, isBinary: boolean) => void;

/**
 * WebSocket native fan-out on top of the broker's shared feeds: a cursor of a client with
 * feature `feed`, at the live edge with credit for the whole batch and room in its socket
 * buffer, is *attached*: its socket subscribes to the feed's uWS topic and each batch is
 * published once, after every member took it, as `messages` frames addressed to the feed id
 * (one native call for all attached sockets instead of one send per subscriber per record).
 * The cursor still accounts credit and position per batch. `attach` / `detach` frames, sent
 * on the socket in order with everything else, tell the client which subscription the
 * feed's frames belong to. A cursor that cannot take the next batch natively is detached
 * first (the `detach` send makes uWS write out what it still holds for the socket, then the
 * socket unsubscribes) and continues on the JS path from its `nextOffset`: no gap, no
 * duplicate at the seam.
 */
export class NativeFanout {
  readonly #publish: NativePublish;
  readonly #byFeed = new Map<PartitionFeed, NativeFeed>();
  /** Attached cursors; each also holds its NativeFeed in `consumerState` (no lookup per batch). */
  #attached = 0;

  constructor(publish: NativePublish) {
    this.#publish = publish;
  }

  /** Attached cursors, over all feeds (for tests and metrics). */
  get size(): number {
    return this.#attached;
  }

  isAttached(cursor: DeliveryCursor): boolean {
    return cursor.consumerState instanceof NativeFeed;
  }

  /**
   * Attaches `cursor` (a member of `feed`, at the batch's first offset, with credit for it)
   * starting with `batch`. False (nothing changed for the client) if its connection already
   * has an attached cursor on this feed or no room for the batch.
   */
  attach(feed: PartitionFeed, cursor: DeliveryCursor, conn: WsConnection, address: NativeAddress, batch: DeliveryBatch): boolean {
    if (feed.closed) return false;
    let native = this.#byFeed.get(feed);
    if (!native) {
      native = new NativeFeed(feed, this.#publish, () => this.#forget(feed));
      this.#byFeed.set(feed, native);
      feed.addHook(native);
    }
    if (!native.attach(cursor, conn, address, batch)) return false;
    cursor.consumerState = native;
    this.#attached++;
    return true;
  }

  /** Detaches `cursor` from native fan-out (no-op if not attached). */
  detach(cursor: DeliveryCursor): void {
    const native = cursor.consumerState;
    if (!(native instanceof NativeFeed)) return;
    cursor.consumerState = null;
    this.#attached--;
    native.detach(cursor);
  }

  #forget(feed: PartitionFeed): void {
    const native = this.#byFeed.get(feed);
    if (!native) return;
    this.#byFeed.delete(feed);
    for (const cursor of native.cursors()) {
      cursor.consumerState = null;
      this.#attached--;
    }
  }
}

class NativeFeed implements FeedHook {
  readonly #feed: PartitionFeed;
  readonly #publish: NativePublish;
  readonly #onClosed: () => void;
  readonly #attached = new Map<DeliveryCursor, { conn: WsConnection; address: NativeAddress }>();
  readonly #conns = new Set<WsConnection>();
  readonly #count: Record<WireFormat, number> = { cbor: 0, json: 0 };

  constructor(feed: PartitionFeed, publish: NativePublish, onClosed: () => void) {
    this.#feed = feed;
    this.#publish = publish;
    this.#onClosed = onClosed;
  }

  cursors(): DeliveryCursor[] {
    return [...this.#attached.keys()];
  }

  #topic(format: WireFormat): string {
    return `tributary/feed/${this.#feed.id}/${format}`;
  }

  attach(cursor: DeliveryCursor, conn: WsConnection, address: NativeAddress, batch: DeliveryBatch): boolean {
    if (this.#conns.has(conn)) return false;
    if (!conn.send({ op: "attach", sub: address.sub, partition: address.partition, feed: this.#feed.id })) return false;
    if (!conn.reserveNative(batch.view(WS_BATCH).bytes(conn.format))) {
      conn.send({ op: "detach", sub: address.sub, partition: address.partition, feed: this.#feed.id });
      return false;
    }
    conn.ws.subscribe(this.#topic(conn.format));
    this.#attached.set(cursor, { conn, address });
    this.#conns.add(conn);
    this.#count[conn.format]++;
    return true;
  }

  /**
   * The `detach` frame is sent before unsubscribing: a send makes uWS write out the pub/sub
   * frames it still holds for the socket, which an unsubscribe would otherwise drop.
   */
  detach(cursor: DeliveryCursor): void {
    const entry = this.#attached.get(cursor);
    if (!entry) return;
    const { conn, address } = entry;
    this.#attached.delete(cursor);
    this.#conns.delete(conn);
    this.#count[conn.format]--;
    if (!conn.open) return; // uWS unsubscribed the socket when it closed
    conn.send({ op: "detach", sub: address.sub, partition: address.partition, feed: this.#feed.id });
    if (conn.open) conn.ws.unsubscribe(this.#topic(conn.format));
  }

  dispatched(_feed: PartitionFeed, batch: DeliveryBatch): void {
    const view = batch.view(WS_BATCH);
    for (const format of ["cbor", "json"] as const) {
      if (this.#count[format] === 0) continue;
      const topic = this.#topic(format);
      for (const frame of view.frames(format)) this.#publish(topic, frame, format === "cbor");
    }
  }

  closed(): void {
    this.#onClosed(); // forgets our cursors in the fan-out's index first
    for (const cursor of [...this.#attached.keys()]) this.detach(cursor);
  }
}
