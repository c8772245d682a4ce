import type { GatewayContext } from "../../gateway-context.ts";
import type { WsPresenceHub } from "../presence-hub.ts";
import type { WsDeliveryEnv } from "../ws-subscription.ts";

/** What every op handler gets: the gateway context plus delivery (the broker's feeds, native fan-out) and the presence hub. */
export interface HandlerContext extends GatewayContext {
  delivery: WsDeliveryEnv;
  presenceHub: WsPresenceHub;
}
