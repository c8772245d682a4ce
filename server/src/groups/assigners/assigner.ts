import type { TopicPartition } from "../types.ts";

/**
 * An assignment strategy: maps the group's members and the partitions of the topics they
 * subscribe to onto owners.
 *
 * Contract every assigner keeps:
 * - Pure and deterministic: the same input gives the same output (members are given sorted
 *   by memberId; ties break on memberId).
 * - Every partition of every subscribed topic goes to exactly one member subscribed to
 *   that topic; no partition goes to two members; members not subscribed to a topic get
 *   none of its partitions. Every member appears in the result (possibly with []).
 *
 * `protocol` tells the coordinator how to move partitions: "eager" revokes every
 * partition from every member before a new generation is assigned (Kafka's classic
 * protocol); "cooperative" revokes only the partitions that change owner and leaves the
 * others flowing (Kafka's KIP-429 incremental protocol).
 */
export interface PartitionAssigner {
  readonly name: string;
  readonly protocol: "eager" | "cooperative";
  assign(input: AssignmentInput): Map<string, TopicPartition[]>;
}

export interface AssignmentMember {
  memberId: string;
  topics: readonly string[];
  /** Partitions the member owns now (sticky strategies keep them where they can). */
  owned: readonly TopicPartition[];
}

export interface AssignmentInput {
  /** Sorted by memberId. */
  members: readonly AssignmentMember[];
  /** Partition count of every topic some member subscribes to (0 = topic missing). */
  partitions: ReadonlyMap<string, number>;
}

/** Members subscribed to `topic`, in input (memberId) order. */
export function subscribersOf(input: AssignmentInput, topic: string): AssignmentMember[] {
  return input.members.filter((m) => m.topics.includes(topic));
}

export function emptyAssignment(input: AssignmentInput): Map<string, TopicPartition[]> {
  return new Map(input.members.map((m) => [m.memberId, [] as TopicPartition[]]));
}

export function sortedTopics(input: AssignmentInput): string[] {
  return [...input.partitions.keys()].sort();
}
