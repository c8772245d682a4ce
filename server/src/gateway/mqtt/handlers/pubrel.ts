import type { IPubrelPacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";
import { RC } from "../reason-codes.ts";

/** PUBREL: ends an inbound QoS 2 exchange; the packet id may be reused, answer PUBCOMP. */
export function handlePubrel(conn: MqttConnection, packet: IPubrelPacket): void {
  const id = packet.messageId ?? 0;
  const known = conn.session!.inboundQos2.delete(id);
  if (known && conn.inflightIn > 0) conn.inflightIn--;
  if (!known && conn.version === 5) conn.send({ cmd: "pubcomp", messageId: id, reasonCode: RC.PACKET_IDENTIFIER_NOT_FOUND });
  else conn.sendAck("pubcomp", id);
}
