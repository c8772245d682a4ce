import type { AppendNotifier } from "../tail-loop.ts";
import type { RedisClient } from "../../redis/redis-connection.ts";

interface Watched {
  topic: string;
  partition: number;
  refs: number;
}

/**
 * ONE notification subscription per partition per engine, shared by all tails of it.
 *
 * The append script SPUBLISHes the new end offset on the partition's shard channel (same hash
 * tag as the stream, so in Redis Cluster the message stays on the partition's shard). The
 * watcher subscribes to the channels of the partitions that have at least one tail and wakes
 * their tails through the AppendNotifier; the tails then read with XRANGE.
 *
 * Pub/sub is fire-and-forget, so two safety nets keep a tail from stalling: every tail is
 * woken when the subscriber (re)connects, and every watched partition is woken every
 * `pollMs` (a wake with nothing new costs one small read).
 */
export class PartitionWatcher {
  readonly #subscriber: RedisClient;
  readonly #notifier: AppendNotifier;
  readonly #watched = new Map<string, Watched>();
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(subscriber: RedisClient, notifier: AppendNotifier, pollMs: number) {
    this.#subscriber = subscriber;
    this.#notifier = notifier;
    subscriber.on("smessage", (channel: string) => {
      const w = this.#watched.get(channel);
      if (w) notifier.notify(w.topic, w.partition);
    });
    subscriber.on("ready", () => this.wakeAll());
    this.#timer = setInterval(() => this.wakeAll(), pollMs);
    this.#timer.unref();
  }

  /** Starts watching a partition (subscribing on first use); returns the release function. */
  acquire(channel: string, topic: string, partition: number): () => void {
    let w = this.#watched.get(channel);
    if (!w) {
      w = { topic, partition, refs: 0 };
      this.#watched.set(channel, w);
      // Errors are covered by the periodic wake; a tail never depends on one message.
      this.#subscriber.ssubscribe(channel).catch(() => {});
    }
    w.refs++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const cur = this.#watched.get(channel);
      if (!cur) return;
      cur.refs--;
      if (cur.refs === 0) {
        this.#watched.delete(channel);
        if (!this.#closed) this.#subscriber.sunsubscribe(channel).catch(() => {});
      }
    };
  }

  wakeAll(): void {
    for (const w of this.#watched.values()) this.#notifier.notify(w.topic, w.partition);
  }

  get size(): number {
    return this.#watched.size;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#watched.clear();
  }
}
