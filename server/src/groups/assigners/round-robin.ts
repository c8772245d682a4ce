import type { TopicPartition } from "../types.ts";
import { emptyAssignment, sortedTopics, type AssignmentInput, type PartitionAssigner } from "./assigner.ts";

/**
 * Kafka's `roundrobin` strategy: all partitions of all subscribed topics, sorted by
 * (topic, partition), are dealt one by one to the members sorted by memberId, skipping a
 * member that does not subscribe to the partition's topic. Eager.
 */
export class RoundRobinAssigner implements PartitionAssigner {
  readonly name = "round-robin";
  readonly protocol = "eager" as const;

  assign(input: AssignmentInput): Map<string, TopicPartition[]> {
    const result = emptyAssignment(input);
    const members = input.members;
    if (members.length === 0) return result;
    let cursor = 0;
    for (const topic of sortedTopics(input)) {
      const count = input.partitions.get(topic) ?? 0;
      if (!members.some((m) => m.topics.includes(topic))) continue;
      for (let partition = 0; partition < count; partition++) {
        while (!members[cursor % members.length]!.topics.includes(topic)) cursor++;
        result.get(members[cursor % members.length]!.memberId)!.push({ topic, partition });
        cursor++;
      }
    }
    return result;
  }
}
