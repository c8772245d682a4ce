import type { ISubscribePacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";
import { MqttProtocolError } from "../mqtt-error.ts";
import { RC } from "../reason-codes.ts";
import type { QoS } from "../record-mapping.ts";
import { makeSubscription, type Subscription } from "../session/subscription.ts";
import { isValidTopicFilter, parseSharedFilter } from "../../../broker/topic-filter.ts";

/**
 * SUBSCRIBE: each filter the identity may subscribe to (else 0x87 / 0x80: MqttAuth.permits) gets cursors on the log topic(s) it reads (starting at the end:
 * only new messages), SUBACK lists the granted QoS (or 0x8F / 0x80 per filter), then the
 * matching retained messages go out (Retain Handling 0: always, 1: only for a new
 * subscription, 2: never; never for shared subscriptions).
 */
export async function handleSubscribe(conn: MqttConnection, packet: ISubscribePacket): Promise<void> {
  const session = conn.session!;
  const v5 = conn.version === 5;
  const failure = v5 ? RC.TOPIC_FILTER_INVALID : 0x80;
  const subId = v5 ? (packet.properties?.subscriptionIdentifier as number | undefined) : undefined;
  if (subId === 0) throw new MqttProtocolError(RC.PROTOCOL_ERROR, "subscription identifier 0");
  if (!packet.messageId) throw new MqttProtocolError(RC.PROTOCOL_ERROR, "SUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]");
  const granted: number[] = [];
  const retainedFor: Subscription[] = [];
  for (const s of packet.subscriptions) {
    const shared = parseSharedFilter(s.topic);
    const inner = shared === null ? s.topic : shared === "invalid" ? null : shared.filter;
    if (inner === null || !isValidTopicFilter(inner) || s.topic.includes("\ufffd")) {
      granted.push(failure);
      continue;
    }
    if (shared && shared !== "invalid" && s.nl && v5) throw new MqttProtocolError(RC.PROTOCOL_ERROR, "No Local on a shared subscription");
    const share = shared && shared !== "invalid" ? shared.group : undefined;
    const auth = conn.core.auth;
    if (auth && !auth.permits(conn.identity!, { filter: s.topic, share })) {
      // Not permitted: SUBACK 0x87 / 0x80 for this filter; an existing subscription with this filter stays as it was.
      conn.core.countDenied(conn);
      conn.core.log.debug("mqtt.subscribe.forbidden", { client: conn.clientId, filter: s.topic });
      granted.push(v5 ? RC.NOT_AUTHORIZED : 0x80);
      continue;
    }
    const existed = session.subs.has(s.topic);
    if (!existed && session.subs.size >= conn.core.config.limits.maxSubscriptionsPerConnection) {
      granted.push(v5 ? RC.QUOTA_EXCEEDED : 0x80); // limits.maxSubscriptionsPerConnection
      continue;
    }
    const sub = makeSubscription(
      { filter: s.topic, qos: s.qos as QoS, nl: v5 ? s.nl : false, rap: v5 ? s.rap : false, rh: v5 ? ((s.rh ?? 0) as 0 | 1 | 2) : 0, id: subId },
      inner,
      share,
    );
    let ok: boolean;
    try {
      ok = await conn.core.sessions.subscribe(session, sub);
    } catch (err) {
      conn.core.log.warn("mqtt.subscribe.failed", { client: conn.clientId, filter: s.topic, error: String(err) });
      ok = false;
    }
    if (!ok) {
      granted.push(v5 ? RC.UNSPECIFIED_ERROR : 0x80);
      continue;
    }
    granted.push(s.qos);
    if (!sub.share && (sub.rh === 0 || (sub.rh === 1 && !existed))) retainedFor.push(sub);
  }
  conn.send({ cmd: "suback", messageId: packet.messageId, granted });
  for (const sub of retainedFor) {
    for (const msg of conn.core.retained.matching(sub.topicFilter)) {
      const qos = (msg.publishedQos === null ? sub.qos : Math.min(sub.qos, msg.publishedQos)) as QoS;
      session.sendDirect(msg, qos, true, sub.id === undefined ? undefined : [sub.id]);
    }
  }
}
