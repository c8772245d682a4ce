import type { SubscribeFrame } from "@tributary/client/protocol";
import { toTributaryError } from "../../../errors.ts";
import { forbidden } from "../../../auth/index.ts";
import { internalTopicRefusal } from "../../../broker/internal-topics.ts";
import { GroupSubscription } from "../group-subscription.ts";
import { DeliveryCursor } from "../../../broker/delivery/delivery-cursor.ts";
import { resolveStarts } from "../../../broker/delivery/start-position.ts";
import { parseTopicSelector } from "../topic-filter.ts";
import type { WsConnection } from "../ws-connection.ts";
import { WsSubscription } from "../ws-subscription.ts";
import type { HandlerContext } from "./context.ts";

/**
 * `subscribe` → `subscribed` {partitions: start offset + epoch each}, then any `reset`
 * frames (positions the reset policy moved), then `message` frames per partition in
 * offset order: catch-up from the log, then live. Failures come back as `error` with the
 * request `id` and the `sub`: UNKNOWN_TOPIC (no auto-create), INVALID_TOPIC, BAD_REQUEST
 * (sub in use, bad filter), POLICY_VIOLATION (too many subscriptions), FORBIDDEN (an
 * internal topic, broker/internal-topics.ts), and under reset policy "error"
 * OFFSET_OUT_OF_RANGE / STALE_EPOCH.
 *
 * With `group`: the subscription is a consumer-group member (GroupSubscription): reply
 * `joined` {memberId}, then `assign` / `revoke` frames and `message` frames of the assigned
 * partitions only. Join failures: UNAVAILABLE (no groups on this node),
 * INCONSISTENT_GROUP_PROTOCOL, BAD_REQUEST (group name, session timeout bounds).
 * With `presence: true` the client is present on the topic while subscribed, when its
 * identity may be (`canPresence`); otherwise the subscription goes on without presence.
 *
 * Permissions (ws-auth.ts): `canConsume` for the topic or key filter, `canJoinGroup` for
 * `group`; refused with FORBIDDEN. Internal topics: admin may read them, nobody else.
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
  const refusal = internalTopicRefusal(selector.topic, "subscribe", ctx.wsAuth.isAdminReader(conn));
  if (refusal) {
    conn.sendError(refusal.code, refusal.message, ids);
    return;
  }
  if (!ctx.wsAuth.allowed(conn, (a, id) => a.canConsume(id, frame.topic))) {
    const e = forbidden(conn.identity!, "consume", frame.topic);
    conn.sendError(e.code, e.message, ids);
    return;
  }
  if (frame.group !== undefined && !ctx.wsAuth.allowed(conn, (a, id) => a.canJoinGroup(id, frame.group!))) {
    const e = forbidden(conn.identity!, "join_group", frame.group);
    conn.sendError(e.code, e.message, ids);
    return;
  }
  if (frame.group !== undefined) {
    startGroup(ctx, conn, frame, selector);
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
    env: ctx.delivery,
  });
  // Registered at once so an unsubscribe (or a close) during resolution cancels it.
  conn.subscriptions.set(frame.sub, sub);
  if (frame.presence && mayBePresent(ctx, conn, sub.topic)) void ctx.presenceHub.track(sub).catch((err: unknown) => ctx.log.warn("presence.join_failed", { topic: sub.topic, message: String(err) }));
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
  const { partitions, resets } = await resolveStarts(broker, sub.topic, description.partitionInfo, frame.from ?? "latest", sub.reset);
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
  sub.startCursors(
    partitions.map((p) => new DeliveryCursor(ctx.delivery, sub, sub.topic, p.partition, p.epoch, p.offset)),
    partitions.map((p) => p.atEnd),
  );
}

function startGroup(ctx: HandlerContext, conn: WsConnection, frame: SubscribeFrame, selector: ReturnType<typeof parseTopicSelector>): void {
  const ids = { id: frame.id, sub: frame.sub };
  const coordinator = ctx.groups;
  if (!coordinator) {
    conn.sendError("UNAVAILABLE", "consumer groups are not enabled on this node", ids);
    return;
  }
  const { limits } = ctx.config;
  const sub = new GroupSubscription({
    id: frame.sub,
    conn,
    topic: selector.topic,
    spec: frame.topic,
    filter: selector.filter,
    frame,
    credit: frame.credit ?? limits.defaultCredit,
    maxCredit: limits.maxCredit,
    coordinator,
    env: ctx.delivery,
  });
  conn.subscriptions.set(frame.sub, sub);
  if (frame.presence && mayBePresent(ctx, conn, sub.topic)) void ctx.presenceHub.track(sub).catch((err: unknown) => ctx.log.warn("presence.join_failed", { topic: sub.topic, message: String(err) }));
  void (async () => {
    await ctx.broker.describeOrCreate(sub.topic, ctx.config.topics.autoCreate);
    const { memberId } = await coordinator.join(frame.group!, {
      clientId: conn.clientId,
      user: ctx.presenceHub.userOf(conn),
      node: ctx.nodeId,
      topics: [sub.topic],
      ...(frame.strategies ? { strategies: frame.strategies } : {}),
      reset: sub.reset === "earliest" ? "earliest" : "latest",
      ...(frame.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: frame.sessionTimeoutMs } : {}),
      ...(frame.memberId !== undefined ? { memberId: frame.memberId } : {}),
      channel: sub,
    });
    sub.joined(frame.id, memberId);
  })().catch((err: unknown) => {
    if (!sub.active) return;
    sub.stop();
    if (conn.subscriptions.get(frame.sub) === sub) conn.subscriptions.delete(frame.sub);
    const e = toTributaryError(err);
    if (e.code === "INTERNAL") ctx.log.error("ws.group_join.failed", { group: frame.group, error: e.message });
    conn.sendError(e.code, e.message, ids);
  });
}

/** Presence is a permission of its own: a subscription without it stays silent rather than failing (presence is on by default in the SDK). */
function mayBePresent(ctx: HandlerContext, conn: WsConnection, topic: string): boolean {
  return ctx.wsAuth.allowed(conn, (a, id) => a.canPresence(id, topic));
}
