import type { WireFormat } from "@tributary/client/protocol";
import type { Broker } from "../../broker/broker.ts";
import type { LogRecord, Tail } from "../../log/log-engine.ts";
import type { Logger } from "../../logger.ts";
import { FeedBatch } from "./feed-batch.ts";
import type { WsConnection } from "./ws-connection.ts";

/** A subscriber of a feed: takes a batch, or leaves (returns false) to continue on its own tail. */
export interface FeedMember {
  /** Next offset this member must receive. */
  readonly nextOffset: number;
  /** Delivers what it can of `batch` (skipping offsets below `nextOffset`); false = it left the feed. */
  takeFromFeed(batch: FeedBatch): boolean;
  /** The feed's tail failed; the member handles it like its own tail's error. */
  feedFailed(err: Error): void;
  /** The feed detached the member from native fan-out (feed closing). */
  nativeDetached(): void;
}

/** Identifies an attached member to its client: `attach` / `detach` frames name these. */
export interface NativeAddress {
  sub: number;
  partition: number;
}

/** Publishes to a uWS pub/sub topic (`app.publish`): one native call fans out to every socket subscribed. */
export type NativePublish = (topic: string, message: Uint8Array, isBinary: boolean) => void;

let nextFeedId = 1;

/**
 * One shared tail of a partition for every subscriber at its live edge on this node
 * (1,000 browser tabs on one topic read and encode each record once, not 1,000 times).
 *
 * The feed never waits for a member: a member that cannot take a record (no credit,
 * socket paused) leaves the feed at its `nextOffset` and catches up on its own tail,
 * which re-reads from the log, so a slow subscriber never slows the others down and no
 * frame is queued in memory for it. A member joins only when its `nextOffset` is at or
 * past the feed's `position` (the next offset the feed will see); the feed skips offsets
 * below a member's `nextOffset`, so the seam has no gap and no duplicate.
 *
 * Native fan-out: a member whose client announced feature `feed`, at the live edge with
 * credit for the whole batch and room in its socket buffer, is *attached*: its socket
 * subscribes to the feed's uWS topic and the feed publishes each batch once as `messages`
 * frames addressed to the feed id (one native call for all attached sockets instead of
 * one send per subscriber per record). The member still accounts credit and position per
 * batch. `attach` / `detach` frames, sent on the socket in order with everything else, tell
 * the client which subscription the feed's frames belong to. A member that cannot take the
 * next batch natively is detached first (the `detach` send makes uWS write out what it still
 * holds for the socket, then the socket unsubscribes) and continues on the JS path from its
 * `nextOffset`: no gap, no duplicate at the seam.
 */
export class PartitionFeed {
  /** Node-unique id (the `feed` of attach/detach/messages frames). */
  readonly id = nextFeedId++;
  readonly topic: string;
  readonly partition: number;
  readonly epoch: string;
  /** Next offset the feed will deliver. */
  position: number;
  readonly #members = new Set<FeedMember>();
  readonly #tail: Tail;
  readonly #onEmpty: (feed: PartitionFeed) => void;
  readonly #publish: NativePublish;
  /** Attached members: member → its connection and address; at most one member per connection. */
  readonly #native = new Map<FeedMember, { conn: WsConnection; address: NativeAddress }>();
  readonly #nativeConns = new Set<WsConnection>();
  readonly #nativeCount: Record<WireFormat, number> = { cbor: 0, json: 0 };
  #closed = false;

