import type { ClientFrame } from "@tributary/client/protocol";
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
  publish: handlePublish,
  subscribe: handleSubscribe,
  unsubscribe: handleUnsubscribe,
  credit: handleCredit,
  ping: handlePing,
  revoked: handleRevoked,
  commit: handleCommit,
  heartbeat: handleHeartbeat,
  presence: handlePresence,
};

/** Dispatches a validated frame to its op's handler (one file per op). */
export function dispatch(ctx: HandlerContext, conn: WsConnection, frame: ClientFrame): void {
  (HANDLERS[frame.op] as (ctx: HandlerContext, conn: WsConnection, frame: ClientFrame) => void)(ctx, conn, frame);
}
