import { TributaryError } from "../errors.ts";
import { DEFAULT_TOPIC_CONFIG, TOPIC_NAME_PATTERN, type TopicConfig } from "./log-engine.ts";

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
  if (c.cleanupPolicy !== "delete") {
    throw new TributaryError("POLICY_VIOLATION", `cleanupPolicy ${String(c.cleanupPolicy)} is not supported (only "delete")`, { topic });
  }
  return {
    partitions: c.partitions,
    retentionMs: nullablePositive(c.retentionMs, "retentionMs", topic),
    retentionBytes: nullablePositive(c.retentionBytes, "retentionBytes", topic),
    replicationFactor: c.replicationFactor,
    cleanupPolicy: "delete",
  };
}
