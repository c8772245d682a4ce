import { TributaryError } from "../../errors.ts";
import type { LogRecord, PartitionPosition, Tail } from "../../log/log-engine.ts";
import type { Logger } from "../../logger.ts";
import type { Broker } from "../broker.ts";
import { DeliveryBatch } from "./delivery-batch.ts";

/** A subscriber of a feed (a DeliveryCursor at the live edge). */
export interface FeedMember {
  /** Next offset this member must receive. */
  readonly nextOffset: number;
  /** Takes what it can of `batch` (offsets below `nextOffset` are skipped); false = it leaves the feed. */
  takeFromFeed(batch: DeliveryBatch): boolean;
  /** The feed's tail failed; the member handles it like its own tail's error. */
  feedFailed(err: Error): void;
}

/** Observes a feed's batches after every member took them (e.g. WebSocket native fan-out). */
export interface FeedHook {
  dispatched(feed: PartitionFeed, batch: DeliveryBatch): void;
  /** The feed closed (last member left, or its tail failed). */
  closed(feed: PartitionFeed): void;
}

let nextFeedId = 1;

/**
 * One shared tail of a partition for every subscriber at its live edge on this node,
 * whatever its protocol (WebSocket subscription, MQTT session, `$share` member, SDK group
 * member): each record is read once and offered to every member as one DeliveryBatch.
 *
 * The feed never waits for a member: a member that cannot take a record leaves the feed at
 * its `nextOffset` and catches up on its own tail, which re-reads from the log, so a slow
 * subscriber never slows the others down and nothing is queued in memory for it. A member
 * joins only when its `nextOffset` is at or past the feed's `position`; the feed skips
 * offsets below a member's `nextOffset`, so the seam has no gap and no duplicate. A feed
 * belongs to one epoch: a changed history ends it with STALE_EPOCH for its members.
 */
export class PartitionFeed {
  /** Node-unique id (WebSocket feed frames name it). */
  readonly id = nextFeedId++;
  readonly topic: string;
  readonly partition: number;
  readonly epoch: string;
  /** Next offset the feed will deliver. */
  position: number;
  readonly #members = new Set<FeedMember>();
  readonly #hooks = new Set<FeedHook>();
  readonly #tail: Tail;
  readonly #onClosed: (feed: PartitionFeed) => void;
  #closed = false;

  constructor(broker: Broker, topic: string, partition: number, epoch: string, from: number, onClosed: (feed: PartitionFeed) => void) {
    this.topic = topic;
    this.partition = partition;
    this.epoch = epoch;
    this.position = from;
    this.#onClosed = onClosed;
    this.#tail = broker.tail(topic, partition, from, {
      onRecords: (records, where) => this.#onRecords(records, where),
      onError: (err) => this.#fail(err),
    });
  }

  get size(): number {
    return this.#members.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Adds `member` if it is at or past the feed's position; false otherwise. */
  join(member: FeedMember): boolean {
    if (this.#closed || member.nextOffset < this.position) return false;
    this.#members.add(member);
    return true;
  }

  leave(member: FeedMember): void {
    if (!this.#members.delete(member)) return;
    if (this.#members.size === 0) this.close();
  }

  addHook(hook: FeedHook): void {
    this.#hooks.add(hook);
  }

  removeHook(hook: FeedHook): void {
    this.#hooks.delete(hook);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#tail.close();
    this.#members.clear();
    for (const hook of [...this.#hooks]) hook.closed(this);
    this.#hooks.clear();
    this.#onClosed(this);
  }

  #onRecords(records: LogRecord[], where: PartitionPosition): Promise<void> | void {
    if (this.#closed || records.length === 0) return;
    if (where.epoch !== this.epoch) {
      this.#fail(new TributaryError("STALE_EPOCH", `partition ${this.partition} of "${this.topic}" has epoch ${where.epoch}, not ${this.epoch}`, { topic: this.topic, partition: this.partition, epoch: where.epoch }));
      return;
    }
    const batch = new DeliveryBatch(this.topic, this.partition, this.epoch, records, this.id);
    this.position = batch.endOffset;
    for (const member of [...this.#members]) {
      if (!member.takeFromFeed(batch)) this.leave(member);
    }
    if (this.#closed) return;
    for (const hook of this.#hooks) hook.dispatched(this, batch);
    // Yield one event-loop turn before the next read: records appended meanwhile arrive
    // as one batch, written to each member in one corked syscall (never waits for members).
    return new Promise((resolve) => setImmediate(resolve));
  }

  #fail(err: Error): void {
    const members = [...this.#members];
    this.close();
    for (const member of members) member.feedFailed(err);
  }
}

/** The node's feeds, one per (topic, partition, epoch) with at least one member. */
export class FeedRegistry {
  readonly #broker: Broker;
  readonly #feeds = new Map<string, PartitionFeed>();
  readonly log: Logger | undefined;

  constructor(broker: Broker, log?: Logger) {
    this.#broker = broker;
    this.log = log;
  }

  get(topic: string, partition: number, epoch: string): PartitionFeed | undefined {
    return this.#feeds.get(feedKey(topic, partition, epoch));
  }

  /** Creates a feed starting at `from` and joins `member` to it. */
  createWith(topic: string, partition: number, epoch: string, from: number, member: FeedMember): PartitionFeed {
    const key = feedKey(topic, partition, epoch);
    const feed = new PartitionFeed(this.#broker, topic, partition, epoch, from, (f) => {
      if (this.#feeds.get(key) === f) this.#feeds.delete(key);
    });
    this.#feeds.set(key, feed);
    feed.join(member);
    return feed;
  }

  get size(): number {
    return this.#feeds.size;
  }

  closeAll(): void {
    for (const feed of [...this.#feeds.values()]) feed.close();
  }
}

function feedKey(topic: string, partition: number, epoch: string): string {
  return `${topic}\u0000${partition}\u0000${epoch}`;
}
