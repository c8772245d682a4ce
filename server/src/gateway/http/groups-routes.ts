/**
 * Consumer-group admin routes (docs/consumer-groups.md), on uWebSockets.js directly:
 *
 *   GET  /groups[?internal=true]              → { groups: [{ group, state, generation, members }] }
 *                                               (internal groups, `mqtt.session.*`, only with internal=true)
 *   GET  /groups/:group                       → GroupDescription (members, assignments, committed/end offsets, lag)
 *   POST /groups/:group/reset-offsets         ← { topic, to: "earliest" | "latest" | { offset } | { timestamp }, partitions? }
 *                                             → { group, topic, partitions: [{ partition, previous, offset }] }
 *
 * Served through the HttpRouter (body limits, aborts, cork, error JSON with
 * httpStatusOf: UNKNOWN_GROUP 404, GROUP_NOT_EMPTY and fencing codes 409). The node mounts
 * this with `registerGroupRoutes(app, ctx, coordinator)`.
 */
import type uWS from "uWebSockets.js";
import { TributaryError } from "../../errors.ts";
import type { GroupCoordinator } from "../../groups/group-coordinator.ts";
import { isInternalGroup } from "../../groups/internal-groups.ts";
import { checkClientTopicAccess } from "../../broker/internal-topics.ts";
import { parseResetTarget } from "../../groups/offsets.ts";
import type { GatewayContext } from "../gateway-context.ts";
import { authorize } from "./http-auth.ts";
import { HttpRouter } from "./http-router.ts";
import { OriginPolicy } from "./origin-policy.ts";
import { parseBody } from "./record-encoding.ts";

export function registerGroupRoutes(app: uWS.TemplatedApp, ctx: GatewayContext, coordinator: GroupCoordinator): void {
  const router = new HttpRouter(app, { maxBodyBytes: ctx.config.limits.maxFrameBytes, log: ctx.log, origins: OriginPolicy.of(ctx.config), auth: ctx.auth });
  const { auth } = ctx;

  router.route("get", "/groups", async ({ query, identity }) => {
    authorize(auth, identity, (a, id) => a.isAdmin(id), "admin", "group listing");
    const internal = query.get("internal") === "true" || query.get("internal") === "1";
    const groups = await coordinator.listGroups();
    return { status: 200, body: { groups: internal ? groups : groups.filter((g) => !isInternalGroup(g.group)) } };
  });

  router.route("get", "/groups/:group", async ({ params, identity }) => {
    authorize(auth, identity, (a, id) => a.isAdmin(id) || a.canJoinGroup(id, params[0]!), "join_group", params[0]!);
    return { status: 200, body: await coordinator.describeGroup(params[0]!) };
  });

  router.route(
    "post",
    "/groups/:group/reset-offsets",
    async ({ params, body, contentType, identity }) => {
      const parsed = parseBody(body, contentType);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new TributaryError("BAD_REQUEST", `expected {"topic": "...", "to": "earliest" | "latest" | {"offset": n} | {"timestamp": ms}}`);
      }
      const { topic, to, partitions } = parsed as Record<string, unknown>;
      if (typeof topic !== "string" || topic.length === 0) throw new TributaryError("BAD_REQUEST", `topic: expected a topic name`);
      checkClientTopicAccess(topic, "reset-offsets");
      authorize(auth, identity, (a, id) => a.canManageTopic(id, topic), "manage_topic", topic);
      if (partitions !== undefined && (!Array.isArray(partitions) || !partitions.every((p) => Number.isInteger(p) && p >= 0))) {
        throw new TributaryError("BAD_REQUEST", `partitions: expected an array of partition numbers`);
      }
      return { status: 200, body: await coordinator.resetOffsets(params[0]!, topic, parseResetTarget(to), partitions as number[] | undefined) };
    },
    { readBody: true },
  );
}
