import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LazyMap, LazySet } from "./lazy-collections.ts";

type Op = { op: "set" | "delete" | "get" | "has"; key: number; value: string } | { op: "clear" };

const ops = fc.array(
  fc.oneof(
    fc.record({ op: fc.constantFrom("set" as const, "delete" as const, "get" as const, "has" as const), key: fc.integer({ min: 0, max: 5 }), value: fc.string() }),
    fc.constant({ op: "clear" as const }),
  ),
  { maxLength: 60 },
);

describe("LazyMap and LazySet behave as Map and Set", () => {
  it("LazyMap: any sequence of operations gives the same answers and contents as a Map", () => {
    fc.assert(
      fc.property(ops, (sequence: Op[]) => {
        const lazy = new LazyMap<number, string>();
        const real = new Map<number, string>();
        for (const o of sequence) {
          if (o.op === "clear") {
            lazy.clear();
            real.clear();
          } else if (o.op === "set") expect(lazy.set(o.key, o.value)).toBe(lazy), real.set(o.key, o.value);
          else expect(lazy[o.op](o.key)).toEqual(real[o.op](o.key));
          expect(lazy.size).toBe(real.size);
          expect([...lazy]).toEqual([...real]);
          expect([...lazy.keys()]).toEqual([...real.keys()]);
          expect([...lazy.values()]).toEqual([...real.values()]);
        }
        const seen: Array<[number, string]> = [];
        lazy.forEach((v, k, m) => {
          expect(m).toBe(lazy);
          seen.push([k, v]);
        });
        expect(seen).toEqual([...real.entries()]);
      }),
    );
  });

  it("LazySet: any sequence of operations gives the same answers and contents as a Set", () => {
    fc.assert(
      fc.property(ops, (sequence: Op[]) => {
        const lazy = new LazySet<number>();
        const real = new Set<number>();
        for (const o of sequence) {
          if (o.op === "clear") {
            lazy.clear();
            real.clear();
          } else if (o.op === "set") lazy.add(o.key), real.add(o.key);
          else if (o.op === "get") expect([...lazy.entries()]).toEqual([...real.entries()]);
          else expect(lazy[o.op](o.key)).toBe(real[o.op](o.key));
          expect(lazy.size).toBe(real.size);
          expect([...lazy]).toEqual([...real]);
        }
      }),
    );
  });

  it("clear ends an iteration in progress, as Map.clear does", () => {
    const lazy = new LazyMap<number, number>();
    for (let i = 0; i < 5; i++) lazy.set(i, i);
    const visited: number[] = [];
    for (const [k] of lazy) {
      visited.push(k);
      if (k === 1) lazy.clear();
    }
    expect(visited).toEqual([0, 1]);
  });
});
