/**
 * `GET /cluster`: the live nodes of this node's cluster (docs/cluster.md).
 *
 *   200 { self, engine, ttlMs, nodes: [{ nodeId, urls: { http, ws, mqtt }, engine, startedAt,
 *         lastHeartbeat, connections: { ws, mqtt, "mqtt-ws" }, health }] }
 *   503 UNAVAILABLE when the registry (Redis) cannot be read.
 */
import type { ClusterStatus } from "../../cluster/node-registry.ts";
import type { AuthService } from "../../auth/index.ts";
import { authorize } from "./http-auth.ts";
import type { HttpRouter } from "./http-router.ts";

export function mountClusterRoutes(router: HttpRouter, clusterStatus: () => Promise<ClusterStatus>, auth?: AuthService): void {
  router.route("get", "/cluster", async ({ identity }) => {
    authorize(auth, identity, (a, id) => a.isAdmin(id), "admin", "/cluster");
    return { status: 200, body: await clusterStatus() };
  });
}
