import type { Broker } from "../../broker/broker.ts";
import type { TributaryConfig } from "../../config/config.ts";
import type { Logger } from "../../logger.ts";
import type { GatewayContext } from "../gateway-context.ts";
import { ConnectionLimit } from "../connection-limit.ts";
import { MqttConnection } from "./connection.ts";
import { MqttAuth } from "./mqtt-auth.ts";
import { TopicDirectory } from "./delivery/topic-directory.ts";
import { RC } from "./reason-codes.ts";
import { headersForPublish } from "./record-mapping.ts";
import { RetainedStore } from "./retained-store.ts";
import { SessionManager, type WillMessage } from "./session/session-manager.ts";
import { SessionStore } from "./session/session-store.ts";
import { logTopicFor } from "./topic-mapping.ts";
import type { MqttTransport } from "./transport.ts";

const enc = new TextEncoder();

/**
 * State shared by every MQTT connection of the gateway (TCP and WebSocket alike):
 * sessions, retained messages, live fanouts, the topic directory, keep-alive sweeping.
 */
export class MqttCore {
  readonly broker: Broker;
  readonly log: Logger;
  readonly config: TributaryConfig;
  readonly maxPacketBytes: number;
  readonly receiveMaximum: number;
  readonly maxBufferedBytes: number;
  readonly slowConsumerGraceMs: number;
  readonly maxPendingPublishes: number;
  readonly directory: TopicDirectory;
  readonly retained: RetainedStore;
  readonly sessions: SessionManager;
  readonly connections = new Set<MqttConnection>();
  /** Open connections by transport: MQTT over TCP (and TLS) and MQTT over WebSocket. */
  readonly openByKind: Record<"mqtt" | "mqtt-ws", number> = { mqtt: 0, "mqtt-ws": 0 };
  /** The node's connection budget (shared with the WebSocket gateway). */
  readonly limit: ConnectionLimit;
  /** PUBLISH packets sent to subscribers (read by the metrics at scrape time). */
  delivered = 0;
  /** Connection currently owning each client id. */
  readonly byClientId = new Map<string, MqttConnection>();
  closing = false;
  /** The auth layer when the node enforces authentication; null in open mode (nothing asked, as before auth existed). */
  readonly auth: MqttAuth | null;
  readonly #keepAliveTimer: NodeJS.Timeout;

  private constructor(ctx: GatewayContext) {
    this.broker = ctx.broker;
    this.log = ctx.log;
    this.config = ctx.config;
    this.maxPacketBytes = ctx.config.mqtt.maxPacketBytes;
    this.receiveMaximum = ctx.config.mqtt.receiveMaximum;
    this.maxBufferedBytes = ctx.config.limits.maxBufferedBytes;
    this.limit = ctx.connections ?? new ConnectionLimit(ctx.config.limits.maxConnections);
    this.slowConsumerGraceMs = ctx.config.limits.slowConsumerGraceMs;
    this.maxPendingPublishes = ctx.config.limits.maxPendingPublishes;
    this.auth = ctx.auth && ctx.auth.mode === "enforced" ? new MqttAuth(ctx.auth, this.log, () => this.connections) : null;
    this.directory = new TopicDirectory(this.broker, this.log);
    this.retained = new RetainedStore(this.broker, this.log);
    const deps = { broker: this.broker, delivery: { broker: this.broker, feeds: this.broker.feeds, log: this.log, protocol: "mqtt" as const }, log: this.log };
    const shareGroups = ctx.groups ? { coordinator: ctx.groups, nodeId: ctx.nodeId } : null; // `$share` = consumer groups (docs/mqtt.md)
    this.sessions = new SessionManager(deps, new SessionStore(this.broker, this.log), this.directory, this.log, (clientId, will) => this.publishWill(clientId, will), shareGroups);
    const metrics = this.broker.metrics;
    metrics.addDeliverySource("mqtt", () => this.delivered);
    metrics.addSubscriptionSource("mqtt", () => {
      let n = 0;
      for (const conn of this.connections) n += conn.session?.subs.size ?? 0;
      return n;
    });
    metrics.connections.set({ gateway: "mqtt" }, 0);
    metrics.connections.set({ gateway: "mqtt-ws" }, 0);
    metrics.groups.setMqttSource({
      sessions: () => this.sessions.sessions.values(),
      // $share groups: consumer groups (members per session) or, without a coordinator, the manager's own.
      sharedGroups: () => {
        const names = new Set<string>(this.sessions.groups.keys());
        for (const session of this.sessions.sessions.values()) for (const member of session.groupMembers.values()) names.add(member.group);
        return names.size;
      },
    });
    this.#keepAliveTimer = setInterval(() => this.#sweepKeepAlive(), 500);
    this.#keepAliveTimer.unref();
  }

