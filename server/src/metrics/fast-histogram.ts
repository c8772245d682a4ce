import type { Histogram } from "prom-client";

/** A prom-client histogram's per-label-set state (prom-client 15: `histogram.hashMap` values). */
interface LabelSetState {
  labels: Record<string, string | number>;
  sum: number;
  count: number;
  bucketValues: Record<number, number>;
}

/**
 * Observations of one label set of a prom-client Histogram for a hot path: `observe` adds
 * to three plain numbers and a typed array (prom-client's own `labels().observe` builds a
 * label object, validates and hashes it on every call), and the histogram's `collect`
 * hook (`fold`, at scrape time) adds what was observed since to the histogram's state, so
 * the exposition is the one prom-client would have written for the same observations
 * (fast-histogram.test.ts compares the two).
 */
export class FastHistogramChild {
  readonly #histogram: Histogram<string>;
  readonly #labels: Record<string, string>;
  readonly #bounds: Float64Array;
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(histogram: Histogram<string>, buckets: readonly number[], labels: Record<string, string>) {
    this.#histogram = histogram;
    this.#labels = labels;
    this.#bounds = Float64Array.from(buckets);
    this.#counts = new Float64Array(buckets.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return; // prom-client would throw; a timing never is
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) this.#counts[i]! += 1; // above the last bound: only +Inf (count) has it
    this.#sum += value;
    this.#count++;
  }

  /** Adds what was observed since the last fold to the histogram (its `collect` hook calls this). */
  fold(): void {
    if (this.#count === 0) return;
    const state = this.#state();
    state.sum += this.#sum;
    state.count += this.#count;
    for (let i = 0; i < this.#bounds.length; i++) {
      const bound = this.#bounds[i]!;
      state.bucketValues[bound] = (state.bucketValues[bound] ?? 0) + this.#counts[i]!;
      this.#counts[i] = 0;
    }
    this.#sum = 0;
    this.#count = 0;
  }

  /** The histogram's state for our labels, created (at zero) if it has none (first fold, or after a reset). */
  #state(): LabelSetState {
    const find = () => Object.values((this.#histogram as unknown as { hashMap: Record<string, LabelSetState> }).hashMap).find((s) => sameLabels(s.labels, this.#labels));
    let state = find();
    if (!state) {
      this.#histogram.zero(this.#labels);
      state = find();
    }
    if (!state) throw new Error(`prom-client histogram has no state for ${JSON.stringify(this.#labels)} after zero(): its internals changed`);
    return state;
  }
}

/** Children of `histogram` for hot paths, one per label set, folded together by `fold()`. */
export class FastHistogram<L extends string> {
  readonly #histogram: Histogram<L>;
  readonly #buckets: readonly number[];
  readonly #children = new Map<string, FastHistogramChild>();

  constructor(histogram: Histogram<L>, buckets: readonly number[]) {
    this.#histogram = histogram;
    this.#buckets = buckets;
  }

  labels(labels: Record<L, string>): FastHistogramChild {
    const key = JSON.stringify(Object.entries(labels).sort());
    let child = this.#children.get(key);
    if (!child) this.#children.set(key, (child = new FastHistogramChild(this.#histogram as unknown as Histogram<string>, this.#buckets, labels)));
    return child;
  }

  /** For the histogram's `collect` option. */
  fold(): void {
    for (const child of this.#children.values()) child.fold();
  }
}

function sameLabels(a: Record<string, string | number>, b: Record<string, string>): boolean {
  const keys = Object.keys(b);
  if (Object.keys(a).length !== keys.length) return false;
  for (const k of keys) if (String(a[k]) !== b[k]) return false;
  return true;
}
