/** Shared shapes of the group layer. */

/** One partition of one topic. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/** Where a member starts on a partition it was just given. */
export interface AssignedPartition extends TopicPartition {
  /** Next offset to deliver: the committed offset, or the reset policy's offset when none (or out of range). */
  offset: number;
  epoch: string;
  /** True when `offset` is the group's committed offset; false when the reset policy chose it. */
  committed: boolean;
}

/** What to do when the group has no (usable) committed offset for a partition. */
export type OffsetResetPolicy = "earliest" | "latest";

export function tpKey(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

export function parseTpKey(key: string): TopicPartition {
  const i = key.lastIndexOf("\u0000");
  return { topic: key.slice(0, i), partition: Number(key.slice(i + 1)) };
}

/** Sorts by topic, then partition (the canonical order of every list the layer returns). */
export function compareTp(a: TopicPartition, b: TopicPartition): number {
  return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;
}

export function sortTps<T extends TopicPartition>(tps: Iterable<T>): T[] {
  return [...tps].sort(compareTp);
}
