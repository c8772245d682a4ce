import { describe, expect, it } from "vitest";
import { compareTp, tpKey, type TopicPartition } from "../types.ts";
import type { AssignmentInput, PartitionAssigner } from "./assigner.ts";
import { CooperativeStickyAssigner } from "./cooperative-sticky.ts";
import { RangeAssigner } from "./range.ts";
import { RoundRobinAssigner } from "./round-robin.ts";

const all: PartitionAssigner[] = [new RangeAssigner(), new RoundRobinAssigner(), new CooperativeStickyAssigner()];

function input(members: Array<[string, string[], TopicPartition[]?]>, partitions: Record<string, number>): AssignmentInput {
  return {
    members: members.map(([memberId, topics, owned]) => ({ memberId, topics, owned: owned ?? [] })).sort((a, b) => (a.memberId < b.memberId ? -1 : 1)),
    partitions: new Map(Object.entries(partitions)),
  };
}

function checkComplete(result: Map<string, TopicPartition[]>, inp: AssignmentInput): void {
  const seen = new Set<string>();
  for (const [memberId, tps] of result) {
    const member = inp.members.find((m) => m.memberId === memberId)!;
    for (const tp of tps) {
      expect(member.topics).toContain(tp.topic);
      expect(seen.has(tpKey(tp))).toBe(false);
      seen.add(tpKey(tp));
    }
  }
  let total = 0;
  for (const [topic, count] of inp.partitions) if (inp.members.some((m) => m.topics.includes(topic))) total += count;
  expect(seen.size).toBe(total);
}

describe("assignment strategies", () => {
  for (const assigner of all) {
    it(`${assigner.name}: 6 partitions over 3 members gives 2 each, every partition once`, () => {
      const inp = input([["a", ["t"]], ["b", ["t"]], ["c", ["t"]]], { t: 6 });
      const result = assigner.assign(inp);
      expect([...result.values()].map((l) => l.length)).toEqual([2, 2, 2]);
      checkComplete(result, inp);
    });

    it(`${assigner.name}: members only get partitions of topics they subscribe to`, () => {
      const inp = input([["a", ["t", "u"]], ["b", ["t"]], ["c", ["u"]]], { t: 4, u: 3 });
      const result = assigner.assign(inp);
      checkComplete(result, inp);
    });

    it(`${assigner.name}: more members than partitions leaves some members idle`, () => {
      const inp = input([["a", ["t"]], ["b", ["t"]], ["c", ["t"]]], { t: 2 });
      const result = assigner.assign(inp);
      expect([...result.values()].map((l) => l.length).sort()).toEqual([0, 1, 1]);
      checkComplete(result, inp);
    });
  }

  it("range gives contiguous ranges, the extra partition to the first member", () => {
    const result = new RangeAssigner().assign(input([["a", ["t"]], ["b", ["t"]]], { t: 5 }));
    expect(result.get("a")!.map((tp) => tp.partition)).toEqual([0, 1, 2]);
    expect(result.get("b")!.map((tp) => tp.partition)).toEqual([3, 4]);
  });

  it("round-robin deals partitions one by one across members", () => {
    const result = new RoundRobinAssigner().assign(input([["a", ["t"]], ["b", ["t"]]], { t: 4 }));
    expect(result.get("a")!.map((tp) => tp.partition)).toEqual([0, 2]);
    expect(result.get("b")!.map((tp) => tp.partition)).toEqual([1, 3]);
  });

  it("cooperative-sticky moves only what balance needs when a member joins", () => {
    const owned = (ps: number[]) => ps.map((partition) => ({ topic: "t", partition }));
    const result = new CooperativeStickyAssigner().assign(
      input([["a", ["t"], owned([0, 1, 2])], ["b", ["t"], owned([3, 4, 5])], ["c", ["t"]]], { t: 6 }),
    );
    const a = result.get("a")!.map((tp) => tp.partition);
    const b = result.get("b")!.map((tp) => tp.partition);
    expect(a.length).toBe(2);
    expect(b.length).toBe(2);
    expect(a.every((p) => [0, 1, 2].includes(p))).toBe(true);
    expect(b.every((p) => [3, 4, 5].includes(p))).toBe(true);
    expect(result.get("c")!.length).toBe(2);
  });

  it("cooperative-sticky keeps a surviving member's partitions when another leaves", () => {
    const owned = (ps: number[]) => ps.map((partition) => ({ topic: "t", partition }));
    const result = new CooperativeStickyAssigner().assign(input([["a", ["t"], owned([0, 3])], ["c", ["t"], owned([2, 5])]], { t: 6 }));
    expect(result.get("a")!.map((tp) => tp.partition)).toEqual(expect.arrayContaining([0, 3]));
    expect(result.get("c")!.map((tp) => tp.partition)).toEqual(expect.arrayContaining([2, 5]));
    expect(result.get("a")!.length + result.get("c")!.length).toBe(6);
    expect([...result.values()].flat().sort(compareTp).map((tp) => tp.partition)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
