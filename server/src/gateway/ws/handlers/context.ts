import type { GatewayContext } from "../../gateway-context.ts";
import type { FeedRegistry } from "../partition-feed.ts";
import type { WsPresenceHub } from "../presence-hub.ts";

/** What every op handler gets: the gateway context plus the node's shared partition feeds and presence hub. */
export interface HandlerContext extends GatewayContext {
  feeds: FeedRegistry;
  presenceHub: WsPresenceHub;
}
