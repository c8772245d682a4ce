/**
 * Presence over HTTP:
 *
 *   GET /topics/:topic/presence → { topic, members: [{ clientId, user, node, joinedAt }] }
 *
 * Members are the clients subscribed to `topic` with presence (WebSocket `subscribe` with
 * `presence: true`, the SDK's default), including those whose connection dropped less than
 * the presence session timeout ago. The node mounts this with `registerPresenceRoutes`.
 */
import type uWS from "uWebSockets.js";
import type { PresenceRegistry } from "../../groups/index.ts";
import { httpStatusOf, toTributaryError } from "../../errors.ts";
import type { GatewayContext } from "../gateway-context.ts";
import { OriginPolicy } from "./origin-policy.ts";

export function registerPresenceRoutes(app: uWS.TemplatedApp, ctx: GatewayContext, presence: PresenceRegistry): void {
  const origins = OriginPolicy.of(ctx.config);
  app.get("/topics/:topic/presence", (res, req) => {
    const topic = decodeURIComponent(req.getParameter(0) ?? "");
    const origin = req.getHeader("origin");
    const allowOrigin = origin !== "" && origins.corsAllows(origin); // CORS, as on every API route (http-router.ts)
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const reply = (status: string, payload: unknown) => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(status).writeHeader("content-type", "application/json");
        if (allowOrigin) res.writeHeader("Access-Control-Allow-Origin", origin).writeHeader("Vary", "Origin");
        res.end(JSON.stringify(payload));
      });
    };
    presence.members(topic).then(
      (members) => reply("200 OK", { topic, members }),
      (err: unknown) => {
        const error = toTributaryError(err);
        ctx.log.error("http.presence.error", { topic, message: error.message });
        reply(`${httpStatusOf(error.code)} Error`, { error: { code: error.code, message: error.message } });
      },
    );
  });
}
