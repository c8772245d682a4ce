import { TributaryError } from "../../errors.ts";
import net from "node:net";
import tls from "node:tls";
import type { TemplatedApp } from "uWebSockets.js";
import type { Gateway, GatewayContext } from "../gateway-context.ts";
import type { TlsCertificates } from "../tls/tls-certificates.ts";
import { OriginPolicy, refuseForeignOrigin } from "../http/origin-policy.ts";
import { MqttCore } from "./mqtt-core.ts";
import { TcpTransport, WsTransport, type WsUserData } from "./transport.ts";

export interface MqttGateway extends Gateway {
  /** Port the plain MQTT/TCP listener is bound to; 0 when there is none (`tls.require`). */
  port: number;
  /** Port the MQTTS listener is bound to; 0 without TLS. */
  tlsPort: number;
}

export interface MqttListenOptions {
  /** With a certificate: MQTTS on `config.mqtt.tlsPort`, taking every reloaded certificate for new connections. */
  tls?: TlsCertificates;
  /** No plain TCP listener (config `tls.require`). */
  requireTls?: boolean;
}

/**
 * Starts the MQTT gateway: MQTT over TCP on `config.host:config.mqtt.port` (unless
 * `requireTls`), MQTTS on `config.mqtt.tlsPort` when given a certificate (0 = a free
 * port), and MQTT over WebSocket on the given uWS app at `/mqtt` (WSS when the app is an
 * SSLApp; subprotocol `mqtt`; a browser `Origin` other than the node's own or one in
 * `ws.allowedOrigins` gets HTTP 403). All feed the same per-connection parser and share
 * sessions, retained messages and live tails (docs/mqtt.md).
 */
export async function startMqttGateway(app: TemplatedApp, ctx: GatewayContext, options: MqttListenOptions = {}): Promise<MqttGateway> {
  const core = await MqttCore.create(ctx);
  const onSocket = (socket: net.Socket) => {
    socket.setNoDelay(true);
    const conn = core.open(new TcpTransport(socket));
    socket.on("data", (data: Buffer) => conn.onData(data));
    socket.on("close", () => conn.onTransportClose());
    socket.on("error", () => conn.onTransportClose());
  };
  const servers: net.Server[] = [];
  let port = 0;
  let tlsPort = 0;
  const { tls: certs } = options;
  const onCertificate = () => {
    if (tlsServer) tlsServer.setSecureContext(certs!.secureContextOptions());
  };
  let tlsServer: tls.Server | undefined;
  try {
    if (!options.requireTls) {
      const server = net.createServer({ noDelay: true }, onSocket);
      servers.push(server);
      port = await listen(server, ctx, ctx.config.mqtt.port, "MQTT", "--mqtt-port");
    }
    if (certs) {
      tlsServer = tls.createServer({ ...certs.secureContextOptions(), noDelay: true }, onSocket);
      // Handshake failures (a client that does not trust the certificate, a plain MQTT client on the TLS port) end that socket only.
      tlsServer.on("tlsClientError", (err) => ctx.log.debug("mqtt.tls_client_error", { message: err.message }));
      servers.push(tlsServer);
      tlsPort = await listen(tlsServer, ctx, ctx.config.mqtt.tlsPort, "MQTTS", "--mqtt-tls-port");
      certs.on("change", onCertificate);
    }
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))); // the listen error is what matters
    await core.close();
    throw err;
  }

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

  ctx.log.info("mqtt.listening", { host: ctx.config.host, port: port || "off", tlsPort: tlsPort || "off" });

  return {
    port,
    tlsPort,
    connectionCounts: () => ({ ...core.openByKind }),
    async close() {
      certs?.off("change", onCertificate);
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      await core.close();
      await closed;
    },
  };
}

/** Listens on `config.host:port`; resolves with the bound port. */
async function listen(server: net.Server, ctx: GatewayContext, port: number, what: string, flag: string): Promise<number> {
  const { host } = ctx.config;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") reject(new TributaryError("UNAVAILABLE", `${what} port ${host}:${port} is in use (another node?); choose another ${flag}, or 0 for a free port`, { host, port }, { cause: err }));
      else reject(new TributaryError("UNAVAILABLE", `cannot listen for ${what} on ${host}:${port}: ${err.message}`, { host, port }, { cause: err }));
    });
    server.listen(port, host, () => {
      server.removeAllListeners("error");
      resolve();
    });
  });
  const address = server.address();
  return typeof address === "object" && address ? address.port : port;
}