  static async create(ctx: GatewayContext): Promise<MqttCore> {
    const core = new MqttCore(ctx);
    await core.retained.load();
    await core.sessions.load();
    return core;
  }

  open(transport: MqttTransport): MqttConnection {
    const conn = new MqttConnection(this, transport);
    this.connections.add(conn);
    this.openByKind[gatewayLabel(transport)]++;
    this.limit.opened();
    this.broker.metrics.connections.inc({ gateway: gatewayLabel(transport) });
    if (this.closing) conn.close("gateway-closing");
    return conn;
  }

  connectionClosed(conn: MqttConnection, why: string): void {
    if (this.connections.delete(conn)) this.openByKind[gatewayLabel(conn.transport)]--;
    this.limit.closed();
    this.broker.metrics.connections.dec({ gateway: gatewayLabel(conn.transport) });
    this.log.debug("mqtt.connection.closed", { client: conn.clientId, why });
    const session = conn.session;
    if (!session) return;
    conn.session = null;
    if (this.byClientId.get(conn.clientId) === conn) this.byClientId.delete(conn.clientId);
    if (session.connection !== conn) return;
    if (this.closing) {
      session.detach();
      return;
    }
    this.sessions.detach(session, conn.gracefulDisconnect ? null : conn.will);
  }

  /** Publishes a will message (as if its client had published it). */
  publishWill(clientId: string, will: WillMessage): void {
    const logTopic = logTopicFor(will.topic);
    if (logTopic === null || this.closing) return;
    const headers = headersForPublish(will, enc.encode(clientId));
    this.directory.note(logTopic);
    const work: Promise<unknown>[] = [this.broker.produce(logTopic, [{ key: enc.encode(will.topic), value: will.payload, headers }], { acks: 1 })];
    if (will.retain) work.push(this.retained.put(will.topic, will.payload, headers));
    Promise.all(work).catch((err: unknown) => this.log.warn("mqtt.will.failed", { clientId, topic: will.topic, error: String(err) }));
  }

  /** A refusal for lack of permission (PUBACK/PUBREC/SUBACK 0x87 or 0x80, a dropped QoS 0 PUBLISH, a close): counted as reason 0x87. */
  countDenied(conn: MqttConnection): void {
    this.broker.metrics.protocolErrors.inc({ gateway: gatewayLabel(conn.transport), code: "0x87" });
  }

  #sweepKeepAlive(): void {
    const now = Date.now();
    for (const conn of this.connections) {
      if (!conn.connected) {
        // A connection that never sends CONNECT is dropped after 10 s.
        if (now - conn.connectedAt > 10_000 && !conn.session) conn.close("no-connect");
        continue;
      }
      if (conn.keepAliveMs > 0 && now - conn.lastSeen > conn.keepAliveMs * 1.5) conn.disconnect(RC.KEEP_ALIVE_TIMEOUT, "keep alive timeout");
    }
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.#keepAliveTimer);
    this.auth?.close();
    // Wait for publishes already taken to be appended; a failed append was answered to its client.
    await Promise.all([...this.connections].map((c) => c.pipeline.drained()));
    this.sessions.prepareShutdown();
    for (const conn of [...this.connections]) conn.disconnect(RC.SERVER_SHUTTING_DOWN, "server shutting down");
    await this.sessions.shutdown();
    this.directory.close();
  }
}

function gatewayLabel(transport: MqttTransport): "mqtt" | "mqtt-ws" {
  return transport.kind === "ws" ? "mqtt-ws" : "mqtt";
}
