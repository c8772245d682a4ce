import { Decoder } from "cbor-x";
import uWS from "uWebSockets.js";
import {
  CLOSE_CODES,
  decodeFrame,
  FrameValidationError,
  parseClientFrame,
  SUBPROTOCOL_CBOR,
  SUBPROTOCOL_JSON,
  WS_PATH,
  type ClientFrame,
  type WireFormat,
} from "@tributary/client/protocol";
import type { Gateway, GatewayContext } from "../gateway-context.ts";
import { OriginPolicy, refuseForeignOrigin } from "../http/origin-policy.ts";
import { dispatch, type HandlerContext } from "./handlers/index.ts";
import { ConnectionLimit } from "../connection-limit.ts";
import { NativeFanout } from "./native-fanout.ts";
import { WsPresenceHub } from "./presence-hub.ts";
import { decodePublishCbor } from "./publish-decoder.ts";
import { WsAuth } from "./ws-auth.ts";
import { clientLimitsFor, retryAfterSeconds, type ConnectionLease } from "../limits/index.ts";
import { WsConnection, type SocketData, type WsGatewayStats } from "./ws-connection.ts";

export interface WsGatewayOptions {
  /** Seconds without traffic before uWS closes the socket; it pings automatically before that. Default 60. */
  idleTimeoutSeconds?: number;
}

/** The mounted SDK gateway. Besides `close()`, a few hooks for operators and tests. */
export interface WsGateway extends Gateway {
  /** Open SDK connections. */
  readonly connectionCount: number;
  /** Shared live feeds (partitions with subscribers at the live edge). */
  readonly feedCount: number;
  /** Subscriptions (partitions) attached to a feed's native uWS pub/sub fan-out. */
  readonly nativeFeedMembers: number;
  /** Drops every connection without a close frame, as a network failure would. */
  terminateAll(): void;
  /** Drops the connection of `sessionId` (from `welcome`) without a close frame; false if unknown. */
  terminate(sessionId: string): boolean;
}

const SUBPROTOCOLS: Record<string, WireFormat> = { [SUBPROTOCOL_CBOR]: "cbor", [SUBPROTOCOL_JSON]: "json" };

