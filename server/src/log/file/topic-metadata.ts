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
import { DEFAULT_TOPIC_CONFIG, type TopicConfig } from "../log-engine.ts";
import { resolveTopicConfig } from "../topic-config.ts";

export const TOPIC_FILE = "topic.json";

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

/** Fills defaults and validates a topic config for the single-node file engine (one copy only). */
export function resolveFileTopicConfig(topic: string, partial: Partial<TopicConfig> | undefined): TopicConfig {
  const c = resolveTopicConfig(topic, partial);
  if (c.replicationFactor > 1) {
    throw new TributaryError(
      "POLICY_VIOLATION",
      `the file engine is single-node and keeps one copy: replicationFactor ${c.replicationFactor} is refused; use the Redis engine (RedisLogEngine on Redis Cluster with replicas) for replication`,
      { topic, replicationFactor: c.replicationFactor },
    );
  }
  return c;
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
  // Settings added after a topic was created (compaction's, segmentBytes) take their defaults.
  meta.config = { ...DEFAULT_TOPIC_CONFIG, ...meta.config };
  if (!Array.isArray(meta.partitionEpochs) || meta.partitionEpochs.length !== meta.config.partitions) {
    meta.partitionEpochs = Array.from({ length: meta.config.partitions }, () => meta.epoch);
  }
  return meta;
}
