/**
 * `tributary topics create|list|describe|delete` over the HTTP API.
 */
import { InvalidArgumentError, type Command } from "commander";
import { isTributaryError } from "../errors.ts";
import { parseByteSize, parseDuration } from "../config/units.ts";
import type { TopicDescriptionJson } from "./api-client.ts";
import { addUrlOption, clientFrom, intArg } from "./client-options.ts";

const NONE = new Set(["none", "forever", "unlimited", "null", "off"]);

/** `7d`, `12h`, `30m`, `45s`, `250ms`, a number of ms, or none/forever. */
export function retentionArg(raw: string): number | null {
  if (NONE.has(raw.trim().toLowerCase())) return null;
  const ms = parseDuration(raw);
  if (ms === undefined || ms < 1) throw new InvalidArgumentError(`expected a duration like 7d, 12h, 30m, 45s, 250ms, a number of ms, or "forever"; got "${raw}"`);
  return ms;
}

export function retentionBytesArg(raw: string): number | null {
  if (NONE.has(raw.trim().toLowerCase())) return null;
  const bytes = parseByteSize(raw);
  if (bytes === undefined || bytes < 1) throw new InvalidArgumentError(`expected a size like 512MiB, 1GiB, a number of bytes, or "none"; got "${raw}"`);
  return bytes;
}

/** delete | compact | compact,delete (also delete,compact). */
export function cleanupPolicyArg(raw: string): string {
  const parts = raw.split(",").map((p) => p.trim());
  if (parts.length === 0 || parts.length > 2 || !parts.every((p) => p === "delete" || p === "compact")) {
    throw new InvalidArgumentError(`expected delete, compact or compact,delete; got "${raw}"`);
  }
  return parts.includes("compact") ? (parts.includes("delete") ? "compact,delete" : "compact") : "delete";
}

/** A duration >= 0 (0 allowed: tombstones removed at the first compaction). */
export function deleteRetentionArg(raw: string): number {
  const ms = parseDuration(raw);
  if (ms === undefined || ms < 0) throw new InvalidArgumentError(`expected a duration like 1d, 12h, 30m, 45s, 250ms or a number of ms; got "${raw}"`);
  return ms;
}

