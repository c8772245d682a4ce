import type { IAuthPacket } from "mqtt-packet";
import type { MqttConnection } from "../connection.ts";
import { MqttProtocolError } from "../mqtt-error.ts";
import { RC } from "../reason-codes.ts";

/** AUTH: enhanced authentication is not offered (CONNECT never gets an Authentication Method accepted), so AUTH is a protocol error. */
export function handleAuth(_conn: MqttConnection, _packet: IAuthPacket): void {
  throw new MqttProtocolError(RC.PROTOCOL_ERROR, "AUTH without an accepted authentication method");
}
