/**
 * A bounded map from a topic (or filter, or group) to an allow/deny decision, one per
 * identity and kind of question. Bounded in entries and in key characters; full, it
 * drops its oldest entries first (insertion order: a hit does not reorder, so a lookup
 * never writes). Keys longer than `maxKeyChars / 4` are not cached at all.
 */
export interface DecisionCacheLimits {
  /** Most decisions kept (default 256). */
  maxEntries: number;
  /** Most key characters kept in total (default 8192: about 16 KiB of strings). */
  maxKeyChars: number;
}

export const DEFAULT_DECISION_CACHE_LIMITS: DecisionCacheLimits = { maxEntries: 256, maxKeyChars: 8192 };

export class DecisionCache {
  readonly #map = new Map<string, boolean>();
  readonly #limits: DecisionCacheLimits;
  #chars = 0;

  constructor(limits: DecisionCacheLimits = DEFAULT_DECISION_CACHE_LIMITS) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#map.size;
  }

  /** Characters of the keys held. */
  get keyChars(): number {
    return this.#chars;
  }

  get(key: string): boolean | undefined {
    return this.#map.get(key);
  }

  set(key: string, allowed: boolean): void {
    if (key.length > this.#limits.maxKeyChars / 4 || this.#map.has(key)) return;
    while (this.#map.size > 0 && (this.#map.size >= this.#limits.maxEntries || this.#chars + key.length > this.#limits.maxKeyChars)) {
      const oldest = this.#map.keys().next().value as string;
      this.#map.delete(oldest);
      this.#chars -= oldest.length;
    }
    this.#map.set(key, allowed);
    this.#chars += key.length;
  }

  clear(): void {
    this.#map.clear();
    this.#chars = 0;
  }
}
