import { TributaryError } from "../errors.ts";
import type { LogEngine } from "../log/log-engine.ts";
import type { AssignedPartition, OffsetResetPolicy, TopicPartition } from "./types.ts";

/** Where `resetOffsets` moves a group: an end of the log, an exact offset (clamped into the log), or the first record at/after a time. */
export type ResetTarget = "earliest" | "latest" | { offset: number } | { timestamp: number };

/**
 * Start position of a group on a partition. The committed position `(epoch, offset)` is
 * used when its epoch is the partition's current epoch (or unknown: committed without one)
 * and its offset lies within [earliest, end] of the log. Otherwise the member's reset
 * policy decides (`earliest` = first readable offset; `latest` and `error` = the end
 * offset, only new records) and the start carries `reset` with the reason:
 * `STALE_EPOCH` when the commit belongs to another history of the partition (topic
 * re-created, a tail lost by the storage: the same offset may name other records now),
 * `OFFSET_OUT_OF_RANGE` when retention passed it or it is beyond the end. A partition
 * without a commit starts by the policy, without `reset`.
 */
export async function resolveStartOffset(engine: LogEngine, group: string, tp: TopicPartition, reset: OffsetResetPolicy): Promise<AssignedPartition> {
  const [info, committed] = await Promise.all([engine.offsets(tp.topic, tp.partition), engine.fetchOffset(group, tp.topic, tp.partition)]);
  const byPolicy = reset === "earliest" ? info.earliestOffset : info.endOffset;
  if (!committed) return { ...tp, offset: byPolicy, epoch: info.epoch, committed: false };
  const reason =
    committed.epoch !== null && committed.epoch !== info.epoch
      ? "STALE_EPOCH"
      : committed.offset < info.earliestOffset || committed.offset > info.endOffset
        ? "OFFSET_OUT_OF_RANGE"
        : null;
  if (reason === null) return { ...tp, offset: committed.offset, epoch: info.epoch, committed: true };
  return { ...tp, offset: byPolicy, epoch: info.epoch, committed: false, reset: { reason, requested: committed.offset, requestedEpoch: committed.epoch, policy: reset } };
}

/** The position `to` designates on one partition: an offset of the partition's current epoch. */
export async function resolveResetTarget(engine: LogEngine, tp: TopicPartition, to: ResetTarget): Promise<{ offset: number; epoch: string }> {
  const info = await engine.offsets(tp.topic, tp.partition);
  const at = (offset: number) => ({ offset, epoch: info.epoch });
  if (to === "earliest") return at(info.earliestOffset);
  if (to === "latest") return at(info.endOffset);
  if ("offset" in to) return at(Math.min(Math.max(to.offset, info.earliestOffset), info.endOffset));
  return at(await engine.offsetForTimestamp(tp.topic, tp.partition, to.timestamp));
}

/** Parses a reset target from JSON/CLI input; BAD_REQUEST when it is none of the four forms. */
export function parseResetTarget(value: unknown): ResetTarget {
  if (value === "earliest" || value === "latest") return value;
  if (value && typeof value === "object") {
    const v = value as Record<string, unknown>;
    if (typeof v.offset === "number" && Number.isSafeInteger(v.offset) && v.offset >= 0 && !("timestamp" in v)) return { offset: v.offset };
    if (typeof v.timestamp === "number" && Number.isFinite(v.timestamp) && v.timestamp >= 0 && !("offset" in v)) return { timestamp: v.timestamp };
  }
  throw new TributaryError("BAD_REQUEST", `"to" must be "earliest", "latest", {"offset": <integer >= 0>} or {"timestamp": <ms>}`, { to: value });
}

/** Lag of a group on a partition: records between its committed offset and the end of the log; null with no commit. */
export function lagOf(endOffset: number, committedOffset: number | null): number | null {
  return committedOffset === null ? null : Math.max(0, endOffset - committedOffset);
}
