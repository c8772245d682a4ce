import type { IPublishPacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";
import { TOPIC_ALIAS_MAXIMUM } from "../connection.ts";
import { MqttProtocolError } from "../mqtt-error.ts";
import { RC } from "../reason-codes.ts";
import { headersForPublish, type QoS } from "../record-mapping.ts";
import { isValidTopicName } from "../../../broker/topic-filter.ts";
import { logTopicFor } from "../topic-mapping.ts";
import type { RetainedLimits, RetainedRefusal } from "../retained-store.ts";
import { clientLimitsFor } from "../../limits/index.ts";

/**
 * PUBLISH from a client: validated, appended to the log (topic = first level, key = MQTT
 * topic), then acknowledged (QoS 1 PUBACK / QoS 2 PUBREC) once the record is in the log.
 * QoS 2 packet ids are remembered until PUBREL, so a re-sent PUBLISH is not stored twice.
 */
export function handlePublish(conn: MqttConnection, packet: IPublishPacket): void | Promise<void> {
  const session = conn.session!;
  const v5 = conn.version === 5;
  let topic = packet.topic;
  const props = packet.properties;
  if (v5 && props?.topicAlias !== undefined) {
    const alias = props.topicAlias;
    if (alias === 0 || alias > TOPIC_ALIAS_MAXIMUM) throw new MqttProtocolError(RC.TOPIC_ALIAS_INVALID, `topic alias ${alias} is outside 1..${TOPIC_ALIAS_MAXIMUM}`);
    if (topic) conn.aliasesIn.set(alias, topic);
    else {
      const known = conn.aliasesIn.get(alias);
      if (known === undefined) throw new MqttProtocolError(RC.PROTOCOL_ERROR, `topic alias ${alias} was never set`);
      topic = known;
    }
  }
  if (topic !== conn.lastTopic) {
    // (the last topic of this connection was valid: devices repeat topics)
    if (topic.includes("\ufffd")) throw new MqttProtocolError(RC.MALFORMED_PACKET, "topic name is not valid UTF-8");
    if (!isValidTopicName(topic)) throw new MqttProtocolError(RC.TOPIC_NAME_INVALID, `"${topic}" is not a valid topic name (wildcards or empty)`);
  }
  if (v5 && props?.subscriptionIdentifier !== undefined) throw new MqttProtocolError(RC.PROTOCOL_ERROR, "a client must not send a Subscription Identifier in PUBLISH");
  const logTopic = logTopicFor(topic);
  if (logTopic === null) throw new MqttProtocolError(RC.TOPIC_NAME_INVALID, `first level of "${topic}" is too long`);

  const qos = packet.qos as QoS;
  const packetId = packet.messageId ?? 0;
  if (qos > 0 && packetId === 0) throw new MqttProtocolError(RC.PROTOCOL_ERROR, "QoS 1/2 PUBLISH with packet identifier 0");
  if (qos === 0 && packet.dup) throw new MqttProtocolError(RC.MALFORMED_PACKET, "QoS 0 PUBLISH with DUP set [MQTT-3.3.1-2]");
  const auth = conn.core.auth;
  if (auth && !auth.canPublish(conn.identity!, topic)) {
    denied(conn, topic, qos, packetId);
    return;
  }
  if (qos === 2 && session.inboundQos2.has(packetId)) {
    // Re-sent QoS 2 PUBLISH: already stored once; confirm again, store nothing.
    conn.sendAck("pubrec", packetId);
    return;
  }
  const limits = clientLimitsFor(conn.core.broker, conn.core.config);
  if (limits.limitsPublish) {
    const refusal = limits.publish(conn.identity, (packet.payload as Buffer).length, conn.transport.kind === "ws" ? "mqtt-ws" : "mqtt");
    if (refusal !== null) return overRate(conn, packet, qos, packetId, refusal.message, refusal.retryAfterMs);
  }
  if (qos > 0) {
    if (v5 && conn.inflightIn >= conn.core.receiveMaximum) {
      throw new MqttProtocolError(RC.RECEIVE_MAXIMUM_EXCEEDED, `more than ${conn.core.receiveMaximum} QoS 1/2 publishes in flight`);
    }
    conn.inflightIn++;
    if (qos === 2) session.inboundQos2.add(packetId);
  }

  const payload = packet.payload as Buffer;
  let properties = props;
  if (props?.topicAlias !== undefined) {
    properties = { ...props };
    delete properties.topicAlias;
  }
  if (properties && Object.keys(properties).length === 0) properties = undefined;
  let headers = headersForPublish({ topic, payload, qos, retain: packet.retain, properties }, session.noLocalCount > 0 ? conn.clientIdBytes : null);
  if (packet.retain) {
    const refusal = conn.core.retained.admit(topic, payload, retainedLimits(conn));
    if (refusal === null) {
      conn.core.retained.put(topic, payload, headers).catch((err: unknown) => conn.core.log.warn("mqtt.retained.failed", { topic, error: String(err) }));
    } else if (retainedRefused(conn, topic, qos, packetId, refusal)) {
      return;
    } else {
      headers = headersForPublish({ topic, payload, qos, retain: false, properties }, session.noLocalCount > 0 ? conn.clientIdBytes : null);
    }
  }
  conn.pipeline.push({
    logTopic,
    record: { key: topicBytes(conn, topic), value: payload, headers },
    done: qos === 0 ? noop : (err) => completed(conn, qos, packetId, err),
  });
  conn.checkIngressBackpressure();
}

/**
 * A PUBLISH the identity may not make: nothing is stored (retained neither). MQTT 5:
 * PUBACK / PUBREC 0x87 for QoS 1 / 2, a QoS 0 one is dropped; MQTT 3.1.1 cannot say "not
 * authorized" in an ack, and an ack would tell the client its message was taken, so the
 * connection is closed (as the issue allows; Mosquitto drops silently instead). Each is
 * counted (tributary_protocol_errors_total, code 0x87) and logged.
 */
function denied(conn: MqttConnection, topic: string, qos: QoS, packetId: number): void {
  conn.core.countDenied(conn);
  conn.core.log.debug("mqtt.publish.forbidden", { client: conn.clientId, topic, qos });
  if (conn.version !== 5) {
    conn.core.log.info("mqtt.publish.forbidden_close", { client: conn.clientId, topic });
    conn.close("publish-forbidden");
    return;
  }
  if (qos === 1) conn.send({ cmd: "puback", messageId: packetId, reasonCode: RC.NOT_AUTHORIZED });
  else if (qos === 2) conn.send({ cmd: "pubrec", messageId: packetId, reasonCode: RC.NOT_AUTHORIZED });
}

/**
 * A PUBLISH over its identity's rate (limits.publishRatePerIdentity / publishBytesPerIdentity,
 * docs/security.md#limits). MQTT 5 QoS 1 / 2: PUBACK / PUBREC 0x97 Quota exceeded, nothing
 * stored (the client may send it again later). QoS 0 and MQTT 3.1.1, which cannot be told:
 * the publish waits until the identity's bucket has room and is then handled; the packets
 * after it wait too, and past 1000 of them the connection stops reading its socket, so TCP
 * slows the client to its rate and nothing is lost (EMQX's rate limiter does the same).
 */
function overRate(conn: MqttConnection, packet: IPublishPacket, qos: QoS, packetId: number, message: string, retryAfterMs: number): void | Promise<void> {
  conn.core.log.debug("mqtt.publish.limited", { client: conn.clientId, topic: packet.topic, qos, error: message });
  if (conn.version === 5 && qos > 0) {
    conn.send({ cmd: qos === 1 ? "puback" : "pubrec", messageId: packetId, reasonCode: RC.QUOTA_EXCEEDED, properties: { reasonString: message } });
    return;
  }
  return new Promise<void>((resolve) => setTimeout(resolve, retryAfterMs)).then(() => (conn.closed ? undefined : handlePublish(conn, packet)));
}

function retainedLimits(conn: MqttConnection): RetainedLimits {
  const mqtt = conn.core.config.mqtt;
  return { maxMessages: mqtt.maxRetainedMessages ?? 0, maxBytes: mqtt.maxRetainedBytes ?? 0 };
}

/**
 * A retained PUBLISH past `mqtt.maxRetainedMessages` / `mqtt.maxRetainedBytes`. MQTT 5 QoS 1 / 2:
 * PUBACK / PUBREC 0x97 Quota exceeded with the reason, nothing stored (true: the caller stops).
 * QoS 0 and MQTT 3.1.1 cannot be told: the message is stored and delivered as a normal
 * (not retained) message (false: the caller goes on without retaining). Both are logged
 * (`mqtt.retained.over_limit`) and counted in `tributary_mqtt_retained_over_limit_total{outcome}`.
 */
function retainedRefused(conn: MqttConnection, topic: string, qos: QoS, packetId: number, refusal: RetainedRefusal): boolean {
  const refuse = conn.version === 5 && qos > 0;
  conn.core.broker.metrics.mqttRetainedOverLimit.inc({ outcome: refuse ? "refused" : "not-retained" });
  conn.core.log.info("mqtt.retained.over_limit", { client: conn.clientId, topic, qos, limit: refusal.limit, outcome: refuse ? "refused" : "not-retained" });
  if (!refuse) return false;
  if (conn.inflightIn > 0) conn.inflightIn--;
  if (qos === 2) conn.session?.inboundQos2.delete(packetId);
  conn.send({ cmd: qos === 1 ? "puback" : "pubrec", messageId: packetId, reasonCode: RC.QUOTA_EXCEEDED, properties: { reasonString: refusal.message } });
  return true;
}

function noop(): void {}

function topicBytes(conn: MqttConnection, topic: string): Buffer {
  if (conn.lastTopic !== topic) {
    conn.lastTopic = topic;
    conn.lastTopicBytes = Buffer.from(topic);
  }
  return conn.lastTopicBytes;
}

function completed(conn: MqttConnection, qos: QoS, packetId: number, err: unknown): void {
  const failed = err !== null;
  if (failed) conn.core.log.warn("mqtt.publish.failed", { client: conn.clientId, error: String(err) });
  const reasonCode = failed ? RC.UNSPECIFIED_ERROR : RC.SUCCESS;
  if (failed && conn.version !== 5) {
    // MQTT 3.1.1 cannot say "not stored": close, the client re-sends on reconnect.
    conn.session?.inboundQos2.delete(packetId);
    conn.disconnect(RC.UNSPECIFIED_ERROR);
    return;
  }
  if (qos === 1) {
    if (conn.inflightIn > 0) conn.inflightIn--;
    if (reasonCode === RC.SUCCESS) conn.sendAck("puback", packetId);
    else conn.send({ cmd: "puback", messageId: packetId, reasonCode });
  } else {
    if (failed) {
      conn.session?.inboundQos2.delete(packetId);
      if (conn.inflightIn > 0) conn.inflightIn--;
    }
    if (reasonCode === RC.SUCCESS) conn.sendAck("pubrec", packetId);
    else conn.send({ cmd: "pubrec", messageId: packetId, reasonCode });
  }
}
