import type { IPingreqPacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";

/** PINGREQ: answer PINGRESP (keep-alive is refreshed by any packet). */
export function handlePingreq(conn: MqttConnection, _packet: IPingreqPacket): void {
  conn.send({ cmd: "pingresp" });
}
