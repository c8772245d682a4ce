import type { GatewayContext } from "../../gateway-context.ts";
import type { FeedRegistry } from "../partition-feed.ts";

/** What every op handler gets: the gateway context plus the node's shared partition feeds. */
export interface HandlerContext extends GatewayContext {
  feeds: FeedRegistry;
}
