import { compareTp, tpKey, type TopicPartition } from "../types.ts";
import { emptyAssignment, sortedTopics, type AssignmentInput, type PartitionAssigner } from "./assigner.ts";

/**
 * `cooperative-sticky`: a balanced assignment that keeps every member's current partitions
 * where it can (Kafka's CooperativeStickyAssignor, KIP-429), used with the incremental
 * cooperative protocol: only the partitions that change owner are revoked.
 *
 * Algorithm (deterministic):
 * 1. Each member keeps the partitions it owns that still exist, that it still subscribes
 *    to, and that no earlier member (by memberId) already kept.
 * 2. Every other partition goes, in (topic, partition) order, to the eligible member with
 *    the fewest partitions (ties: memberId).
 * 3. While some member A has at least 2 more partitions than an eligible member B, one
 *    partition moves from A to B: the most loaded A first, partitions A did not own before
 *    the round first, then the highest (topic, partition). Every move strictly lowers the
 *    sum of squared loads, so this ends; with identical subscriptions the result has
 *    max - min <= 1 and moves only the partitions balance needs.
 */
export class CooperativeStickyAssigner implements PartitionAssigner {
  readonly name = "cooperative-sticky";
  readonly protocol = "cooperative" as const;

  assign(input: AssignmentInput): Map<string, TopicPartition[]> {
    const result = emptyAssignment(input);
    const taken = new Set<string>();
    const previouslyOwned = new Map<string, string>(); // tp → memberId
    const exists = (tp: TopicPartition) => tp.partition >= 0 && tp.partition < (input.partitions.get(tp.topic) ?? 0);

    // 1. stickiness
    for (const member of input.members) {
      const list = result.get(member.memberId)!;
      for (const tp of [...member.owned].sort(compareTp)) {
        const key = tpKey(tp);
        if (!previouslyOwned.has(key)) previouslyOwned.set(key, member.memberId);
        if (!exists(tp) || !member.topics.includes(tp.topic) || taken.has(key)) continue;
        taken.add(key);
        list.push({ topic: tp.topic, partition: tp.partition });
      }
    }

    // 2. the rest to the least loaded eligible member
    const eligible = (topic: string) => input.members.filter((m) => m.topics.includes(topic));
    const load = (memberId: string) => result.get(memberId)!.length;
    for (const topic of sortedTopics(input)) {
      const candidates = eligible(topic);
      if (candidates.length === 0) continue;
      const count = input.partitions.get(topic) ?? 0;
      for (let partition = 0; partition < count; partition++) {
        const key = tpKey({ topic, partition });
        if (taken.has(key)) continue;
        let best = candidates[0]!;
        for (const c of candidates) if (load(c.memberId) < load(best.memberId)) best = c;
        result.get(best.memberId)!.push({ topic, partition });
        taken.add(key);
      }
    }

    // 3. balance
    for (;;) {
      const byLoad = [...input.members].sort((a, b) => load(b.memberId) - load(a.memberId) || (a.memberId < b.memberId ? -1 : 1));
      let moved = false;
      for (const from of byLoad) {
        const list = result.get(from.memberId)!;
        const movable = [...list].sort((a, b) => {
          const aNew = previouslyOwned.get(tpKey(a)) === from.memberId ? 1 : 0;
          const bNew = previouslyOwned.get(tpKey(b)) === from.memberId ? 1 : 0;
          return aNew - bNew || compareTp(b, a);
        });
        for (const tp of movable) {
          let to: string | null = null;
          for (const c of input.members) {
            if (c.memberId === from.memberId || !c.topics.includes(tp.topic)) continue;
            if (load(from.memberId) - load(c.memberId) < 2) continue;
            if (to === null || load(c.memberId) < load(to)) to = c.memberId;
          }
          if (to === null) continue;
          list.splice(list.findIndex((x) => x.topic === tp.topic && x.partition === tp.partition), 1);
          result.get(to)!.push(tp);
          moved = true;
          break;
        }
        if (moved) break;
      }
      if (!moved) break;
    }
    for (const list of result.values()) list.sort(compareTp);
    return result;
  }
}
