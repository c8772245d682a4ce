import { TributaryError } from "../errors.ts";
import type { LogRecord, ReadOptions, Tail, TailHandler } from "./log-engine.ts";

/**
 * Wakes tails when a partition gets new records. Engines call `notify` after an append
 * becomes readable; tails `listen` for their partition.
 */
export class AppendNotifier {
  /** Per topic, per partition: the listeners (no key string built per append). */
  readonly #listeners = new Map<string, Set<() => void>[]>();

  listen(topic: string, partition: number, fn: () => void): () => void {
    let byPartition = this.#listeners.get(topic);
    if (!byPartition) this.#listeners.set(topic, (byPartition = []));
    const set = (byPartition[partition] ??= new Set());
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size > 0 || byPartition[partition] !== set) return;
      delete byPartition[partition];
      if (!byPartition.some((s) => s !== undefined) && this.#listeners.get(topic) === byPartition) this.#listeners.delete(topic);
    };
  }

  notify(topic: string, partition: number): void {
    const set = this.#listeners.get(topic)?.[partition];
    if (set === undefined) return;
    // A copy, so a listener that adds or removes listeners does not change this round (one listener: no array made).
    if (set.size === 1) {
      let only: (() => void) | undefined;
      for (const fn of set) only = fn;
      only!();
    } else for (const fn of [...set]) fn();
  }

  /** Wakes every tail (used on close so loops can observe the closed engine). */
  notifyAll(): void {
    for (const byPartition of [...this.#listeners.values()]) for (const set of byPartition) if (set) for (const fn of [...set]) fn();
  }
}

/** Which tail errors are transient (the loop then retries from the same position), and how long to wait. */
export interface TailRetry {
  /** True when `err` is transient and the tail should keep going (e.g. storage briefly unreachable). */
  isTransient(err: unknown): boolean;
  /** First delay (default 50 ms), doubled up to `maxDelayMs` (default 1000 ms) while errors last. */
  minDelayMs?: number;
  maxDelayMs?: number;
}

export interface TailSource {
  read(topic: string, partition: number, offset: number, options?: ReadOptions): Promise<LogRecord[]>;
  /**
   * The same read, synchronous, for an engine whose reads never wait (the file engine):
   * the loop then reads without a promise per batch. Only used by tails without `retry`.
   */
  readNow?(topic: string, partition: number, offset: number, options?: ReadOptions): LogRecord[];
  epoch(topic: string, partition: number): Promise<string>;
  /**
   * The partition's current epoch, synchronously, for engines that know it locally (file):
   * the loop checks it after each synchronous read, so a topic deleted and re-created under
   * a running tail ends it with STALE_EPOCH instead of reading the new history at old offsets.
   */
  epochNow?(topic: string, partition: number): string;
}

/**
 * A tail built from `read` plus append notifications: reads from `fromOffset`, hands each
 * batch to the handler (awaiting it: backpressure), and sleeps until the next append when
 * it reaches the end. No gap and no duplicate: the position only advances past records
 * the handler received. A notification that arrives while reading is never lost (dirty
 * flag checked before sleeping). With `retry`, transient errors (storage unreachable) do
 * not end the tail: it waits with capped exponential backoff and reads again from the same
 * position (an error that is not transient still ends it through `onError`).
 */
export function startTailLoop(
  source: TailSource,
  notifier: AppendNotifier,
  topic: string,
  partition: number,
  fromOffset: number,
  handler: TailHandler,
  options: ReadOptions = { maxRecords: 1000, maxBytes: 1 << 20 },
  retry?: TailRetry,
): Tail {
  let closed = false;
  let dirty = true;
  let wake: (() => void) | null = null;
  const unlisten = notifier.listen(topic, partition, () => {
    dirty = true;
    const w = wake;
    wake = null;
    w?.();
  });

  let delay = retry?.minDelayMs ?? 50;
  /** Runs `fn`; a transient error (per `retry`) is retried after a backoff until it succeeds or the tail closes. */
  const attempt = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    for (;;) {
      try {
        const result = await fn();
        delay = retry?.minDelayMs ?? 50;
        return result;
      } catch (err) {
        if (closed || !retry?.isTransient(err)) throw err;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
        delay = Math.min(delay * 2, retry.maxDelayMs ?? 1000);
        if (closed) return undefined;
      }
    }
  };

  const run = async (): Promise<void> => {
    let position = fromOffset;
    const epoch = await attempt(() => source.epoch(topic, partition));
    if (epoch === undefined) return;
    const where = { topic, partition, epoch };
    const readNow = retry === undefined ? source.readNow : undefined;
    const sleep = (resolve: () => void) => (wake = resolve);
    let caughtUp = false;
    while (!closed) {
      if (!dirty) {
        await new Promise<void>(sleep);
        continue;
      }
      dirty = false;
      if (source.epochNow !== undefined) {
        const now = source.epochNow(topic, partition);
        if (now !== epoch) throw new TributaryError("STALE_EPOCH", `partition ${partition} of "${topic}" has a new history (epoch ${now}, was ${epoch})`, { topic, partition, epoch: now });
      }
      const records = readNow !== undefined ? readNow.call(source, topic, partition, position, options) : await attempt(() => source.read(topic, partition, position, options));
      if (closed || records === undefined) return;
      if (records.length === 0) {
        if (!caughtUp && handler.onCaughtUp) {
          caughtUp = true;
          handler.onCaughtUp(position, where);
        }
        continue;
      }
      caughtUp = false;
      dirty = true; // there may be more right behind this batch
      const handled = handler.onRecords(records, where);
      if (handled !== undefined) await handled;
      position = records[records.length - 1]!.offset + 1;
    }
  };

  run().catch((err: unknown) => {
    if (!closed) {
      closed = true;
      unlisten();
      handler.onError(err instanceof Error ? err : new Error(String(err)));
    }
  });

  return {
    close() {
      if (closed) return;
      closed = true;
      unlisten();
      const w = wake;
      wake = null;
      w?.();
    },
  };
}
