import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Fifo } from "./fifo.ts";

describe("Fifo", () => {
  it("behaves as an array used with push and shift, whatever the sequence", () => {
    const op = fc.oneof(fc.record({ push: fc.integer() }), fc.constant({ shift: true }), fc.record({ drop: fc.integer({ min: 2, max: 5 }) }), fc.constant({ clear: true }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
        const fifo = new Fifo<number>();
        let model: number[] = [];
        for (const o of ops) {
          if ("push" in o) {
            fifo.push(o.push);
            model.push(o.push);
          } else if ("shift" in o) expect(fifo.shift()).toBe(model.shift());
          else if ("drop" in o) {
            const drop = (n: number) => n % o.drop === 0;
            expect(fifo.removeWhere(drop)).toBe(model.filter(drop).length);
            model = model.filter((n) => !drop(n));
          } else {
            fifo.clear();
            model = [];
          }
          expect(fifo.length).toBe(model.length);
        }
        expect(fifo.some((n) => n === model[0])).toBe(model.length > 0);
        const rest: number[] = [];
        while (fifo.length > 0) rest.push(fifo.shift()!);
        expect(rest).toEqual(model);
      }),
      { numRuns: 200 },
    );
  });

  it("keeps shift O(1) for a long queue (compacts the consumed front)", () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 200_000; i++) fifo.push(i);
    for (let i = 0; i < 150_000; i++) expect(fifo.shift()).toBe(i);
    expect(fifo.length).toBe(50_000);
    fifo.push(-1);
    expect(fifo.shift()).toBe(150_000);
  });
});
