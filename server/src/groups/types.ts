/** Shared shapes of the group layer. */

/** One partition of one topic. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/** Where a member starts on a partition it was just given. */
export interface AssignedPartition extends TopicPartition {
  /** Next offset to deliver: the committed offset, or the reset policy's offset when none (or not usable). */
  offset: number;
  /** The partition's epoch: `offset` is a position of this history; the member's commits belong to it. */
  epoch: string;
  /** True when `offset` is the group's committed offset; false when the reset policy chose it. */
  committed: boolean;
  /** Set when the group had a committed position the reset policy replaced (see `StartReset`). */
  reset?: StartReset;
}

/**
 * Why a group's committed position on a partition was not used: it belongs to another epoch
 * (`STALE_EPOCH`: the partition's history was rewritten since) or lies outside the log
 * (`OFFSET_OUT_OF_RANGE`: retention passed it, or it is beyond the end).
 */
export interface StartReset {
  reason: "STALE_EPOCH" | "OFFSET_OUT_OF_RANGE";
  /** The committed offset and its epoch (null: committed without one). */
  requested: number;
  requestedEpoch: string | null;
  /** The member's policy that chose `AssignedPartition.offset`. */
  policy: OffsetResetPolicy;
}

/**
 * What to do when the group has no usable committed position for a partition: start at the
 * first readable offset, at the end, or (`error`) not at all. The coordinator has to place the
 * partition somewhere, so under `error` it starts it at the end like `latest` and marks the
 * start with `reset`: a member channel whose member chose `error` must not consume a partition
 * whose start carries `reset`, and reports `reset.reason` to its client instead. A partition
 * the group never committed starts at the end under `error` (nothing to report).
 */
export type OffsetResetPolicy = "earliest" | "latest" | "error";

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
