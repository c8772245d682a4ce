import { randomUUID } from "node:crypto";
import { connackCodeFor, type Identity } from "../../../auth/index.ts";
import { isTributaryError } from "../../../errors.ts";
import type { IConnackPacket, IConnectPacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";
import { TOPIC_ALIAS_MAXIMUM } from "../connection.ts";
import { MqttProtocolError } from "../mqtt-error.ts";
import { RC, V3_CONNACK } from "../reason-codes.ts";
import type { QoS } from "../record-mapping.ts";
import { NEVER_EXPIRES } from "../session/session-manager.ts";
import type { Subscription } from "../session/subscription.ts";
import { isValidTopicName } from "../../../broker/topic-filter.ts";
import { logTopicFor } from "../topic-mapping.ts";
import { clientLimitsFor, type LimitRefusal } from "../../limits/index.ts";

const enc = new TextEncoder();

/** CONNECT: negotiates limits, takes over or resumes the session, answers CONNACK (MQTT 3.1.1 §3.1, 5.0 §3.1). */
export async function handleConnect(conn: MqttConnection, packet: IConnectPacket): Promise<void> {
  if (conn.connected || conn.session) throw new MqttProtocolError(RC.PROTOCOL_ERROR, "second CONNECT on one connection");
  const core = conn.core;
  const cfg = core.config.mqtt;
  const version = packet.protocolVersion ?? 4;
  const v5 = version === 5;
  conn.version = version;
  const props = packet.properties ?? {};

  const refuse = (rc5: number, rc3: number, reason: string): void => {
    const connack: IConnackPacket = v5
      ? { cmd: "connack", reasonCode: rc5, sessionPresent: false, properties: { reasonString: reason } }
      : { cmd: "connack", returnCode: rc3, sessionPresent: false };
    conn.send(connack);
    conn.close("connect-refused");
  };

  // Protocol name and level must agree: MQTT 3.1 is "MQIsdp" level 3, 3.1.1 and 5.0 are "MQTT" 4 and 5
  // [MQTT-3.1.2-1, MQTT-3.1.2-2]: CONNACK 0x01 (3.1.1) / 0x84 (5.0), then close.
  const known = packet.protocolId === "MQTT" ? version === 4 || version === 5 : packet.protocolId === "MQIsdp" && version === 3;
  if (!known) return refuse(RC.UNSUPPORTED_PROTOCOL_VERSION, V3_CONNACK.UNACCEPTABLE_PROTOCOL_VERSION, `protocol "${packet.protocolId}" level ${version} is not MQTT 3.1, 3.1.1 or 5.0`);
  // Will QoS 3 is a malformed CONNECT [MQTT-3.1.2-14]: 5.0 may answer CONNACK 0x81, 3.1.1 closes.
  if (packet.will && ((packet.will.qos as number) > 2 || (packet.will.qos as number) < 0)) {
    const reason = `will QoS ${String(packet.will.qos)} is not 0, 1 or 2`;
    if (v5) return refuse(RC.MALFORMED_PACKET, V3_CONNACK.UNACCEPTABLE_PROTOCOL_VERSION, reason);
    throw new MqttProtocolError(RC.MALFORMED_PACKET, reason);
  }
  // Before 5.0 a password needs a user name [MQTT-3.1.2-22]: close.
  if (!v5 && packet.password !== undefined && packet.username === undefined) throw new MqttProtocolError(RC.PROTOCOL_ERROR, "a password without a user name (MQTT 3.1.1 §3.1.2.9)");

  // This connection is already counted: refuse when the node holds more than its budget.
  if (core.limit.open > core.limit.max) {
    return refuse(RC.QUOTA_EXCEEDED, V3_CONNACK.SERVER_UNAVAILABLE, `at most ${core.limit.max} connections (limits.maxConnections, below the open-file limit)`);
  }
  // Limits tied to the address (docs/security.md#limits): blocked after failed
  // authentications, connect rate, connections per IP. CONNACK 0x97 Quota exceeded / 3.1.1
  // 0x03 Server unavailable. The lease ends with the connection (found closed).
  const limits = clientLimitsFor(core.broker, core.config);
  const gateway = conn.transport.kind === "ws" ? "mqtt-ws" : "mqtt";
  const alive = () => !conn.closed;
  const overLimit = (refusal: LimitRefusal): void => {
    core.log.info("mqtt.connect.limited", { client: packet.clientId, remote: conn.transport.remoteAddress, limit: refusal.limit, error: refusal.message });
    refuse(RC.QUOTA_EXCEEDED, V3_CONNACK.SERVER_UNAVAILABLE, refusal.message);
  };
  const peer = limits.admitPeer(conn.transport.remoteAddress, gateway, alive);
  if (!peer.ok) return overLimit(peer.refusal);
  let clientId = packet.clientId ?? "";
  let assigned: string | undefined;
  if (clientId === "") {
    if (!v5 && !packet.clean) return refuse(RC.CLIENT_IDENTIFIER_NOT_VALID, V3_CONNACK.IDENTIFIER_REJECTED, "empty client id needs clean session");
    clientId = `auto-${randomUUID()}`;
    if (v5) assigned = clientId;
  }
  if (clientId.includes("\ufffd") || clientId.includes("\u0000")) return refuse(RC.CLIENT_IDENTIFIER_NOT_VALID, V3_CONNACK.IDENTIFIER_REJECTED, "client id is not valid UTF-8");

  const will = packet.will;
  if (will && (!isValidTopicName(will.topic) || logTopicFor(will.topic) === null)) {
    return refuse(RC.TOPIC_NAME_INVALID, V3_CONNACK.IDENTIFIER_REJECTED, `will topic "${will.topic}" is not a valid topic name`);
  }
  if (v5 && props.authenticationMethod !== undefined) return refuse(0x8c, V3_CONNACK.NOT_AUTHORIZED, "enhanced authentication is not supported");

  // Authentication, before anything changes for this client id (no takeover by a stranger).
  // Refused: CONNACK 0x86 / 0x04 for bad credentials or an expired token, 0x87 / 0x05 when
  // credentials are missing or the will topic is not publishable (docs/mqtt.md "Authentication").
  let identity: Identity | null = null;
  if (core.auth) {
    try {
      identity = await core.auth.authenticate(packet.username, packet.password, clientId);
    } catch (err) {
      if (!isTributaryError(err)) throw err;
      if (conn.closed) return;
      core.log.info("mqtt.connect.unauthorized", { client: clientId, remote: conn.transport.remoteAddress, code: err.code, reason: err.context.reason, error: err.message });
      core.countDenied(conn);
      // Repeated failures from one address: the refusal is delayed, then the address is blocked (admitPeer above).
      const delayMs = limits.authFailed(conn.transport.remoteAddress, gateway, err);
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (conn.closed) return;
      const rc = connackCodeFor(err, v5 ? 5 : 4);
      return refuse(rc, rc, err.message);
    }
    if (conn.closed) return;
    if (will && !core.auth.canPublish(identity, will.topic)) {
      core.log.info("mqtt.connect.will_forbidden", { client: clientId, topic: will.topic });
      core.countDenied(conn);
      return refuse(RC.NOT_AUTHORIZED, V3_CONNACK.NOT_AUTHORIZED, `may not publish the will topic "${will.topic}"`);
    }
    const own = limits.admitIdentity(identity, gateway, alive);
    if (!own.ok) return overLimit(own.refusal);
    conn.identity = identity;
  }

  let keepAlive = packet.keepalive ?? 0;
  let serverKeepAlive: number | undefined;
  if (cfg.maxKeepAlive > 0 && (keepAlive === 0 || keepAlive > cfg.maxKeepAlive)) {
    keepAlive = cfg.maxKeepAlive;
    if (v5) serverKeepAlive = keepAlive;
  }
  conn.keepAliveMs = keepAlive * 1000;

  let expiry = v5 ? (props.sessionExpiryInterval ?? 0) : packet.clean ? 0 : cfg.v3SessionExpiry;
  let grantedExpiry: number | undefined;
  if (expiry > cfg.maxSessionExpiry && !(expiry === NEVER_EXPIRES && cfg.maxSessionExpiry >= NEVER_EXPIRES)) {
    expiry = cfg.maxSessionExpiry;
    if (v5) grantedExpiry = expiry;
  }
  conn.sessionExpiry = expiry;
  conn.sendQuota = v5 ? Math.max(1, props.receiveMaximum ?? 65535) : cfg.receiveMaximum;
  conn.maxPacketOut = v5 && props.maximumPacketSize ? props.maximumPacketSize : Number.POSITIVE_INFINITY;
  conn.topicAliasMaxOut = v5 ? (props.topicAliasMaximum ?? 0) : 0;

  if (will) {
    const wp = will.properties ?? {};
    conn.will = {
      topic: will.topic,
      payload: typeof will.payload === "string" ? Buffer.from(will.payload) : (will.payload ?? new Uint8Array(0)),
      qos: (will.qos ?? 0) as QoS,
      retain: will.retain ?? false,
      delay: v5 ? (wp.willDelayInterval ?? 0) : 0,
      properties: v5
        ? {
            contentType: wp.contentType,
            payloadFormatIndicator: wp.payloadFormatIndicator,
            responseTopic: wp.responseTopic,
            correlationData: wp.correlationData,
            messageExpiryInterval: wp.messageExpiryInterval,
            userProperties: wp.userProperties,
          }
        : undefined,
    };
  }

  // Session takeover [MQTT-3.1.4-3]: the other connection of this client id is closed.
  const previous = core.byClientId.get(clientId);
  if (previous && previous !== conn) previous.disconnect(RC.SESSION_TAKEN_OVER, "another connection took over the session");
  core.byClientId.set(clientId, conn);
  conn.clientId = clientId;
  conn.clientIdBytes = enc.encode(clientId);

  // Group member and presence `user`: the identity's subject when authentication is enforced.
  const user = core.auth ? (identity?.subject ?? null) : (packet.username ?? null);
  const auth = core.auth;
  const permits = auth && identity ? (sub: Subscription) => auth.permits(identity, sub) : null;
  const { session, present } = await core.sessions.open(clientId, packet.clean ?? true, expiry, user, permits);
  if (conn.closed) {
    if (core.byClientId.get(clientId) === conn) core.byClientId.delete(clientId);
    if (!session.connection) core.sessions.detach(session, null);
    return;
  }
  conn.session = session;
  conn.connected = true;

  if (v5) {
    const properties: NonNullable<IConnackPacket["properties"]> = {
      receiveMaximum: core.receiveMaximum,
      maximumPacketSize: core.maxPacketBytes,
      topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
      retainAvailable: true,
      wildcardSubscriptionAvailable: true,
      subscriptionIdentifiersAvailable: true,
      sharedSubscriptionAvailable: true,
    };
    if (assigned) properties.assignedClientIdentifier = assigned;
    if (serverKeepAlive !== undefined) properties.serverKeepAlive = serverKeepAlive;
    if (grantedExpiry !== undefined) properties.sessionExpiryInterval = grantedExpiry;
    conn.send({ cmd: "connack", reasonCode: RC.SUCCESS, sessionPresent: present, properties });
  } else {
    conn.send({ cmd: "connack", returnCode: V3_CONNACK.ACCEPTED, sessionPresent: present });
  }
  core.sessions.attach(session, conn);
  core.auth?.armExpiry(conn);
}
