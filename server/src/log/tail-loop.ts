import type { LogRecord, ReadOptions, Tail, TailHandler } from "./log-engine.ts";

/**
 * Wakes tails when a partition gets new records. Engines call `notify` after an append
 * becomes readable; tails `listen` for their partition.
 */
export class AppendNotifier {
  readonly #listeners = new Map<string, Set<() => void>>();

  listen(topic: string, partition: number, fn: () => void): () => void {
    const key = `${topic}\u0000${partition}`;
    let set = this.#listeners.get(key);
    if (!set) this.#listeners.set(key, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.#listeners.delete(key);
    };
  }

  notify(topic: string, partition: number): void {
    const set = this.#listeners.get(`${topic}\u0000${partition}`);
    if (set) for (const fn of [...set]) fn();
  }

  /** Wakes every tail (used on close so loops can observe the closed engine). */
  notifyAll(): void {
    for (const set of [...this.#listeners.values()]) for (const fn of [...set]) fn();
  }
}

export interface TailSource {
  read(topic: string, partition: number, offset: number, options?: ReadOptions): Promise<LogRecord[]>;
  epoch(topic: string, partition: number): Promise<string>;
}

/**
 * A tail built from `read` plus append notifications: reads from `fromOffset`, hands each
 * batch to the handler (awaiting it: backpressure), and sleeps until the next append when
 * it reaches the end. No gap and no duplicate: the position only advances past records
 * the handler received. A notification that arrives while reading is never lost (dirty
 * flag checked before sleeping).
 */
export function startTailLoop(
  source: TailSource,
  notifier: AppendNotifier,
  topic: string,
  partition: number,
  fromOffset: number,
  handler: TailHandler,
  options: ReadOptions = { maxRecords: 1000, maxBytes: 1 << 20 },
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

  const run = async (): Promise<void> => {
    let position = fromOffset;
    const epoch = await source.epoch(topic, partition);
    const where = { topic, partition, epoch };
    while (!closed) {
      if (!dirty) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      dirty = false;
      const records = await source.read(topic, partition, position, options);
      if (closed) return;
      if (records.length === 0) continue;
      dirty = true; // there may be more right behind this batch
      await handler.onRecords(records, where);
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
