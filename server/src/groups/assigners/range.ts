import type { TopicPartition } from "../types.ts";
import { emptyAssignment, sortedTopics, subscribersOf, type AssignmentInput, type PartitionAssigner } from "./assigner.ts";

/**
 * Kafka's `range` strategy, per topic: the topic's partitions are split into contiguous
 * ranges over its subscribers sorted by memberId; the first `partitions % subscribers`
 * members get one extra. Co-partitioned topics land on the same member. Eager.
 */
export class RangeAssigner implements PartitionAssigner {
  readonly name = "range";
  readonly protocol = "eager" as const;

  assign(input: AssignmentInput): Map<string, TopicPartition[]> {
    const result = emptyAssignment(input);
    for (const topic of sortedTopics(input)) {
      const count = input.partitions.get(topic) ?? 0;
      const subscribers = subscribersOf(input, topic);
      if (subscribers.length === 0) continue;
      const base = Math.floor(count / subscribers.length);
      const extra = count % subscribers.length;
      let next = 0;
      subscribers.forEach((member, i) => {
        const take = base + (i < extra ? 1 : 0);
        const list = result.get(member.memberId)!;
        for (let p = next; p < next + take; p++) list.push({ topic, partition: p });
        next += take;
      });
    }
    return result;
  }
}
