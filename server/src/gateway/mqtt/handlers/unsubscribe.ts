import type { IUnsubscribePacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";
import { MqttProtocolError } from "../mqtt-error.ts";
import { RC } from "../reason-codes.ts";

/** UNSUBSCRIBE: drops the filters (and cursors no other subscription needs); UNSUBACK with 0x00 / 0x11 per filter (MQTT 5). */
export function handleUnsubscribe(conn: MqttConnection, packet: IUnsubscribePacket): void {
  const session = conn.session!;
  if (!packet.messageId) throw new MqttProtocolError(RC.PROTOCOL_ERROR, "UNSUBSCRIBE with packet identifier 0 [MQTT-2.3.1-1]");
  const codes = packet.unsubscriptions.map((filter) => (conn.core.sessions.unsubscribe(session, filter) ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED));
  if (conn.version === 5) conn.send({ cmd: "unsuback", messageId: packet.messageId, granted: codes } as never);
  else conn.send({ cmd: "unsuback", messageId: packet.messageId ?? 0 } as never);
}
