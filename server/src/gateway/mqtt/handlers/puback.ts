import type { IPubackPacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";

/** PUBACK: the client has a QoS 1 message; frees its in-flight slot and advances the session position. */
export function handlePuback(conn: MqttConnection, packet: IPubackPacket): void {
  // An unknown packet id is ignored (e.g. acknowledged twice).
  conn.session!.puback(packet.messageId ?? 0);
}
