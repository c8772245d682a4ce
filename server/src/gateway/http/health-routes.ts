/**
 * Liveness and readiness probes.
 *
 * - `GET /healthz`: 200 while the process serves HTTP at all (liveness).
 * - `GET /readyz`: 200 once the node accepts traffic and its storage answers; 503
 *   UNAVAILABLE while starting, shutting down, or when the engine fails (readiness: take
 *   the node out of a load balancer). With the Redis engine "storage answers" is a PING
 *   within 500 ms, cached for 1 s (server/src/cluster/redis-node-registry.ts). With the
 *   file engine, a failed fdatasync makes it 503 until the node restarts (the engine's
 *   health, `LogEngine.health`).
 */
import { TributaryError, toTributaryError } from "../../errors.ts";
import type { GatewayContext } from "../gateway-context.ts";
import type { HttpRouter } from "./http-router.ts";

export function mountHealthRoutes(router: HttpRouter, ctx: GatewayContext, isReady: () => boolean, checkStorage?: () => Promise<void>): void {
  // Open (no Authorization needed): probes carry no tokens, and neither route shows records.
  router.route("get", "/healthz", () => ({ status: 200, body: { status: "ok", nodeId: ctx.nodeId } }), { open: true });

  router.route("get", "/readyz", async () => {
    if (!isReady()) throw new TributaryError("UNAVAILABLE", "the node is starting or shutting down");
    const health = ctx.broker.storageHealth();
    if (health && !health.ok) throw new TributaryError("UNAVAILABLE", `the ${ctx.broker.engineKind} log engine's storage failed: ${health.problem}`);
    if (checkStorage) await checkStorage();
    else {
      try {
        await ctx.broker.listTopics();
      } catch (err) {
        const error = toTributaryError(err);
        throw new TributaryError("UNAVAILABLE", `the ${ctx.broker.engineKind} log engine does not answer: ${error.message}`, {}, { cause: err });
      }
    }
    return { status: 200, body: { status: "ready", nodeId: ctx.nodeId, engine: ctx.broker.engineKind } };
  }, { open: true });
}
