/**
 * Topic admin routes: list, create, describe, delete (docs/http-api.md). Internal topics
 * (broker/internal-topics.ts) are listed only with `?internal=true` and cannot be created
 * or deleted by clients (403 FORBIDDEN).
 */
import { TributaryError } from "../../errors.ts";
import { TOPIC_NAME_PATTERN } from "../../broker/broker.ts";
import { checkClientTopicAccess, isInternalTopic } from "../../broker/internal-topics.ts";
import type { TopicConfig, TopicDescription } from "../../log/log-engine.ts";
import { parseDuration, parseByteSize, closest } from "../../config/units.ts";
import type { GatewayContext } from "../gateway-context.ts";
import { authorize } from "./http-auth.ts";
import type { HttpRouter } from "./http-router.ts";
import { isPlainObject, parseBody, show } from "./record-encoding.ts";

/** INVALID_TOPIC unless `name` is a valid topic name. */
export function checkTopicName(name: string): string {
  if (!TOPIC_NAME_PATTERN.test(name)) {
    throw new TributaryError("INVALID_TOPIC", `invalid topic name ${show(name)}: use 1 to 249 characters of [a-zA-Z0-9._-]`, { topic: name });
  }
  return name;
}

const CREATE_FIELDS = ["name", "partitions", "retentionMs", "retentionBytes", "replicationFactor", "cleanupPolicy", "deleteRetentionMs", "minCleanableDirtyRatio"];
const CLEANUP_POLICIES = ["delete", "compact", "compact,delete", "delete,compact"];

/** Reads a POST /topics body into (name, config); every field but `name` optional. */
export function parseCreateTopic(body: unknown): { name: string; config: Partial<TopicConfig> } {
  if (!isPlainObject(body)) throw new TributaryError("BAD_REQUEST", `expected {"name": "...", "partitions"?: n, ...}, got ${show(body)}`);
  for (const key of Object.keys(body)) {
    if (CREATE_FIELDS.includes(key)) continue;
    const suggestion = closest(key, CREATE_FIELDS);
    throw new TributaryError("BAD_REQUEST", `unknown field "${key}"${suggestion ? ` (did you mean "${suggestion}"?)` : ""}; known fields: ${CREATE_FIELDS.join(", ")}`);
  }
  if (typeof body.name !== "string") throw new TributaryError("BAD_REQUEST", `name: expected the topic name (a string), got ${show(body.name)}`);
  const name = checkTopicName(body.name);
  const config: Partial<TopicConfig> = {};
  if (body.partitions !== undefined) config.partitions = positiveInt(body.partitions, "partitions", 10_000);
  if (body.replicationFactor !== undefined) config.replicationFactor = positiveInt(body.replicationFactor, "replicationFactor", 1000);
  if (body.retentionMs !== undefined) config.retentionMs = limit(body.retentionMs, "retentionMs", parseDuration, "a number of ms or a duration like \"7d\"");
  if (body.retentionBytes !== undefined) config.retentionBytes = limit(body.retentionBytes, "retentionBytes", parseByteSize, "a number of bytes or a size like \"1GiB\"");
  if (body.cleanupPolicy !== undefined) {
    // The engine normalises ("delete,compact" → "compact,delete") and validates again.
    if (typeof body.cleanupPolicy !== "string" || !CLEANUP_POLICIES.includes(body.cleanupPolicy)) {
      throw new TributaryError("INVALID_CONFIG", `cleanupPolicy: expected "delete", "compact" or "compact,delete", got ${show(body.cleanupPolicy)}`);
    }
    config.cleanupPolicy = body.cleanupPolicy as TopicConfig["cleanupPolicy"];
  }
  if (body.deleteRetentionMs !== undefined) {
    const n = typeof body.deleteRetentionMs === "string" ? parseDuration(body.deleteRetentionMs) : body.deleteRetentionMs;
    if (!Number.isSafeInteger(n) || (n as number) < 0) throw new TributaryError("INVALID_CONFIG", `deleteRetentionMs: expected a number of ms or a duration like "1d" (>= 0), got ${show(body.deleteRetentionMs)}`);
    config.deleteRetentionMs = n as number;
  }
  if (body.minCleanableDirtyRatio !== undefined) {
    const r = body.minCleanableDirtyRatio;
    if (typeof r !== "number" || !(r >= 0 && r <= 1)) throw new TributaryError("INVALID_CONFIG", `minCleanableDirtyRatio: expected a number from 0 to 1, got ${show(r)}`);
    config.minCleanableDirtyRatio = r;
  }
  return { name, config };
}

