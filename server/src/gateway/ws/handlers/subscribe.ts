import type { SubscribeFrame } from "@tributary/client/protocol";
import { toTributaryError } from "../../../errors.ts";
import { PartitionCursor } from "../partition-cursor.ts";
import { resolveStarts } from "../start-position.ts";
import { parseTopicSelector } from "../topic-filter.ts";
import type { WsConnection } from "../ws-connection.ts";
import { WsSubscription } from "../ws-subscription.ts";
import type { HandlerContext } from "./context.ts";

/**
 * `subscribe` → `subscribed` {partitions: start offset + epoch each}, then any `reset`
 * frames (positions the reset policy moved), then `message` frames per partition in
 * offset order: catch-up from the log, then live. Failures come back as `error` with the
 * request `id` and the `sub`: UNKNOWN_TOPIC (no auto-create), INVALID_TOPIC, BAD_REQUEST
 * (sub in use, bad filter), POLICY_VIOLATION (too many subscriptions), and under reset
 * policy "error" OFFSET_OUT_OF_RANGE / STALE_EPOCH.
 */
export function handleSubscribe(ctx: HandlerContext, conn: WsConnection, frame: SubscribeFrame): void {
  const ids = { id: frame.id, sub: frame.sub };
  const { limits } = ctx.config;
  if (conn.subscriptions.has(frame.sub)) {
    conn.sendError("BAD_REQUEST", `subscription ${frame.sub} is already in use on this connection`, ids);
    return;
  }
  if (conn.subscriptions.size >= limits.maxSubscriptionsPerConnection) {
    conn.sendError("POLICY_VIOLATION", `at most ${limits.maxSubscriptionsPerConnection} subscriptions per connection (limits.maxSubscriptionsPerConnection)`, ids);
    return;
  }
  let selector;
  try {
    selector = parseTopicSelector(frame.topic);
  } catch (err) {
    const e = toTributaryError(err);
    conn.sendError(e.code, e.message, ids);
    return;
  }
  const sub = new WsSubscription({
    id: frame.sub,
    conn,
    topic: selector.topic,
    spec: frame.topic,
    filter: selector.filter,
    reset: frame.reset ?? "latest",
    credit: frame.credit ?? limits.defaultCredit,
    maxCredit: limits.maxCredit,
  });
  // Registered at once so an unsubscribe (or a close) during resolution cancels it.
  conn.subscriptions.set(frame.sub, sub);
  void start(ctx, sub, frame).catch((err: unknown) => {
    if (!sub.active) return;
    sub.stop();
    if (conn.subscriptions.get(frame.sub) === sub) conn.subscriptions.delete(frame.sub);
    const e = toTributaryError(err);
    if (e.code === "INTERNAL") ctx.log.error("ws.subscribe.failed", { topic: frame.topic, error: e.message });
    conn.sendError(e.code, e.message, ids);
  });
}

async function start(ctx: HandlerContext, sub: WsSubscription, frame: SubscribeFrame): Promise<void> {
  const { broker } = ctx;
  const description = await broker.describeOrCreate(sub.topic, ctx.config.topics.autoCreate);
  if (!sub.active) return;
  const { partitions, resets } = await resolveStarts(broker.engine, sub.topic, description.partitionInfo, frame.from ?? "latest", sub.reset);
  if (!sub.active) return;
  const conn = sub.conn;
  conn.send({
    op: "subscribed",
    id: frame.id,
    sub: sub.id,
    topic: frame.topic,
    partitions: partitions.map(({ partition, offset, epoch }) => ({ partition, offset, epoch })),
  });
  for (const reset of resets) conn.send({ ...reset, sub: sub.id });
  const env = { broker, feeds: ctx.feeds };
  sub.cursors = partitions.map((p) => new PartitionCursor(sub, p.partition, p.epoch, p.offset, env));
  partitions.forEach((p, i) => sub.cursors[i]!.start(p.atEnd));
}
