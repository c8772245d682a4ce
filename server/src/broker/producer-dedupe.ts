import { TributaryError } from "../errors.ts";

/**
 * Remembers recent (producer id, sequence) → result, so a producer that retries after a
 * lost ack gets the first write's result instead of writing twice (the SDK's offline
 * queue relies on this). Bounded: at most `windowPerProducer` sequences per producer and
 * `maxProducers` producers (least recently used evicted). In memory: a node restart
 * forgets it (documented in docs/semantics.md).
 */
export class ProducerDedupe<T> {
  readonly #producers = new Map<string, Map<number, Promise<T>>>();

  constructor(
    readonly windowPerProducer = 1024,
    readonly maxProducers = 10_000,
  ) {}

  /** Runs `write` once per (producerId, sequence); a repeat gets the same promise. */
  run(producerId: string, sequence: number, write: () => Promise<T>): Promise<T> {
    if (!Number.isSafeInteger(sequence) || sequence < 0) {
      return Promise.reject(new TributaryError("BAD_REQUEST", `sequence must be a non-negative integer, got ${sequence}`));
    }
    let seen = this.#producers.get(producerId);
    if (seen) {
      this.#producers.delete(producerId); // re-insert: most recently used last
      this.#producers.set(producerId, seen);
      const hit = seen.get(sequence);
      if (hit) return hit;
    } else {
      seen = new Map();
      this.#producers.set(producerId, seen);
      if (this.#producers.size > this.maxProducers) {
        const oldest = this.#producers.keys().next().value as string;
        this.#producers.delete(oldest);
      }
    }
    const result = write();
    seen.set(sequence, result);
    // A failed write may be retried for real: forget it.
    result.catch(() => {
      if (seen.get(sequence) === result) seen.delete(sequence);
    });
    if (seen.size > this.windowPerProducer) {
      const oldest = seen.keys().next().value as number;
      seen.delete(oldest);
    }
    return result;
  }
}
