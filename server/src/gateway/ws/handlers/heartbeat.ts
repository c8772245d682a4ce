import type { HeartbeatFrame } from "@tributary/client/protocol";
import { isTributaryError, toTributaryError } from "../../../errors.ts";
import { GroupSubscription } from "../group-subscription.ts";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/**
 * `heartbeat`: keeps a group member alive (the gateway already heartbeats members of live
 * connections; this is for clients tying liveness to their own loop). No reply; a member
 * that is gone gets `error` {sub, UNKNOWN_MEMBER}.
 */
export function handleHeartbeat(ctx: HandlerContext, conn: WsConnection, frame: HeartbeatFrame): void {
  const sub = conn.subscriptions.get(frame.sub);
  if (!(sub instanceof GroupSubscription) || sub.memberId === "" || !ctx.groups) return;
  ctx.groups.heartbeat(sub.group, sub.memberId).catch((err: unknown) => {
    if (isTributaryError(err, "UNKNOWN_MEMBER")) sub.removed();
    else conn.sendError(toTributaryError(err).code, toTributaryError(err).message, { sub: frame.sub });
  });
}
