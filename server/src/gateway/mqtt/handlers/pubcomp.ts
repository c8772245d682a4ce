import type { IPubcompPacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";

/** PUBCOMP: ends an outbound QoS 2 exchange; the packet id is free again. */
export function handlePubcomp(conn: MqttConnection, packet: IPubcompPacket): void {
  conn.session!.pubcomp(packet.messageId ?? 0);
}
