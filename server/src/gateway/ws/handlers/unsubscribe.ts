import type { UnsubscribeFrame } from "@tributary/client/protocol";
import { GroupSubscription } from "../group-subscription.ts";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/**
 * `unsubscribe` → `unsubscribed`; no `message` for the subscription follows. Idempotent: an
 * unknown `sub` is acknowledged too. A group subscription leaves its group now (commit
 * first); a presence subscription leaves the topic's presence now (when it was the
 * client's last one there).
 */
export function handleUnsubscribe(ctx: HandlerContext, conn: WsConnection, frame: UnsubscribeFrame): void {
  const sub = conn.subscriptions.get(frame.sub);
  if (sub) {
    ctx.presenceHub.release(sub, true);
    if (sub instanceof GroupSubscription) void sub.leave();
    else sub.stop();
    conn.subscriptions.delete(frame.sub);
  }
  conn.send({ op: "unsubscribed", id: frame.id, sub: frame.sub });
}
