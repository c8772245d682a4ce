import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { alternatingPairs, pairedRatio } from "./pace.ts";

describe("alternatingPairs", () => {
  it("measures one warm-up of each side, then pairs in alternating order", async () => {
    const order: number[] = [];
    let t = 0;
    const [a, b] = await alternatingPairs(async (side) => (order.push(side), side * 1000 + t++), 3);
    expect(order).toEqual([0, 1, 0, 1, 1, 0, 0, 1]);
    expect(a).toEqual([2, 5, 6]);
    expect(b).toEqual([1003, 1004, 1007]);
  });
});

describe("pairedRatio", () => {
  it("is the ratio of the means, with the median of the per-pair ratios beside it", () => {
    const r = pairedRatio([90, 100, 200], [100, 100, 100]);
    expect(r.ratio).toBeCloseTo(390 / 300, 12);
    expect(r.median).toBe(1);
  });

  it("has an interval that holds the ratio and is a point when every pair has the same ratio", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.double({ min: 1, max: 1e6, noNaN: true }), fc.double({ min: 1, max: 1e6, noNaN: true })), { minLength: 1, maxLength: 40 }), (pairs) => {
        const r = pairedRatio(pairs.map((p) => p[0]), pairs.map((p) => p[1]));
        expect(r.low).toBeLessThanOrEqual(r.high);
        // Every resample's ratio lies between the smallest and the largest per-pair ratio.
        const perPair = pairs.map(([x, y]) => x / y);
        expect(r.low).toBeGreaterThanOrEqual(Math.min(...perPair) * (1 - 1e-12));
        expect(r.high).toBeLessThanOrEqual(Math.max(...perPair) * (1 + 1e-12));
        const same = pairedRatio(pairs.map((p) => p[1] * 0.97), pairs.map((p) => p[1]));
        expect(same.low).toBeCloseTo(0.97, 12);
        expect(same.high).toBeCloseTo(0.97, 12);
      }),
    );
  });

  it("narrows as pairs are added", () => {
    // Per-pair ratios spread 90%–110% around 100%: 10 pairs leave a wider interval than 200.
    const noisy = (n: number) => Array.from({ length: n }, (_, i) => 100 * (0.9 + (0.2 * ((i * 7) % 11)) / 10));
    const width = (n: number) => {
      const r = pairedRatio(noisy(n), Array.from({ length: n }, () => 100));
      return r.high - r.low;
    };
    expect(width(200)).toBeLessThan(width(10) / 2);
  });

  it("resamples whole rounds: a round whose pairs all lean one way widens the interval", () => {
    // Two rounds of 20 pairs: one at 90%, one at 110% (a per-process bias), every pair alike within its round.
    const a = [...Array.from({ length: 20 }, () => 90), ...Array.from({ length: 20 }, () => 110)];
    const b = Array.from({ length: 40 }, () => 100);
    const pooled = pairedRatio(a, b);
    const byRound = pairedRatio(a, b, 2);
    expect(byRound.ratio).toBeCloseTo(pooled.ratio, 12);
    expect(byRound.high - byRound.low).toBeGreaterThan(2 * (pooled.high - pooled.low));
    expect(byRound.low).toBeCloseTo(0.9, 12); // both rounds drawn as the 90% one: 1 time in 4
  });

  it("refuses pairs that do not split into the rounds", () => {
    expect(() => pairedRatio([1, 2, 3], [1, 2, 3], 2)).toThrow(/do not split/);
  });

  it("refuses lists that are not pairs", () => {
    expect(() => pairedRatio([1, 2], [1])).toThrow(/needs pairs/);
    expect(() => pairedRatio([], [])).toThrow(/needs pairs/);
  });
});
