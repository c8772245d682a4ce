import type { CreditFrame } from "@tributary/client/protocol";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/** `credit` grants a subscription more messages (capped at `limits.maxCredit`). Credit for an unknown `sub` (a race with unsubscribe) is ignored. */
export function handleCredit(_ctx: HandlerContext, conn: WsConnection, frame: CreditFrame): void {
  conn.subscriptions.get(frame.sub)?.addCredit(frame.credit);
}
