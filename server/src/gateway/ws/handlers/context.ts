import type { ClientFrame } from "@tributary/client/protocol";
import type { WsConnection } from "../ws-connection.ts";
import type { GatewayContext } from "../../gateway-context.ts";
import type { WsPresenceHub } from "../presence-hub.ts";
import type { WsAuth } from "../ws-auth.ts";
import type { WsDeliveryEnv } from "../ws-subscription.ts";

/** What every op handler gets: the gateway context plus delivery (the broker's feeds, native fan-out) and the presence hub. */
export interface HandlerContext extends GatewayContext {
  delivery: WsDeliveryEnv;
  presenceHub: WsPresenceHub;
  /** Identities and permission checks of this gateway's connections. */
  wsAuth: WsAuth;
  /** Handles frames that waited for the `hello` token to be verified, in order. */
  replay(conn: WsConnection, frames: ClientFrame[]): void;
}
