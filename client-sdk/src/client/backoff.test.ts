import { describe, expect, it } from "vitest";
import { backoff, backoffCeiling } from "./backoff.ts";

describe("full-jitter backoff", () => {
  it("stays within [0, min(max, min * 2^attempt)] for every attempt", () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(20_000, 500 * 2 ** attempt);
      expect(backoffCeiling(attempt, 500, 20_000)).toBe(ceiling);
      for (let i = 0; i < 200; i++) {
        const delay = backoff(attempt, 500, 20_000);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(ceiling);
        expect(Number.isInteger(delay)).toBe(true);
      }
    }
  });

  it("reaches both ends of the range (random 0 gives 0, random near 1 gives the ceiling)", () => {
    expect(backoff(3, 100, 10_000, () => 0)).toBe(0);
    expect(backoff(3, 100, 10_000, () => 0.999999999)).toBe(800);
    expect(backoff(30, 100, 10_000, () => 0.999999999)).toBe(10_000);
  });

  it("spreads delays over the range instead of clustering (full jitter)", () => {
    const delays = Array.from({ length: 2000 }, () => backoff(4, 100, 100_000));
    const ceiling = 1600;
    const low = delays.filter((d) => d < ceiling / 2).length;
    expect(low).toBeGreaterThan(800);
    expect(low).toBeLessThan(1200);
  });

  it("never overflows for huge attempt numbers", () => {
    expect(backoffCeiling(10_000, 500, 20_000)).toBe(20_000);
    expect(backoff(Number.MAX_SAFE_INTEGER, 500, 20_000)).toBeLessThanOrEqual(20_000);
  });
});
