import type { PingFrame } from "@tributary/client/protocol";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/** `ping` → `pong` with the same id (application-level liveness; uWS also sends WebSocket pings). */
export function handlePing(_ctx: HandlerContext, conn: WsConnection, frame: PingFrame): void {
  conn.send(frame.id === undefined ? { op: "pong" } : { op: "pong", id: frame.id });
}
