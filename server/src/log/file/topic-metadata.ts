/**
 * Topic metadata of the file engine: `<dataDir>/topics/<name>/topic.json`, written
 * atomically (temp file + fsync + rename + fsync of the directory). A topic exists iff its
 * topic.json exists: partition directories are created before it, and a directory without
 * it (a crash mid-create) is removed on open.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { TributaryError } from "../../errors.ts";
import { DEFAULT_TOPIC_CONFIG, TOPIC_NAME_PATTERN, type TopicConfig } from "../log-engine.ts";

export const TOPIC_FILE = "topic.json";
export const MAX_PARTITIONS = 10_000;

export interface TopicMetadata {
  version: 1;
  name: string;
  config: TopicConfig;
  createdAt: number;
  /** Random per creation: delete + re-create gives a new epoch. */
  epoch: string;
  /** Per-partition epochs; start as `epoch`, changed when recovery truncates a partition. */
  partitionEpochs: string[];
}

export function newEpoch(): string {
  return randomBytes(8).toString("hex");
}

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

/** Fills defaults and validates a topic config for the single-node file engine. */
export function resolveTopicConfig(topic: string, partial: Partial<TopicConfig> | undefined): TopicConfig {
  const c = { ...DEFAULT_TOPIC_CONFIG, ...(partial ?? {}) };
  for (const k of Object.keys(c) as (keyof TopicConfig)[]) if (c[k] === undefined) (c as Record<string, unknown>)[k] = DEFAULT_TOPIC_CONFIG[k];
  if (typeof c.partitions !== "number" || !Number.isInteger(c.partitions) || c.partitions < 1 || c.partitions > MAX_PARTITIONS) {
    throw new TributaryError("POLICY_VIOLATION", `partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${String(c.partitions)}`, {
      topic,
      partitions: c.partitions,
    });
  }
  if (typeof c.replicationFactor !== "number" || !Number.isInteger(c.replicationFactor) || c.replicationFactor < 1) {
    throw new TributaryError("POLICY_VIOLATION", `replicationFactor must be an integer >= 1, got ${String(c.replicationFactor)}`, { topic });
  }
  if (c.replicationFactor > 1) {
    throw new TributaryError(
      "POLICY_VIOLATION",
      `the file engine is single-node and keeps one copy: replicationFactor ${c.replicationFactor} is refused; use the Redis engine (RedisLogEngine on Redis Cluster with replicas) for replication`,
      { topic, replicationFactor: c.replicationFactor },
    );
  }
  if (c.cleanupPolicy !== "delete") {
    throw new TributaryError("POLICY_VIOLATION", `cleanupPolicy ${String(c.cleanupPolicy)} is not supported (only "delete")`, { topic });
  }
  return {
    partitions: c.partitions,
    retentionMs: nullablePositive(c.retentionMs, "retentionMs", topic),
    retentionBytes: nullablePositive(c.retentionBytes, "retentionBytes", topic),
    replicationFactor: 1,
    cleanupPolicy: "delete",
  };
}

/** Writes a file durably and atomically: temp + fsync + rename + fsync of the directory. */
export function writeFileDurableSync(file: string, data: string | Buffer): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, "w", 0o644);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDirSync(path.dirname(file));
}

export function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function writeTopicMetadata(topicDir: string, meta: TopicMetadata): void {
  writeFileDurableSync(path.join(topicDir, TOPIC_FILE), JSON.stringify(meta, null, 2) + "\n");
}

/** Reads topic.json; null if absent. Throws STORAGE_ERROR if it is unreadable. */
export function readTopicMetadata(topicDir: string): TopicMetadata | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(topicDir, TOPIC_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new TributaryError("STORAGE_ERROR", `cannot read ${topicDir}/${TOPIC_FILE}: ${(err as Error).message}`, {}, { cause: err });
  }
  let meta: TopicMetadata;
  try {
    meta = JSON.parse(text) as TopicMetadata;
  } catch (err) {
    throw new TributaryError("STORAGE_ERROR", `${topicDir}/${TOPIC_FILE} is not valid JSON`, {}, { cause: err });
  }
  if (meta.version !== 1 || typeof meta.epoch !== "string" || !meta.config || typeof meta.config.partitions !== "number") {
    throw new TributaryError("STORAGE_ERROR", `${topicDir}/${TOPIC_FILE} has an unknown format`, {});
  }
  if (!Array.isArray(meta.partitionEpochs) || meta.partitionEpochs.length !== meta.config.partitions) {
    meta.partitionEpochs = Array.from({ length: meta.config.partitions }, () => meta.epoch);
  }
  return meta;
}