  constructor(broker: Broker, topic: string, partition: number, epoch: string, from: number, publish: NativePublish, onEmpty: (feed: PartitionFeed) => void) {
    this.topic = topic;
    this.partition = partition;
    this.epoch = epoch;
    this.position = from;
    this.#publish = publish;
    this.#onEmpty = onEmpty;
    this.#tail = broker.tail(topic, partition, from, {
      onRecords: (records) => this.#onRecords(records),
      onError: (err) => this.#onError(err),
    });
  }

  get size(): number {
    return this.#members.size;
  }

  /** Adds `member` if it is at or past the feed's position; false otherwise. */
  join(member: FeedMember): boolean {
    if (this.#closed || member.nextOffset < this.position) return false;
    this.#members.add(member);
    return true;
  }

  leave(member: FeedMember): void {
    if (!this.#members.delete(member)) return;
    this.detach(member);
    if (this.#members.size === 0) this.close();
  }

  /** Attached members (for tests and metrics). */
  get nativeSize(): number {
    return this.#native.size;
  }

  #nativeTopic(format: WireFormat): string {
    return `tributary/feed/${this.id}/${format}`;
  }

  /**
   * Attaches `member` (already a member, at the batch's first offset, with credit for it)
   * to native fan-out starting with `batch`: sends `attach`, reserves the batch's bytes in
   * the socket buffer and subscribes the socket. False (nothing changed for the client) if
   * its connection already has an attached member here or no room for the batch.
   */
  attach(member: FeedMember, conn: WsConnection, address: NativeAddress, batch: FeedBatch): boolean {
    if (this.#closed || this.#nativeConns.has(conn) || !this.#members.has(member)) return false;
    if (!conn.send({ op: "attach", sub: address.sub, partition: address.partition, feed: this.id })) return false;
    if (!conn.reserveNative(batch.bytes(conn.format))) {
      conn.send({ op: "detach", sub: address.sub, partition: address.partition, feed: this.id });
      return false;
    }
    conn.ws.subscribe(this.#nativeTopic(conn.format));
    this.#native.set(member, { conn, address });
    this.#nativeConns.add(conn);
    this.#nativeCount[conn.format]++;
    return true;
  }

  /**
   * Detaches `member` from native fan-out (no-op if not attached). The `detach` frame is sent
   * before unsubscribing: a send makes uWS write out the pub/sub frames it still holds for
   * the socket, which an unsubscribe would otherwise drop.
   */
  detach(member: FeedMember): void {
    const entry = this.#native.get(member);
    if (!entry) return;
    const { conn, address } = entry;
    this.#native.delete(member);
    this.#nativeConns.delete(conn);
    this.#nativeCount[conn.format]--;
    if (!conn.open) return; // uWS unsubscribed the socket when it closed
    conn.send({ op: "detach", sub: address.sub, partition: address.partition, feed: this.id });
    if (conn.open) conn.ws.unsubscribe(this.#nativeTopic(conn.format));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#tail.close();
    for (const member of [...this.#native.keys()]) {
      this.detach(member);
      member.nativeDetached();
    }
    this.#members.clear();
    this.#onEmpty(this);
  }

  #onRecords(records: LogRecord[]): Promise<void> | void {
    if (this.#closed || records.length === 0) return;
    const batch = new FeedBatch(this.id, this.topic, this.partition, records);
    this.position = batch.endOffset;
    for (const member of [...this.#members]) {
      if (!member.takeFromFeed(batch)) this.leave(member);
    }
    // Attached members took the batch (credit, position, buffer room): one publish per frame reaches them all.
    for (const format of ["cbor", "json"] as const) {
      if (this.#nativeCount[format] === 0) continue;
      const topic = this.#nativeTopic(format);
      for (const frame of batch.frames(format)) this.#publish(topic, frame, format === "cbor");
    }
    // Yield one event-loop turn before the next read: records appended meanwhile arrive
    // as one batch, written to each member in one corked syscall (never waits for members).
    return new Promise((resolve) => setImmediate(resolve));
  }

  #onError(err: Error): void {
    const members = [...this.#members];
    this.close();
    for (const member of members) member.feedFailed(err);
  }
}

/** The node's feeds, one per (topic, partition, epoch) with at least one member. */
export class FeedRegistry {
  readonly #broker: Broker;
  readonly #publish: NativePublish;
  readonly #feeds = new Map<string, PartitionFeed>();
  readonly log: Logger;

  constructor(broker: Broker, log: Logger, publish: NativePublish) {
    this.#broker = broker;
    this.#publish = publish;
    this.log = log;
  }

  get(topic: string, partition: number, epoch: string): PartitionFeed | undefined {
    return this.#feeds.get(feedKey(topic, partition, epoch));
  }

  /** Creates a feed starting at `from` and joins `member` to it. */
  createWith(topic: string, partition: number, epoch: string, from: number, member: FeedMember): PartitionFeed {
    const key = feedKey(topic, partition, epoch);
    const feed = new PartitionFeed(this.#broker, topic, partition, epoch, from, this.#publish, (f) => {
      if (this.#feeds.get(key) === f) this.#feeds.delete(key);
    });
    this.#feeds.set(key, feed);
    feed.join(member);
    return feed;
  }

  get size(): number {
    return this.#feeds.size;
  }

  /** Members attached to native fan-out, over all feeds. */
  get nativeSize(): number {
    let n = 0;
    for (const feed of this.#feeds.values()) n += feed.nativeSize;
    return n;
  }

  closeAll(): void {
    for (const feed of [...this.#feeds.values()]) feed.close();
  }
}

function feedKey(topic: string, partition: number, epoch: string): string {
  return `${topic}\u0000${partition}\u0000${epoch}`;
}
