import fc from "fast-check";
import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { FastHistogram } from "./fast-histogram.ts";

const BUCKETS = [0.001, 0.01, 0.1, 1];

/** A histogram observed through FastHistogram, and the same observed through prom-client itself. */
function pair() {
  const fastRegistry = new Registry();
  const plainRegistry = new Registry();
  const config = { name: "t_seconds", help: "h", labelNames: ["kind"] as const, buckets: BUCKETS };
  // `fast` is assigned right below; the collect hook runs only at scrape time.
  let fast: FastHistogram<"kind"> | undefined;
  const fastHistogram = new Histogram({ ...config, registers: [fastRegistry], collect: () => fast!.fold() });
  fast = new FastHistogram(fastHistogram, BUCKETS);
  const plain = new Histogram({ ...config, registers: [plainRegistry] });
  return { fast, plain, fastHistogram, text: async () => [await fastRegistry.metrics(), await plainRegistry.metrics()] as const };
}

/** Exposition texts equal, except `_sum` values, which may differ in the last digits (summed in another order). */
function expectSameExposition(a: string, b: string): void {
  const split = (text: string) => text.split("\n").map((line) => /^(\S+_sum\S*) (\S+)$/.exec(line));
  const [la, lb] = [a.split("\n"), b.split("\n")];
  expect(la.length).toBe(lb.length);
  const [sa, sb] = [split(a), split(b)];
  for (let i = 0; i < la.length; i++) {
    if (sa[i] && sb[i]) {
      expect(sa[i]![1]).toBe(sb[i]![1]);
      expect(Number(sa[i]![2])).toBeCloseTo(Number(sb[i]![2]), 9);
    } else expect(la[i]).toBe(lb[i]);
  }
}

describe("FastHistogram", () => {
  it("exposes what prom-client exposes for the same observations, across scrapes (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.tuple(fc.constantFrom("a", "b"), fc.oneof(fc.double({ min: 0, max: 3, noNaN: true }), fc.constantFrom(...BUCKETS, 0, 5))), { maxLength: 30 }), { minLength: 1, maxLength: 4 }),
        async (scrapes) => {
          const { fast, plain, text } = pair();
          for (const observations of scrapes) {
            for (const [kind, value] of observations) {
              fast.labels({ kind }).observe(value);
              plain.labels({ kind }).observe(value);
            }
            const [a, b] = await text();
            expectSameExposition(a, b);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("keeps zeroed label sets and survives a reset", async () => {
    const { fast, plain, fastHistogram, text } = pair();
    fastHistogram.zero({ kind: "a" });
    plain.zero({ kind: "a" });
    let [a, b] = await text();
    expectSameExposition(a, b);
    fast.labels({ kind: "a" }).observe(0.5);
    plain.labels({ kind: "a" }).observe(0.5);
    [a, b] = await text();
    expectSameExposition(a, b);
    fastHistogram.reset();
    fast.labels({ kind: "a" }).observe(0.05);
    plain.reset();
    plain.labels({ kind: "a" }).observe(0.05);
    [a, b] = await text();
    expectSameExposition(a, b);
    expect(a).toContain('t_seconds_bucket{le="0.1",kind="a"} 1');
  });
});
