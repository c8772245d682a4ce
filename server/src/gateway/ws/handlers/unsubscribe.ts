import type { UnsubscribeFrame } from "@tributary/client/protocol";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/** `unsubscribe` → `unsubscribed`; no `message` for the subscription follows. Idempotent: an unknown `sub` is acknowledged too. */
export function handleUnsubscribe(_ctx: HandlerContext, conn: WsConnection, frame: UnsubscribeFrame): void {
  const sub = conn.subscriptions.get(frame.sub);
  if (sub) {
    sub.stop();
    conn.subscriptions.delete(frame.sub);
  }
  conn.send({ op: "unsubscribed", id: frame.id, sub: frame.sub });
}
