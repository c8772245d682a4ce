import type { Packet } from "mqtt-packet";
import type { MqttConnection } from "./connection.ts";
import { handleAuth } from "./handlers/auth.ts";
import { handleConnect } from "./handlers/connect.ts";
import { handleDisconnect } from "./handlers/disconnect.ts";
import { handlePingreq } from "./handlers/pingreq.ts";
import { handlePuback } from "./handlers/puback.ts";
import { handlePubcomp } from "./handlers/pubcomp.ts";
import { handlePublish } from "./handlers/publish.ts";
import { handlePubrec } from "./handlers/pubrec.ts";
import { handlePubrel } from "./handlers/pubrel.ts";
import { handleSubscribe } from "./handlers/subscribe.ts";
import { handleUnsubscribe } from "./handlers/unsubscribe.ts";
import { MqttProtocolError } from "./mqtt-error.ts";
import { RC } from "./reason-codes.ts";

type Handler = (conn: MqttConnection, packet: never) => void | Promise<void>;

/** One handler per packet type a client may send; anything else is a protocol error. */
const HANDLERS: Partial<Record<Packet["cmd"], Handler>> = {
  connect: handleConnect,
  publish: handlePublish,
  puback: handlePuback,
  pubrec: handlePubrec,
  pubrel: handlePubrel,
  pubcomp: handlePubcomp,
  subscribe: handleSubscribe,
  unsubscribe: handleUnsubscribe,
  pingreq: handlePingreq,
  disconnect: handleDisconnect,
  auth: handleAuth,
};

/** Routes one parsed packet to its handler. A returned promise holds back the connection's next packets. */
export function dispatch(conn: MqttConnection, packet: Packet): void | Promise<void> {
  if (!conn.connected && packet.cmd !== "connect") {
    throw new MqttProtocolError(RC.PROTOCOL_ERROR, `first packet must be CONNECT, got ${packet.cmd.toUpperCase()}`);
  }
  const handler = HANDLERS[packet.cmd];
  if (!handler) throw new MqttProtocolError(RC.PROTOCOL_ERROR, `a client must not send ${packet.cmd.toUpperCase()}`);
  return (handler as (conn: MqttConnection, packet: Packet) => void | Promise<void>)(conn, packet);
}
