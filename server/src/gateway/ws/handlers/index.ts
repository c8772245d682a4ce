import type { ClientFrame, PublishFrame } from "@tributary/client/protocol";
import { forbidden } from "../../../auth/index.ts";
import { internalTopicRefusal } from "../../../broker/internal-topics.ts";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";
import { handleCommit } from "./commit.ts";
import { handleCredit } from "./credit.ts";
import { handleHeartbeat } from "./heartbeat.ts";
import { handleHello } from "./hello.ts";
import { handlePing } from "./ping.ts";
import { handlePresence } from "./presence.ts";
import { handlePublish } from "./publish.ts";
import { handleSubscribe } from "./subscribe.ts";
import { handleRevoked } from "./revoked.ts";
import { handleUnsubscribe } from "./unsubscribe.ts";

export type { HandlerContext } from "./context.ts";

type Handlers = { [Op in ClientFrame["op"]]: (ctx: HandlerContext, conn: WsConnection, frame: Extract<ClientFrame, { op: Op }>) => void };

const HANDLERS: Handlers = {
  hello: handleHello,
  publish: publishUnlessInternal,
  subscribe: handleSubscribe,
  unsubscribe: handleUnsubscribe,
  credit: handleCredit,
  ping: handlePing,
  revoked: handleRevoked,
  commit: handleCommit,
  heartbeat: handleHeartbeat,
  presence: handlePresence,
};

/**
 * `publish` to an internal topic is refused with FORBIDDEN (broker/internal-topics.ts), and
 * one the identity may not produce (`canProduce` for the topic and key) too, before the
 * publish handler sees it.
 */
function publishUnlessInternal(ctx: HandlerContext, conn: WsConnection, frame: PublishFrame): void {
  const refusal = internalTopicRefusal(frame.topic, "produce");
  if (refusal) {
    conn.sendError(refusal.code, refusal.message, { id: frame.id });
    return;
  }
  if (!ctx.wsAuth.allowed(conn, (a, id) => a.canProduce(id, frame.topic, frame.key ?? null))) {
    const e = forbidden(conn.identity!, "produce", frame.topic);
    conn.sendError(e.code, e.message, { id: frame.id });
    return;
  }
  handlePublish(ctx, conn, frame);
}

/** Dispatches a validated frame to its op's handler (one file per op). */
export function dispatch(ctx: HandlerContext, conn: WsConnection, frame: ClientFrame): void {
  (HANDLERS[frame.op] as (ctx: HandlerContext, conn: WsConnection, frame: ClientFrame) => void)(ctx, conn, frame);
}
