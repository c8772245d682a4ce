import { TributaryError } from "../../errors.ts";
import net from "node:net";
import type { TemplatedApp } from "uWebSockets.js";
import type { Gateway, GatewayContext } from "../gateway-context.ts";
import { OriginPolicy, refuseForeignOrigin } from "../http/origin-policy.ts";
import { MqttCore } from "./mqtt-core.ts";
import { TcpTransport, WsTransport, type WsUserData } from "./transport.ts";

export interface MqttGateway extends Gateway {
  /** Port the MQTT/TCP listener is bound to. */
  port: number;
}

/**
 * Starts the MQTT gateway: MQTT over TCP on `config.host:config.mqtt.port` (0 = a free
 * port) and MQTT over WebSocket on the given uWS app at `/mqtt` (subprotocol `mqtt`; a
 * browser `Origin` other than the node's own or one in `ws.allowedOrigins` gets HTTP 403).
 * Both feed the same per-connection parser and share sessions, retained messages and
 * live tails (docs/mqtt.md).
 */
export async function startMqttGateway(app: TemplatedApp, ctx: GatewayContext): Promise<MqttGateway> {
  const core = await MqttCore.create(ctx);

  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    const conn = core.open(new TcpTransport(socket));
    socket.on("data", (data: Buffer) => conn.onData(data));
    socket.on("close", () => conn.onTransportClose());
    socket.on("error", () => conn.onTransportClose());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const { host } = ctx.config;
      const { port } = ctx.config.mqtt;
      if (err.code === "EADDRINUSE") reject(new TributaryError("UNAVAILABLE", `MQTT port ${host}:${port} is in use (another node?); choose another --mqtt-port, or 0 for a free port`, { host, port }, { cause: err }));
      else reject(new TributaryError("UNAVAILABLE", `cannot listen for MQTT on ${host}:${port}: ${err.message}`, { host, port }, { cause: err }));
    });
    server.listen(ctx.config.mqtt.port, ctx.config.host, () => {
      server.removeAllListeners("error");
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : ctx.config.mqtt.port;

  const origins = OriginPolicy.of(ctx.config);
  app.ws<WsUserData>("/mqtt", {
    compression: 0,
    maxPayloadLength: ctx.config.mqtt.maxPacketBytes + 8,
    maxBackpressure: 64 * 1024 * 1024,
    idleTimeout: 0,
    upgrade: (res, req, context) => {
      if (refuseForeignOrigin(res, req, origins, "/mqtt")) return;
      const offered = req
        .getHeader("sec-websocket-protocol")
        .split(",")
        .map((p) => p.trim());
      const chosen = offered.find((p) => p === "mqtt" || p === "mqttv3.1");
      if (!chosen || core.closing) {
        res.writeStatus(core.closing ? "503 Service Unavailable" : "400 Bad Request").end(core.closing ? "shutting down" : 'MQTT over WebSocket needs the "mqtt" subprotocol');
        return;
      }
      res.upgrade<WsUserData>({ connection: null }, req.getHeader("sec-websocket-key"), chosen, req.getHeader("sec-websocket-extensions"), context);
    },
    open: (ws) => {
      const transport = new WsTransport(ws);
      ws.getUserData().connection = core.open(transport);
    },
    message: (ws, message, isBinary) => {
      const conn = ws.getUserData().connection;
      if (!conn) return;
      if (!isBinary) {
        // MQTT over WebSocket is binary only [MQTT-6.0.0-1].
        conn.close("text-frame");
        return;
      }
      conn.onData(Buffer.from(new Uint8Array(message)));
    },
    drain: (ws) => ws.getUserData().connection?.transport.onDrain?.(),
    close: (ws) => {
      const conn = ws.getUserData().connection;
      if (!conn) return;
      conn.transport.markClosed?.();
      conn.onTransportClose();
    },
  });

  ctx.log.info("mqtt.listening", { host: ctx.config.host, port });

  return {
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await core.close();
      await closed;
    },
  };
}
