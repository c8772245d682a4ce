import type { AppendNotifier } from "../tail-loop.ts";
import type { RedisClient } from "../../redis/redis-connection.ts";
import type { FailureSeries, RedisErrorReporter } from "../../redis/redis-error-reporter.ts";

interface Watched {
  topic: string;
  partition: number;
  refs: number;
  /** False while the SSUBSCRIBE failed: retried at the next periodic wake. */
  subscribed: boolean;
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
 *
 * A failed SSUBSCRIBE is logged and counted (task `redis-partition-watch`) and retried at every
 * periodic wake until it succeeds; meanwhile the partition's tails see new records up to
 * `pollMs` late, never lose them.
 */
export class PartitionWatcher {
  readonly #subscriber: RedisClient;
  readonly #notifier: AppendNotifier;
  readonly #watched = new Map<string, Watched>();
  readonly #timer: NodeJS.Timeout;
  readonly #reporter: RedisErrorReporter;
  readonly #subscribeFailures: FailureSeries;
  #closed = false;

  constructor(subscriber: RedisClient, notifier: AppendNotifier, pollMs: number, reporter: RedisErrorReporter) {
    this.#subscriber = subscriber;
    this.#notifier = notifier;
    this.#reporter = reporter;
    this.#subscribeFailures = reporter.series("redis-partition-watch", "redis.partition_watch_failed", "redis.partition_watch_recovered", { component: "log-engine" });
    subscriber.on("smessage", (channel: string) => {
      const w = this.#watched.get(channel);
      if (w) notifier.notify(w.topic, w.partition);
    });
    subscriber.on("ready", () => this.wakeAll());
    this.#timer = setInterval(() => {
      this.#resubscribeFailed();
      this.wakeAll();
    }, pollMs);
    this.#timer.unref();
  }

  /** Starts watching a partition (subscribing on first use); returns the release function. */
  acquire(channel: string, topic: string, partition: number): () => void {
    let w = this.#watched.get(channel);
    if (!w) {
      w = { topic, partition, refs: 0, subscribed: true };
      this.#watched.set(channel, w);
      this.#subscribe(channel, w);
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
        if (!this.#closed) {
          // Left subscribed on failure: its notifications find no watched partition and are
          // ignored; a later acquire of the partition subscribes again (idempotent).
          this.#subscriber.sunsubscribe(channel).catch((err: unknown) => {
            if (!this.#closed) this.#reporter.report("redis-partition-watch", "redis.partition_unwatch_failed", err, { component: "log-engine", channel, topic, partition });
          });
        }
      }
    };
  }

  #subscribe(channel: string, w: Watched): void {
    w.subscribed = true;
    this.#subscriber.ssubscribe(channel).then(
      () => this.#subscribeFailures.recovered(),
      (err: unknown) => {
        if (this.#closed || this.#watched.get(channel) !== w) return; // released meanwhile
        w.subscribed = false; // the periodic wake covers the partition and retries
        this.#subscribeFailures.failed(err, { channel, topic: w.topic, partition: w.partition });
      },
    );
  }

  #resubscribeFailed(): void {
    for (const [channel, w] of this.#watched) if (!w.subscribed) this.#subscribe(channel, w);
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
