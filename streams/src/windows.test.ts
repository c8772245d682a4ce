import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hopping, isClosed, tumbling, windowsFor } from "./windows.ts";

describe("windows", () => {
  it("tumbling: every timestamp falls in exactly one window, aligned to the size", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 0, max: 2 ** 40 }), (size, ts) => {
        const ws = windowsFor(tumbling(size), ts);
        expect(ws).toHaveLength(1);
        expect(ws[0]!.start % size).toBe(0);
        expect(ws[0]!.start <= ts && ts < ws[0]!.end).toBe(true);
      }),
    );
  });

  it("hopping: the windows are exactly those [k·advance, k·advance + size) containing the timestamp, oldest first", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 100_000 }), (a, b, ts) => {
        const size = Math.max(a, b);
        const advance = Math.min(a, b);
        const oracle: number[] = [];
        for (let start = 0; start <= ts; start += advance) if (ts < start + size) oracle.push(start);
        expect(windowsFor(hopping(size, advance), ts).map((w) => w.start)).toEqual(oracle);
      }),
    );
  });

  it("a window closes once the stream time reaches end + grace", () => {
    const w = tumbling(60_000, { grace: 10_000 });
    expect(isClosed(w, 60_000, 69_999)).toBe(false);
    expect(isClosed(w, 60_000, 70_000)).toBe(true);
  });

  it("rejects bad sizes, an advance above the size and a negative grace", () => {
    expect(() => tumbling(0)).toThrow(/size/);
    expect(() => hopping(10, 20)).toThrow(/advance/);
    expect(() => tumbling(10, { grace: -1 })).toThrow(/grace/);
  });
});
