import { TributaryError } from "../../errors.ts";
import type { LogRecord, ReadOptions, Tail, TailHandler } from "../log-engine.ts";
import { startTailLoop, type TailSource } from "../tail-loop.ts";
import type { PartitionWatcher } from "./partition-watcher.ts";
import type { RedisEngineCore } from "./redis-engine-core.ts";

/** The engine's reads a tail runs on. */
export interface RedisTailReads {
  /** Current epoch of the partition. */
  epoch(topic: string, partition: number): Promise<string>;
  /** Reads; with `expectedEpoch`, a changed epoch fails STALE_EPOCH. */
  read(topic: string, partition: number, offset: number, options: ReadOptions, expectedEpoch: string | null): Promise<LogRecord[]>;
}

/**
 * Tail wiring of `RedisLogEngine` (internal to it): subscribes the partition's notify channel
 * through the watcher for as long as the tail runs, pins the epoch read at start (a changed
 * history ends the tail with STALE_EPOCH) and keeps waiting while Redis is unreachable.
 */
export function startRedisTail(
  core: RedisEngineCore,
  watcher: PartitionWatcher,
  reads: RedisTailReads,
  topic: string,
  partition: number,
  fromOffset: number,
  handler: TailHandler,
): Tail {
  const release = watcher.acquire(core.keys.notifyChannel(topic, partition), topic, partition);
  let tailEpoch: string | null = null;
  const source: TailSource = {
    epoch: async () => {
      tailEpoch = await reads.epoch(topic, partition);
      return tailEpoch;
    },
    read: async (t, p, offset, options) => reads.read(t, p, offset, options ?? {}, tailEpoch),
  };
  // While Redis is unreachable (restart, failover) the tail waits and reads on from its
  // position; only a closed engine or a real error (STALE_EPOCH, UNKNOWN_TOPIC...) ends it.
  const retry = { isTransient: (err: unknown) => !core.closed && err instanceof TributaryError && (err.code === "UNAVAILABLE" || err.code === "TIMEOUT") };
  const inner = startTailLoop(source, core.notifier, topic, partition, fromOffset, {
    onRecords: (records, where) => handler.onRecords(records, where),
    onCaughtUp: handler.onCaughtUp && ((next, where) => handler.onCaughtUp!(next, where)),
    onError: (err) => {
      release();
      handler.onError(err);
    },
  }, undefined, retry);
  return {
    close() {
      inner.close();
      release();
    },
  };
}
