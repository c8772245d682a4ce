import { CLOSE_CODES, FEATURES, PROTOCOL_VERSION, type HelloFrame } from "@tributary/client/protocol";
import { randomUUID } from "node:crypto";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/** `hello` → `welcome` with the session and the limits the client must respect. Must be the first frame, once. */
export function handleHello(ctx: HandlerContext, conn: WsConnection, frame: HelloFrame): void {
  if (conn.hello) {
    conn.sendError("BAD_REQUEST", "hello was already received on this connection", { id: frame.id });
    return;
  }
  if (frame.protocol !== PROTOCOL_VERSION) {
    conn.fail("BAD_REQUEST", `protocol version ${frame.protocol} is not supported; this server speaks ${PROTOCOL_VERSION}`, CLOSE_CODES.PROTOCOL_ERROR, { id: frame.id });
    return;
  }
  conn.hello = true;
  conn.feedFrames = frame.features?.includes(FEATURES.FEED) ?? false;
  conn.ackBatches = frame.features?.includes(FEATURES.ACKS) ?? false;
  conn.sessionId = randomUUID();
  conn.clientId = frame.clientId ?? conn.sessionId;
  ctx.presenceHub.setUser(conn, frame.user ?? null);
  const { limits } = ctx.config;
  conn.send({
    op: "welcome",
    id: frame.id,
    sessionId: conn.sessionId,
    clientId: conn.clientId,
    node: ctx.nodeId,
    limits: {
      maxFrameBytes: limits.maxFrameBytes,
      maxRecordBytes: limits.maxRecordBytes,
      maxSubscriptions: limits.maxSubscriptionsPerConnection,
      defaultCredit: limits.defaultCredit,
      maxCredit: limits.maxCredit,
    },
  });
}
