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
import { authenticateRequest, authorize, wwwAuthenticate } from "./http-auth.ts";
import { OriginPolicy } from "./origin-policy.ts";

export function registerPresenceRoutes(app: uWS.TemplatedApp, ctx: GatewayContext, presence: PresenceRegistry): void {
  const origins = OriginPolicy.of(ctx.config);
  app.get("/topics/:topic/presence", (res, req) => {
    const topic = decodeURIComponent(req.getParameter(0) ?? "");
    const origin = req.getHeader("origin");
    const authorization = req.getHeader("authorization");
    const allowOrigin = origin !== "" && origins.corsAllows(origin); // CORS, as on every API route (http-router.ts)
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const reply = (status: string, payload: unknown, headers: Record<string, string> = {}) => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(status).writeHeader("content-type", "application/json");
        for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
        if (allowOrigin) res.writeHeader("Access-Control-Allow-Origin", origin).writeHeader("Vary", "Origin");
        res.end(JSON.stringify(payload));
      });
    };
    // Same authentication as every API route (http-auth.ts), then canPresence on the topic.
    const members = async () => {
      const identity = await authenticateRequest(ctx.auth, authorization);
      authorize(ctx.auth, identity, (a, id) => a.canPresence(id, topic), "presence", topic);
      return presence.members(topic);
    };
    members().then(
      (members) => reply("200 OK", { topic, members }),
      (err: unknown) => {
        const error = toTributaryError(err);
        if (error.code === "UNAUTHORIZED" || error.code === "TOKEN_EXPIRED") {
          reply(`${httpStatusOf(error.code)} Unauthorized`, { error: { code: error.code, message: error.message } }, { "WWW-Authenticate": wwwAuthenticate(error, authorization !== "") });
          return;
        }
        if (error.code !== "FORBIDDEN") ctx.log.error("http.presence.error", { topic, message: error.message });
        reply(`${httpStatusOf(error.code)} Error`, { error: { code: error.code, message: error.message } });
      },
    );
  });
}
