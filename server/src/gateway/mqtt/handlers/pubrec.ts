import type { IPubrecPacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";
import { RC } from "../reason-codes.ts";

/** PUBREC: the client has a QoS 2 message; answer PUBREL (0x92 when the packet id is unknown, MQTT 5). */
export function handlePubrec(conn: MqttConnection, packet: IPubrecPacket): void {
  const id = packet.messageId ?? 0;
  const failed = (packet.reasonCode ?? 0) >= 0x80;
  const known = conn.session!.pubrec(id, failed);
  if (failed) return;
  if (known) conn.sendAck("pubrel", id);
  else if (conn.version === 5) conn.send({ cmd: "pubrel", messageId: id, reasonCode: RC.PACKET_IDENTIFIER_NOT_FOUND });
  else conn.send({ cmd: "pubrel", messageId: id });
}
