import { TributaryError } from "../errors.ts";
import type { LogEngine } from "../log/log-engine.ts";
import type { AssignedPartition, OffsetResetPolicy, TopicPartition } from "./types.ts";

/** Where `resetOffsets` moves a group: an end of the log, an exact offset (clamped into the log), or the first record at/after a time. */
export type ResetTarget = "earliest" | "latest" | { offset: number } | { timestamp: number };

/**
 * Start position of a group on a partition: its committed offset when there is one inside
 * [earliest, end] of the log; otherwise the reset policy's end (`earliest` = first
 * readable offset, `latest` = end offset, i.e. only new records). A committed offset that
 * fell below the earliest offset (retention) or above the end (the topic was re-created)
 * is treated as missing.
 */
export async function resolveStartOffset(engine: LogEngine, group: string, tp: TopicPartition, reset: OffsetResetPolicy): Promise<AssignedPartition> {
  const [info, committed] = await Promise.all([engine.offsets(tp.topic, tp.partition), engine.fetchOffset(group, tp.topic, tp.partition)]);
  if (committed && committed.offset >= info.earliestOffset && committed.offset <= info.endOffset) {
    return { ...tp, offset: committed.offset, epoch: info.epoch, committed: true };
  }
  return { ...tp, offset: reset === "earliest" ? info.earliestOffset : info.endOffset, epoch: info.epoch, committed: false };
}

/** The offset `to` designates on one partition. */
export async function resolveResetTarget(engine: LogEngine, tp: TopicPartition, to: ResetTarget): Promise<number> {
  const info = await engine.offsets(tp.topic, tp.partition);
  if (to === "earliest") return info.earliestOffset;
  if (to === "latest") return info.endOffset;
  if ("offset" in to) return Math.min(Math.max(to.offset, info.earliestOffset), info.endOffset);
  return engine.offsetForTimestamp(tp.topic, tp.partition, to.timestamp);
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
