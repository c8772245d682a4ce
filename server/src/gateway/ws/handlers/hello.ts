import { CLOSE_CODES, FEATURES, PROTOCOL_VERSION, type HelloFrame } from "@tributary/client/protocol";
import { randomUUID } from "node:crypto";
import type { Identity } from "../../../auth/index.ts";
import { toTributaryError } from "../../../errors.ts";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/**
 * `hello` → `welcome` with the session and the limits the client must respect. Must be the
 * first frame, once. Its `token` proves the connection's identity (ws-auth.ts): refused
 * with an `error` UNAUTHORIZED (close 4501) or TOKEN_EXPIRED (close 4003). Frames sent
 * after `hello` while its token is being verified are handled in order once it is.
 */
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
  conn.sessionId = randomUUID();
  conn.clientId = frame.clientId ?? conn.sessionId;
  let identity: Identity | Promise<Identity> | undefined;
  try {
    // The peer's address, read while the socket is surely open: a refused token counts against it.
    const address = frame.token ? Buffer.from(conn.ws.getRemoteAddressAsText()).toString() : null;
    identity = ctx.wsAuth.authenticate(frame.token, conn.clientId, address);
  } catch (err) {
    refuse(conn, frame, err);
    return;
  }
  if (!(identity instanceof Promise)) {
    welcome(ctx, conn, frame, identity ?? null);
    return;
  }
  conn.awaitingAuth = [];
  identity.then(
    (id) => {
      const queued = conn.awaitingAuth ?? [];
      conn.awaitingAuth = null;
      if (!conn.open) return;
      welcome(ctx, conn, frame, id);
      ctx.replay(conn, queued);
    },
    (err: unknown) => {
      conn.awaitingAuth = null;
      refuse(conn, frame, err);
    },
  );
}

function refuse(conn: WsConnection, frame: HelloFrame, err: unknown): void {
  const e = toTributaryError(err);
  const code = e.code === "TOKEN_EXPIRED" ? "TOKEN_EXPIRED" : "UNAUTHORIZED";
  conn.fail(code, e.message, code === "TOKEN_EXPIRED" ? CLOSE_CODES.TOKEN_EXPIRED : CLOSE_CODES.UNAUTHORIZED, { id: frame.id });
}

function welcome(ctx: HandlerContext, conn: WsConnection, frame: HelloFrame, identity: Identity | null): void {
  conn.identity = identity;
  conn.feedFrames = frame.features?.includes(FEATURES.FEED) ?? false;
  conn.ackBatches = frame.features?.includes(FEATURES.ACKS) ?? false;
  // Presence shows who the identity is; a client-chosen `user` only where nobody is checked (open mode).
  const open = identity === null || ctx.wsAuth.service?.mode === "open";
  ctx.presenceHub.setUser(conn, identity?.subject ?? (open ? (frame.user ?? null) : null));
  ctx.wsAuth.attach(conn);
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
