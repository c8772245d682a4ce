import type { IDisconnectPacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";
import { MqttProtocolError } from "../mqtt-error.ts";
import { RC } from "../reason-codes.ts";

/**
 * DISCONNECT from the client: a normal disconnect discards the will; reason 0x04
 * (Disconnect with Will Message) keeps it. MQTT 5 may change the session expiry here,
 * except from 0 to non-zero (protocol error).
 */
export function handleDisconnect(conn: MqttConnection, packet: IDisconnectPacket): void {
  const session = conn.session!;
  const expiry = packet.properties?.sessionExpiryInterval;
  if (conn.version === 5 && expiry !== undefined) {
    if (conn.sessionExpiry === 0 && expiry !== 0) throw new MqttProtocolError(RC.PROTOCOL_ERROR, "session expiry cannot be set on DISCONNECT when it was 0 at CONNECT");
    session.expiry = Math.min(expiry, conn.core.config.mqtt.maxSessionExpiry);
    session.subsDirty = true;
  }
  conn.gracefulDisconnect = conn.version !== 5 || (packet.reasonCode ?? 0) !== RC.DISCONNECT_WITH_WILL;
  conn.close("client-disconnect");
}
