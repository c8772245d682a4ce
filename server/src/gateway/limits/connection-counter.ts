/**
 * Open connections by key (IP address, identity), for the per-key connection limits.
 *
 * A count is the number of live leases of a key. A lease is released explicitly
 * (`release()`, idempotent) or found dead through its `alive()` probe: a gateway whose close
 * path cannot call back (or forgets to) never leaks a slot, because every `tryAcquire` of a
 * key first drops its dead leases, and the first `tryAcquire` after `sweepMs` sweeps every
 * key (no timer: nothing to close). Memory is therefore bounded by the open connections
 * plus those closed since the last sweep.
 */
export interface ConnectionLease {
  release(): void;
}

interface Entry {
  alive: () => boolean;
  released: boolean;
}

export class ConnectionCounter {
  readonly #byKey = new Map<string, Set<Entry>>();
  readonly #sweepMs: number;
  #sweptAt = Date.now();

  constructor(sweepMs = 10_000) {
    this.#sweepMs = sweepMs;
  }

  /** A lease for one more connection of `key`, or null when `max` are already open. */
  tryAcquire(key: string, max: number, alive: () => boolean): ConnectionLease | null {
    const now = Date.now();
    if (now - this.#sweptAt >= this.#sweepMs) {
      this.#sweptAt = now;
      this.sweep();
    }
    let set = this.#byKey.get(key);
    if (set) prune(set);
    if (set && set.size >= max) return null;
    if (!set) this.#byKey.set(key, (set = new Set()));
    const entry: Entry = { alive, released: false };
    set.add(entry);
    const owner = set;
    return {
      release: () => {
        if (entry.released) return;
        entry.released = true;
        owner.delete(entry);
        if (owner.size === 0 && this.#byKey.get(key) === owner) this.#byKey.delete(key);
      },
    };
  }

  /** Live connections of `key`. */
  count(key: string): number {
    const set = this.#byKey.get(key);
    if (!set) return 0;
    prune(set);
    return set.size;
  }

  /** Keys with at least one lease (for tests of the memory bound). */
  get keys(): number {
    return this.#byKey.size;
  }

  sweep(): void {
    for (const [key, set] of this.#byKey) {
      prune(set);
      if (set.size === 0) this.#byKey.delete(key);
    }
  }
}

function prune(set: Set<Entry>): void {
  for (const entry of set) {
    if (!entry.alive()) {
      entry.released = true;
      set.delete(entry);
    }
  }
}
