import { TokenBucket } from "./token-bucket.ts";

/**
 * Token buckets by key (an IP address, an identity), bounded in memory: at most
 * `maxEntries` buckets, least recently used first out. Dropping a full bucket changes
 * nothing (a new one starts full), so the table first sweeps full buckets; only under a
 * flood of distinct keys does it drop a partly used one (that key then gets a fresh burst).
 */
export class BucketTable {
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxEntries: number;
  /** Map order = recency (re-inserted on use). */
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(rate: number, burst: number, maxEntries: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes `n` tokens from `key`'s bucket: 0 when taken, else ms until they would be there. */
  take(key: string, n: number, now: number): number {
    let bucket = this.#buckets.get(key);
    if (bucket) this.#buckets.delete(key);
    else {
      if (this.#buckets.size >= this.#maxEntries) this.#evict(now);
      bucket = new TokenBucket(this.#rate, this.#burst, now);
    }
    this.#buckets.set(key, bucket);
    return bucket.take(n, now);
  }

  #evict(now: number): void {
    for (const [key, bucket] of this.#buckets) if (bucket.full(now)) this.#buckets.delete(key);
    // Still full of partly used buckets: drop the least recently used tenth.
    let drop = this.#buckets.size - this.#maxEntries + Math.ceil(this.#maxEntries / 10);
    for (const key of this.#buckets.keys()) {
      if (drop-- <= 0) break;
      this.#buckets.delete(key);
    }
  }
}