/** `decodeFrame`'s CBOR decoder, but byte strings come out as copies (not views of the input). */
const cborFromView = new Decoder({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

/**
 * Mounts the SDK WebSocket endpoint (`WS_PATH`) on `app`: subprotocol negotiation
 * (`tributary.v1` CBOR binary, `tributary.v1.json` text; anything else is refused with
 * HTTP 400; a browser `Origin` other than the node's own or one in `ws.allowedOrigins` gets
 * HTTP 403, see http/origin-policy.ts), frame validation, the op handlers (handlers/), per-subscription credit,
 * socket backpressure and slow-consumer eviction, and the shared per-partition feeds.
 *
 * A frame larger than `limits.maxFrameBytes` gets `error` FRAME_TOO_LARGE and a close
 * with CLOSE_CODES.FRAME_TOO_LARGE (uWS itself accepts up to twice that, so the client
 * hears why; beyond it uWS closes with 1009). Bad frames get an `error` naming the
 * problem and leave the connection open; any frame before `hello` closes it with
 * PROTOCOL_ERROR. Nothing a client sends can affect another connection.
 */
/** Decodes and validates a client frame the generic way; throws FrameValidationError naming what is wrong. */
function decodeClientFrame(format: WireFormat, message: ArrayBuffer, isBinary: boolean): ClientFrame {
  if (format === "cbor" && !isBinary) throw new FrameValidationError("MALFORMED_FRAME", `text frame on the binary subprotocol ${SUBPROTOCOL_CBOR}`);
  let decoded: unknown;
  try {
    // CBOR is decoded straight from uWS's buffer (valid during this callback only): the
    // decoder copies byte fields out, so the frame itself is never copied.
    decoded = format === "cbor" ? cborFromView.decode(new Uint8Array(message)) : decodeFrame(Buffer.from(message).toString("utf8"), "json");
  } catch (err) {
    throw new FrameValidationError("MALFORMED_FRAME", `undecodable ${format.toUpperCase()} frame: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseClientFrame(decoded);
}

export function attachWsGateway(app: uWS.TemplatedApp, ctx: GatewayContext, options: WsGatewayOptions = {}): WsGateway {
  const { limits } = ctx.config;
  const origins = OriginPolicy.of(ctx.config);
  const native = new NativeFanout((topic, message, isBinary) => {
    app.publish(topic, message, isBinary);
  });
  const delivery = { broker: ctx.broker, feeds: ctx.broker.feeds, log: ctx.log, native, protocol: "ws" as const };
  const presenceHub = new WsPresenceHub(ctx.presence, ctx.nodeId, ctx.log, () => ctx.broker.metrics.backgroundErrors.inc({ task: "presence-leave" }));
  const connections = new Set<WsConnection>();
  // Limits tied to IP and identity (docs/security.md#limits): per address at the upgrade
  // below (429 before upgrading), per identity at hello (WsAuth.attach), publish rates (handlers/publish.ts).
  const clientLimits = clientLimitsFor(ctx.broker, ctx.config, ctx.auth);
  /** The per-address lease of an upgraded socket rides in its user data (uWS copies that object's fields), released at close. */
  type PeerData = SocketData & { peer?: { lease: ConnectionLease; closed: boolean } };
  const wsAuth = new WsAuth(ctx.auth, connections, presenceHub, ctx.log, clientLimits);
  const handle = (conn: WsConnection, frame: ClientFrame) => {
    try {
      dispatch(handlerCtx, conn, frame);
    } catch (err) {
      ctx.log.error("ws.handler.failed", { op: frame.op, error: err instanceof Error ? err.message : String(err) });
      conn.sendError("INTERNAL", "internal error", "id" in frame ? { id: frame.id } : {});
    }
  };
  const handlerCtx: HandlerContext = {
    ...ctx,
    delivery,
    presenceHub,
    wsAuth,
    replay: (conn, frames) => {
      for (const frame of frames) if (conn.open) handle(conn, frame);
    },
  };
  const limit = ctx.connections ?? new ConnectionLimit(limits.maxConnections);
  let closing = false;
  const connectionLimits = { maxBufferedBytes: limits.maxBufferedBytes, slowConsumerGraceMs: limits.slowConsumerGraceMs };
  const metrics = ctx.broker.metrics;
  const stats: WsGatewayStats = {
    delivered: 0,
    onError: (code) => metrics.protocolErrors.inc({ gateway: "ws", code }),
    onSlowConsumer: (conn, reason) => {
      metrics.slowConsumerDisconnects.inc({ gateway: "ws" });
      ctx.log.info("ws.slow_consumer", { client: conn.clientId, session: conn.sessionId, reason });
    },
    onPause: () => metrics.traffic.backpressurePauses.inc({ gateway: "ws" }),
  };
  metrics.addDeliverySource("ws", () => stats.delivered);
  metrics.connections.set({ gateway: "ws" }, 0);
  metrics.addSubscriptionSource("ws", () => {
    let n = 0;
    for (const conn of connections) n += conn.subscriptions.size;
    return n;
  });

  app.ws<SocketData>(WS_PATH, {
    compression: uWS.DISABLED,
    maxPayloadLength: limits.maxFrameBytes * 2,
    // Headroom above maxBufferedBytes: we pause at the limit and check after every send,
    // so uWS never has to drop a frame (a drop would be a silent gap).
    maxBackpressure: limits.maxBufferedBytes + 2 * limits.maxFrameBytes + (1 << 20),
    closeOnBackpressureLimit: 0,
    idleTimeout: options.idleTimeoutSeconds ?? 60,
    sendPingsAutomatically: true,

    upgrade(res, req, context) {
      if (closing) {
        res.writeStatus("503 Service Unavailable").end("Tributary node is shutting down\n");
        return;
      }
      if (refuseForeignOrigin(res, req, origins, WS_PATH)) return;
      if (limit.full) {
        res.writeStatus("503 Service Unavailable").writeHeader("retry-after", "5").end(`too many connections: this node takes at most ${limit.max} (limits.maxConnections, below the open-file limit)\n`);
        return;
      }
      const address = Buffer.from(res.getRemoteAddressAsText()).toString();
      const peer = { lease: { release() {} } as ConnectionLease, closed: false };
      const admitted = clientLimits.admitPeer(address, "ws", () => !peer.closed);
      if (!admitted.ok) {
        ctx.log.info("ws.upgrade.limited", { remote: address, limit: admitted.refusal.limit, error: admitted.refusal.message });
        res.writeStatus("429 Too Many Requests").writeHeader("retry-after", String(retryAfterSeconds(admitted.refusal.retryAfterMs))).writeHeader("content-type", "text/plain").end(`${admitted.refusal.message}\n`);
        return;
      }
      const offered = req
        .getHeader("sec-websocket-protocol")
        .split(",")
        .map((p) => p.trim())
        .filter((p) => p.length > 0);
      const chosen = offered.find((p) => SUBPROTOCOLS[p] !== undefined);
      if (chosen === undefined) {
        res
          .writeStatus("400 Bad Request")
          .writeHeader("content-type", "text/plain")
          .end(`Unsupported WebSocket subprotocol ${offered.length ? offered.join(", ") : "(none)"}: use ${SUBPROTOCOL_CBOR} (CBOR) or ${SUBPROTOCOL_JSON} (JSON)\n`);
        admitted.lease.release();
        return;
      }
      peer.lease = admitted.lease;
      res.upgrade<PeerData>(
        { format: SUBPROTOCOLS[chosen]!, conn: null, peer },
        req.getHeader("sec-websocket-key"),
        chosen,
        req.getHeader("sec-websocket-extensions"),
        context,
      );
    },

    open(ws) {
      const conn = new WsConnection(ws, connectionLimits, stats, (c) => {
        connections.delete(c);
        limit.closed();
        metrics.connections.dec({ gateway: "ws" });
        presenceHub.connectionGone(c);
        wsAuth.detach(c);
      });
      ws.getUserData().conn = conn;
      connections.add(conn);
      limit.opened();
      metrics.connections.inc({ gateway: "ws" });
      if (closing) conn.disconnect("UNAVAILABLE", "node shutting down", true, CLOSE_CODES.SHUTDOWN);
    },

    message(ws, message, isBinary) {
      const conn = ws.getUserData().conn;
      if (!conn || !conn.open) return;
      if (message.byteLength > limits.maxFrameBytes) {
        conn.fail("FRAME_TOO_LARGE", `frame of ${message.byteLength} bytes exceeds limits.maxFrameBytes (${limits.maxFrameBytes})`, CLOSE_CODES.FRAME_TOO_LARGE);
        return;
      }
      let frame: ClientFrame;
      try {
        // `publish` in CBOR, the frame sent most, skips the generic codec (publish-decoder.ts).
        frame = (conn.format === "cbor" && isBinary ? decodePublishCbor(new Uint8Array(message)) : null) ?? decodeClientFrame(conn.format, message, isBinary);
      } catch (err) {
        const e = err instanceof FrameValidationError ? err : new FrameValidationError("MALFORMED_FRAME", String(err));
        if (!conn.hello) conn.fail(e.code, `${e.message} (the first frame must be a valid hello)`, CLOSE_CODES.PROTOCOL_ERROR, { id: e.id });
        else conn.sendError(e.code, e.message, { id: e.id, sub: e.sub });
        return;
      }
      if (!conn.hello && frame.op !== "hello") {
        conn.fail("BAD_REQUEST", `the first frame must be hello, got ${frame.op}`, CLOSE_CODES.PROTOCOL_ERROR, "id" in frame ? { id: frame.id } : {});
        return;
      }
      if (conn.awaitingAuth !== null) {
        // The hello token is being verified: keep the order, bounded like pending publishes.
        if (conn.awaitingAuth.length >= limits.maxPendingPublishes) {
          conn.fail("POLICY_VIOLATION", `more than ${limits.maxPendingPublishes} frames sent before the hello token was verified`, CLOSE_CODES.PROTOCOL_ERROR);
          return;
        }
        conn.awaitingAuth.push(frame);
        return;
      }
      handle(conn, frame);
    },

    drain(ws) {
      ws.getUserData().conn?.onDrain();
    },

    close(ws) {
      const data = ws.getUserData();
      const peer = (data as PeerData).peer;
      if (peer) {
        peer.closed = true;
        peer.lease.release();
      }
      data.conn?.closed();
      data.conn = null;
    },
  });

  return {
    get connectionCount() {
      return connections.size;
    },
    connectionCounts: () => ({ ws: connections.size }),
    get feedCount() {
      return ctx.broker.feeds.size;
    },
    get nativeFeedMembers() {
      return native.size;
    },
    terminateAll() {
      for (const conn of [...connections]) conn.terminate();
    },
    terminate(sessionId) {
      for (const conn of connections) {
        if (conn.sessionId === sessionId) {
          conn.terminate();
          return true;
        }
      }
      return false;
    },
    async close() {
      closing = true;
      for (const conn of [...connections]) conn.disconnect("UNAVAILABLE", "node shutting down", true, CLOSE_CODES.SHUTDOWN);
      presenceHub.close();
      wsAuth.shutdown();
    },
  };
}