export function ratioArg(raw: string): number {
  const r = Number(raw);
  if (raw.trim() === "" || !(r >= 0 && r <= 1)) throw new InvalidArgumentError(`expected a number from 0 to 1; got "${raw}"`);
  return r;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return "forever";
  for (const [unit, size] of [["w", 604_800_000], ["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function formatBytes(bytes: number | null): string {
  if (bytes === null) return "none";
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

function printDescription(t: TopicDescriptionJson): void {
  const lines = [
    `topic ${t.name}`,
    `  partitions          ${t.partitions}`,
    `  replication factor  ${t.replicationFactor}`,
    `  retention           ${formatDuration(t.retentionMs)}`,
    `  retention bytes     ${formatBytes(t.retentionBytes)}`,
    `  cleanup policy      ${t.cleanupPolicy}`,
    ...(t.cleanupPolicy.includes("compact") && t.deleteRetentionMs !== undefined
      ? [`  delete retention    ${formatDuration(t.deleteRetentionMs)}`, `  min dirty ratio     ${t.minCleanableDirtyRatio}`]
      : []),
    `  created             ${new Date(t.createdAt).toISOString()}`,
    "",
  ];
  const rows = [["PARTITION", "EARLIEST", "END", "RECORDS", "EPOCH"]];
  for (const p of t.partitionInfo) rows.push([String(p.partition), String(p.earliestOffset), String(p.endOffset), String(p.endOffset - p.earliestOffset), p.epoch]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) lines.push(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
  process.stdout.write(lines.join("\n") + "\n");
}

export function registerTopicsCommand(program: Command): void {
  const topics = program.command("topics").description("Create, list, describe and delete topics.");

  addUrlOption(
    topics
      .command("create <topic>")
      .description("Create a topic.")
      .option("-p, --partitions <n>", "number of partitions (default: the server's topics.defaultPartitions)", intArg("--partitions", 1))
      .option("--retention <duration>", "delete records older than this: 7d, 12h, 30m, 45s, ms, or forever", retentionArg)
      .option("--retention-bytes <size>", "keep at most this much per partition: 1GiB, 512MiB, bytes, or none", retentionBytesArg)
      .option("--replication-factor <n>", "copies of each partition (the file engine accepts only 1)", intArg("--replication-factor", 1))
      .option("--cleanup-policy <policy>", "delete (retention), compact (keep the last record per key) or compact,delete", cleanupPolicyArg)
      .option("--delete-retention <duration>", "compacted topics: keep tombstones this long (default 1d)", deleteRetentionArg)
      .option("--min-cleanable-dirty-ratio <r>", "compacted topics: compact once this share of the log is new, 0..1 (default 0.5)", ratioArg)
      .option("--if-not-exists", "succeed (exit 0) if the topic already exists")
      .option("--json", "print the created topic as JSON"),
  ).action(async (topic: string, o: { partitions?: number; retention?: number | null; retentionBytes?: number | null; replicationFactor?: number; cleanupPolicy?: string; deleteRetention?: number; minCleanableDirtyRatio?: number; ifNotExists?: boolean; json?: boolean; url: string }) => {
    const client = clientFrom(o);
    const body: Record<string, unknown> = { name: topic };
    if (o.partitions !== undefined) body.partitions = o.partitions;
    if (o.retention !== undefined) body.retentionMs = o.retention;
    if (o.retentionBytes !== undefined) body.retentionBytes = o.retentionBytes;
    if (o.replicationFactor !== undefined) body.replicationFactor = o.replicationFactor;
    if (o.cleanupPolicy !== undefined) body.cleanupPolicy = o.cleanupPolicy;
    if (o.deleteRetention !== undefined) body.deleteRetentionMs = o.deleteRetention;
    if (o.minCleanableDirtyRatio !== undefined) body.minCleanableDirtyRatio = o.minCleanableDirtyRatio;
    try {
      const created = await client.createTopic(body);
      if (o.json) process.stdout.write(JSON.stringify(created) + "\n");
      else process.stdout.write(`created topic ${created.name} with ${created.partitions} partition${created.partitions === 1 ? "" : "s"}, retention ${formatDuration(created.retentionMs)}\n`);
    } catch (err) {
      if (o.ifNotExists && isTributaryError(err, "TOPIC_EXISTS")) {
        process.stderr.write(`topic ${topic} already exists\n`);
        return;
      }
      throw err;
    }
  });

  addUrlOption(
    topics
      .command("list")
      .description("List topic names, one per line; internal ones (__mqtt.retained, __mqtt.sessions, ...) only with --internal.")
      .option("--json", "print {\"topics\": [...]}")
      .option("--internal", "also list the node's internal topics"),
  ).action(
    async (o: { json?: boolean; internal?: boolean; url: string }) => {
      const { topics: names } = await clientFrom(o).listTopics(Boolean(o.internal));
      process.stdout.write(o.json ? JSON.stringify({ topics: names }) + "\n" : names.map((n) => n + "\n").join(""));
    },
  );

  addUrlOption(
    topics.command("describe <topic>").description("Show a topic's config and per-partition earliest/end offsets and epochs.").option("--json", "print the description as JSON"),
  ).action(async (topic: string, o: { json?: boolean; url: string }) => {
    const description = await clientFrom(o).describeTopic(topic);
    if (o.json) process.stdout.write(JSON.stringify(description) + "\n");
    else printDescription(description);
  });

  addUrlOption(
    topics.command("delete <topic>").description("Delete a topic and all its records.").option("--if-exists", "succeed (exit 0) if the topic does not exist"),
  ).action(async (topic: string, o: { ifExists?: boolean; url: string }) => {
    try {
      await clientFrom(o).deleteTopic(topic);
      process.stdout.write(`deleted topic ${topic}\n`);
    } catch (err) {
      if (o.ifExists && isTributaryError(err, "UNKNOWN_TOPIC")) {
        process.stderr.write(`topic ${topic} does not exist\n`);
        return;
      }
      throw err;
    }
  });
}
