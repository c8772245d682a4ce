import type { PresenceFrame } from "@tributary/client/protocol";
import { forbidden } from "../../../auth/index.ts";
import { toTributaryError } from "../../../errors.ts";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/**
 * `presence` {topic, watch?} → `presence` {topic, members}; with `watch: true` the
 * connection then gets `presence_event` join/leave frames for the topic (registered before
 * the list is read, so no change falls between), `watch: false` stops them. Needs
 * `canPresence` on the topic (FORBIDDEN otherwise; a reload that takes it away ends the watch).
 */
export function handlePresence(ctx: HandlerContext, conn: WsConnection, frame: PresenceFrame): void {
  const registry = ctx.presenceHub.registry;
  if (!registry) {
    conn.sendError("UNAVAILABLE", "presence is not enabled on this node", { id: frame.id });
    return;
  }
  if (!ctx.wsAuth.allowed(conn, (a, id) => a.canPresence(id, frame.topic))) {
    const e = forbidden(conn.identity!, "presence", frame.topic);
    conn.sendError(e.code, e.message, { id: frame.id });
    return;
  }
  if (frame.watch !== undefined) ctx.presenceHub.watch(conn, frame.topic, frame.watch);
  registry.members(frame.topic).then(
    (members) => conn.send({ op: "presence", id: frame.id, topic: frame.topic, members }),
    (err: unknown) => {
      const e = toTributaryError(err);
      conn.sendError(e.code, e.message, { id: frame.id });
    },
  );
}
