/**
 * The HTTP API gateway: topics admin, produce, read, health, cluster, CORS preflights (docs/http-api.md). One call
 * mounts every route on the node's uWS app; `close()` ends in-flight requests (long-polls
 * return early) and waits for them briefly.
 *
 * The 404 fallback is mounted separately (`mountNotFound`) by the node, after every other
 * gateway, so it is plainly the last resort.
 */
import type uWS from "uWebSockets.js";
import type { Gateway, GatewayContext } from "../gateway-context.ts";
import { HttpRouter } from "./http-router.ts";
import { OriginPolicy } from "./origin-policy.ts";
import type { ClusterStatus } from "../../cluster/node-registry.ts";
import { mountClusterRoutes } from "./cluster-routes.ts";
import { mountHealthRoutes } from "./health-routes.ts";
import { mountRecordRoutes } from "./records-routes.ts";
import { mountTopicRoutes } from "./topics-routes.ts";

export interface HttpApiOptions {
  /** Readiness for /readyz: false while starting and shutting down. */
  isReady: () => boolean;
  /** Storage check of /readyz (resolves or rejects UNAVAILABLE); default: the engine lists topics. */
  checkStorage?: () => Promise<void>;
  /** Live nodes for GET /cluster; the route is absent without it. */
  clusterStatus?: () => Promise<ClusterStatus>;
}

export interface HttpApi extends Gateway {
  /** Mounts `ANY /*` → 404 NOT_FOUND; call after every other route is mounted. */
  mountNotFound(): void;
}

export function attachHttpApi(app: uWS.TemplatedApp, ctx: GatewayContext, options: HttpApiOptions): HttpApi {
  const router = new HttpRouter(app, { maxBodyBytes: ctx.config.limits.maxFrameBytes, log: ctx.log, origins: OriginPolicy.of(ctx.config), auth: ctx.auth });
  router.preflight(); // CORS preflights for every route of the node (http.corsOrigins)
  mountHealthRoutes(router, ctx, options.isReady, options.checkStorage);
  if (options.clusterStatus) mountClusterRoutes(router, options.clusterStatus, ctx.auth);
  mountTopicRoutes(router, ctx);
  mountRecordRoutes(router, ctx);
  return {
    mountNotFound: () => router.fallback(),
    close: () => router.drain(5000),
  };
}
