import { TributaryError } from "../errors.ts";
import { CLEANUP_POLICIES, DEFAULT_TOPIC_CONFIG, TOPIC_NAME_PATTERN, type AlterableTopicConfig, type CleanupPolicy, type TopicConfig } from "./log-engine.ts";

/** Engines' shared topic rules: name validation and config defaults/validation. */
export const MAX_PARTITIONS = 10_000;

export function validateTopicName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !TOPIC_NAME_PATTERN.test(name) || name === "." || name === "..") {
    throw new TributaryError("INVALID_TOPIC", `invalid topic name ${JSON.stringify(name)}: must match [a-zA-Z0-9._-]{1,249} and not be "." or ".."`, {
      topic: name,
    });
  }
}

function nullablePositive(value: unknown, field: string, topic: string): number | null {
  if (value === null) return null;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new TributaryError("INVALID_CONFIG", `${field} must be a positive integer or null, got ${String(value)}`, { topic, field });
  }
  return value;
}

/** Fills defaults (for absent or undefined fields) and validates a topic config. */
export function resolveTopicConfig(topic: string, partial: Partial<TopicConfig> | undefined): TopicConfig {
  const c = { ...DEFAULT_TOPIC_CONFIG };
  for (const [k, v] of Object.entries(partial ?? {})) if (v !== undefined) (c as Record<string, unknown>)[k] = v;
  if (!Number.isInteger(c.partitions) || c.partitions < 1 || c.partitions > MAX_PARTITIONS) {
    throw new TributaryError("POLICY_VIOLATION", `partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${String(c.partitions)}`, {
      topic,
      partitions: c.partitions,
    });
  }
  if (!Number.isInteger(c.replicationFactor) || c.replicationFactor < 1) {
    throw new TributaryError("POLICY_VIOLATION", `replicationFactor must be an integer >= 1, got ${String(c.replicationFactor)}`, { topic });
  }
  return {
    partitions: c.partitions,
    retentionMs: nullablePositive(c.retentionMs, "retentionMs", topic),
    retentionBytes: nullablePositive(c.retentionBytes, "retentionBytes", topic),
    replicationFactor: c.replicationFactor,
    cleanupPolicy: cleanupPolicy(c.cleanupPolicy, topic),
    deleteRetentionMs: nonNegative(c.deleteRetentionMs, "deleteRetentionMs", topic),
    minCleanableDirtyRatio: ratio(c.minCleanableDirtyRatio, topic),
    segmentBytes: segmentBytes(c.segmentBytes, topic),
  };
}

/** Smallest and largest per-topic segment size (a segment's positions are 32-bit). */
export const MIN_SEGMENT_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 2 ** 31 - 1;

function segmentBytes(value: unknown, topic: string): number | null {
  if (value === null) return null;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < MIN_SEGMENT_BYTES || value > MAX_SEGMENT_BYTES) {
    throw new TributaryError("INVALID_CONFIG", `segmentBytes must be an integer from ${MIN_SEGMENT_BYTES} to ${MAX_SEGMENT_BYTES}, or null for the engine's default, got ${String(value)}`, { topic, field: "segmentBytes" });
  }
  return value;
}

/** Normalises a cleanup policy: "delete", "compact", "compact,delete" (also "delete,compact" or an array of both, as Kafka accepts). */
export function cleanupPolicy(value: unknown, topic: string): CleanupPolicy {
  const parts = Array.isArray(value) ? value : typeof value === "string" ? value.split(",").map((s) => s.trim()) : null;
  if (parts && parts.length > 0 && parts.every((p) => p === "delete" || p === "compact")) {
    const compact = parts.includes("compact");
    const del = parts.includes("delete");
    return compact && del ? "compact,delete" : compact ? "compact" : "delete";
  }
  throw new TributaryError("INVALID_CONFIG", `cleanupPolicy must be one of ${CLEANUP_POLICIES.map((p) => JSON.stringify(p)).join(", ")}, got ${JSON.stringify(value) ?? String(value)}`, {
    topic,
    field: "cleanupPolicy",
  });
}

function nonNegative(value: unknown, field: string, topic: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new TributaryError("INVALID_CONFIG", `${field} must be a non-negative integer (ms), got ${String(value)}`, { topic, field });
  }
  return value;
}

function ratio(value: unknown, topic: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new TributaryError("INVALID_CONFIG", `minCleanableDirtyRatio must be a number from 0 to 1, got ${String(value)}`, { topic, field: "minCleanableDirtyRatio" });
  }
  return value;
}

const ALTERABLE = new Set(["retentionMs", "retentionBytes", "cleanupPolicy", "deleteRetentionMs", "minCleanableDirtyRatio", "segmentBytes"]);

/**
 * Applies `changes` (retention and cleanup settings only) to a topic's current config and
 * validates the result. Any other field is refused with POLICY_VIOLATION (partitions and
 * replication factor are fixed at creation).
 */
export function alterTopicConfig(topic: string, current: TopicConfig, changes: Partial<AlterableTopicConfig>): TopicConfig {
  if (changes === null || typeof changes !== "object") throw new TributaryError("BAD_REQUEST", "topic config changes must be an object", { topic });
  for (const k of Object.keys(changes)) {
    if (!ALTERABLE.has(k)) {
      throw new TributaryError("POLICY_VIOLATION", `${k} cannot be changed after creation (alterable: ${[...ALTERABLE].join(", ")})`, { topic, field: k });
    }
  }
  return resolveTopicConfig(topic, { ...current, ...changes });
}

/** A keyless record cannot be appended to a compacted topic (Kafka refuses it too: compaction keeps the last record per key). */
export function keylessRecordError(topic: string, partition: number, index: number): TributaryError {
  return new TributaryError(
    "POLICY_VIOLATION",
    `topic ${topic} is compacted (cleanupPolicy compact): record ${index} has no key, and every record of a compacted topic needs one`,
    { topic, partition, record: index },
  );
}