function positiveInt(raw: unknown, field: string, max: number): number {
  if (!Number.isSafeInteger(raw) || (raw as number) < 1 || (raw as number) > max) {
    throw new TributaryError("BAD_REQUEST", `${field}: expected an integer 1..${max}, got ${show(raw)}`);
  }
  return raw as number;
}

function limit(raw: unknown, field: string, parse: (s: string) => number | undefined, expected: string): number | null {
  if (raw === null) return null;
  const n = typeof raw === "string" ? parse(raw) : raw;
  if (!Number.isSafeInteger(n) || (n as number) < 1) throw new TributaryError("BAD_REQUEST", `${field}: expected ${expected} (>= 1), or null for no limit; got ${show(raw)}`);
  return n as number;
}

/** The JSON shape of a topic description (also what the CLI prints); `sizeBytes` when the engine reports it. */
export function renderTopic(description: TopicDescription, sizeBytes?: number | null): Record<string, unknown> {
  return {
    name: description.name,
    partitions: description.partitions,
    replicationFactor: description.replicationFactor,
    retentionMs: description.retentionMs,
    retentionBytes: description.retentionBytes,
    cleanupPolicy: description.cleanupPolicy,
    deleteRetentionMs: description.deleteRetentionMs,
    minCleanableDirtyRatio: description.minCleanableDirtyRatio,
    createdAt: description.createdAt,
    partitionInfo: description.partitionInfo.map((p) => ({
      partition: p.partition,
      earliestOffset: p.earliestOffset,
      endOffset: p.endOffset,
      epoch: p.epoch,
    })),
    ...(sizeBytes !== undefined ? { sizeBytes } : {}),
  };
}

export function mountTopicRoutes(router: HttpRouter, ctx: GatewayContext): void {
  const { broker } = ctx;

  const { auth } = ctx;
  router.route("get", "/topics", async ({ query, identity }) => {
    const internal = query.get("internal") === "true" || query.get("internal") === "1";
    if (internal) authorize(auth, identity, (a, id) => a.isAdmin(id), "admin", "internal topics");
    const topics = (await broker.listTopics()).filter((t) => internal || !isInternalTopic(t)).sort();
    return { status: 200, body: { topics } };
  });

  router.route(
    "post",
    "/topics",
    async (req) => {
      const { name, config } = parseCreateTopic(parseBody(req.body, req.contentType));
      checkClientTopicAccess(name, "create");
      authorize(auth, req.identity, (a, id) => a.canManageTopic(id, name), "manage_topic", name);
      const description = await broker.createTopic(name, config);
      ctx.log.info("topic.created", { topic: name, partitions: description.partitions });
      return { status: 201, body: renderTopic(description) };
    },
    { readBody: true },
  );

  router.route("get", "/topics/:topic", async (req) => {
    const topic = checkTopicName(req.params[0]!);
    // Describing (partitions, offsets; no records): whoever may read or write the topic, and admin.
    authorize(auth, req.identity, (a, id) => a.isAdmin(id) || a.canConsume(id, topic) || a.canProduce(id, topic, null), "consume", topic);
    const description = await broker.describeTopic(topic);
    return { status: 200, body: renderTopic(description, broker.topicSizeBytes(description)) };
  });

  router.route("delete", "/topics/:topic", async (req) => {
    const topic = checkTopicName(req.params[0]!);
    checkClientTopicAccess(topic, "delete");
    authorize(auth, req.identity, (a, id) => a.canManageTopic(id, topic), "manage_topic", topic);
    await broker.deleteTopic(topic);
    ctx.log.info("topic.deleted", { topic });
    return { status: 204 };
  });
}
