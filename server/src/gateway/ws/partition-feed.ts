import type { Broker } from "../../broker/broker.ts";
import type { LogRecord, Tail } from "../../log/log-engine.ts";
import type { Logger } from "../../logger.ts";
import { PreparedMessage } from "./prepared-message.ts";

/** A subscriber of a feed: takes a batch, or leaves (returns false) to continue on its own tail. */
export interface FeedMember {
  /** Next offset this member must receive. */
  readonly nextOffset: number;
  /** Delivers what it can of `batch` (skipping offsets below `nextOffset`); false = it left the feed. */
  takeFromFeed(batch: PreparedMessage[]): boolean;
  /** The feed's tail failed; the member handles it like its own tail's error. */
  feedFailed(err: Error): void;
}

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
 */
export class PartitionFeed {
  readonly topic: string;
  readonly partition: number;
  readonly epoch: string;
  /** Next offset the feed will deliver. */
  position: number;
  readonly #members = new Set<FeedMember>();
  readonly #tail: Tail;
  readonly #onEmpty: (feed: PartitionFeed) => void;
  #closed = false;

  constructor(broker: Broker, topic: string, partition: number, epoch: string, from: number, onEmpty: (feed: PartitionFeed) => void) {
    this.topic = topic;
    this.partition = partition;
    this.epoch = epoch;
    this.position = from;
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
    if (this.#members.size === 0) this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#tail.close();
    this.#members.clear();
    this.#onEmpty(this);
  }

  #onRecords(records: LogRecord[]): Promise<void> | void {
    if (this.#closed || records.length === 0) return;
    const batch = records.map((r) => new PreparedMessage(this.topic, this.partition, r));
    this.position = records[records.length - 1]!.offset + 1;
    for (const member of [...this.#members]) {
      if (!member.takeFromFeed(batch)) this.leave(member);
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
  readonly #feeds = new Map<string, PartitionFeed>();
  readonly log: Logger;

  constructor(broker: Broker, log: Logger) {
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
