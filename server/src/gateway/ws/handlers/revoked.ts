import type { RevokedFrame } from "@tributary/client/protocol";
import { GroupSubscription } from "../group-subscription.ts";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/** `revoked`: the client stopped (and committed) the partitions of a `revoke`; the coordinator may hand them on. No reply. */
export function handleRevoked(_ctx: HandlerContext, conn: WsConnection, frame: RevokedFrame): void {
  const sub = conn.subscriptions.get(frame.sub);
  if (sub instanceof GroupSubscription) sub.confirmRevoke(frame.generation);
}
