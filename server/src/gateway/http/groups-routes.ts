/**
 * Consumer-group admin routes (docs/consumer-groups.md), on uWebSockets.js directly:
 *
 *   GET  /groups[?internal=true]              → { groups: [{ group, state, generation, members }] }
 *                                               (internal groups, `mqtt.session.*`, only with internal=true)
 *   GET  /groups/:group                       → GroupDescription (members, assignments, committed/end offsets, lag)
 *   POST /groups/:group/reset-offsets         ← { topic, to: "earliest" | "latest" | { offset } | { timestamp }, partitions? }
 *                                             → { group, topic, partitions: [{ partition, previous, offset }] }
 *
 * Errors are `{ "error": { "code", "message" } }` with the code's HTTP status
 * (UNKNOWN_GROUP 404, GROUP_NOT_EMPTY 409, others via httpStatusOf). The node mounts this
 * with `registerGroupRoutes(app, ctx, coordinator)`.
 */
import type uWS from "uWebSockets.js";
import { TributaryError, httpStatusOf, toTributaryError, type ErrorCode } from "../../errors.ts";
import type { GroupCoordinator } from "../../groups/group-coordinator.ts";
import { isInternalGroup } from "../../groups/internal-groups.ts";
import { parseResetTarget } from "../../groups/offsets.ts";
import type { GatewayContext } from "../gateway-context.ts";

const GROUP_STATUS: Partial<Record<ErrorCode, number>> = {
  UNKNOWN_GROUP: 404,
  GROUP_NOT_EMPTY: 409,
  UNKNOWN_MEMBER: 409,
  ILLEGAL_GENERATION: 409,
  PARTITION_NOT_OWNED: 409,
  INCONSISTENT_GROUP_PROTOCOL: 409,
};

const STATUS_LINE: Record<number, string> = {
  200: "200 OK",
  400: "400 Bad Request",
  404: "404 Not Found",
  409: "409 Conflict",
  413: "413 Payload Too Large",
  500: "500 Internal Server Error",
  503: "503 Service Unavailable",
  504: "504 Gateway Timeout",
};

export function groupErrorStatus(code: ErrorCode): number {
  return GROUP_STATUS[code] ?? httpStatusOf(code);
}

type Handler = (params: string[], body: Uint8Array, query: URLSearchParams) => Promise<unknown>;

export function registerGroupRoutes(app: uWS.TemplatedApp, ctx: GatewayContext, coordinator: GroupCoordinator): void {
  const maxBody = ctx.config.limits.maxFrameBytes;

  const route = (method: "get" | "post", pattern: string, paramCount: number, handler: Handler) => {
    app[method](pattern, (res, req) => {
      const params = Array.from({ length: paramCount }, (_, i) => decodeURIComponent(req.getParameter(i) ?? ""));
      const query = new URLSearchParams(req.getQuery() ?? "");
      let aborted = false;
      res.onAborted(() => (aborted = true));
      const reply = (status: number, payload: unknown) => {
        if (aborted) return;
        res.cork(() => {
          res
            .writeStatus(STATUS_LINE[status] ?? `${status}`)
            .writeHeader("content-type", "application/json")
            .end(JSON.stringify(payload));
        });
      };
      const run = (body: Uint8Array) => {
        handler(params, body, query).then(
          (result) => reply(200, result),
          (err: unknown) => {
            const error = toTributaryError(err);
            if (error.code === "INTERNAL") ctx.log.error("http.groups.error", { path: pattern, message: error.message });
            reply(groupErrorStatus(error.code), { error: { code: error.code, message: error.message } });
          },
        );
      };
      if (method === "get") return run(new Uint8Array(0));
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      res.onData((chunk, isLast) => {
        if (tooLarge) return;
        size += chunk.byteLength;
        if (size > maxBody) {
          tooLarge = true;
          reply(413, { error: { code: "FRAME_TOO_LARGE", message: `request body exceeds ${maxBody} bytes` } });
          return;
        }
        chunks.push(Buffer.from(chunk.slice(0))); // uWS reuses the chunk's memory: copy it
        if (isLast) run(Buffer.concat(chunks));
      });
    });
  };

  route("get", "/groups", 0, async (_params, _body, query) => {
    const internal = query.get("internal") === "true" || query.get("internal") === "1";
    const groups = await coordinator.listGroups();
    return { groups: internal ? groups : groups.filter((g) => !isInternalGroup(g.group)) };
  });
  route("get", "/groups/:group", 1, async ([group]) => coordinator.describeGroup(group!));
  route("post", "/groups/:group/reset-offsets", 1, async ([group], body) => {
    const parsed = parseJson(body);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new TributaryError("BAD_REQUEST", `expected {"topic": "...", "to": "earliest" | "latest" | {"offset": n} | {"timestamp": ms}}`);
    }
    const { topic, to, partitions } = parsed as Record<string, unknown>;
    if (typeof topic !== "string" || topic.length === 0) throw new TributaryError("BAD_REQUEST", `topic: expected a topic name`);
    if (partitions !== undefined && (!Array.isArray(partitions) || !partitions.every((p) => Number.isInteger(p) && p >= 0))) {
      throw new TributaryError("BAD_REQUEST", `partitions: expected an array of partition numbers`);
    }
    return coordinator.resetOffsets(group!, topic, parseResetTarget(to), partitions as number[] | undefined);
  });
}

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body).toString("utf8"));
  } catch {
    throw new TributaryError("BAD_REQUEST", "the request body is not valid JSON");
  }
}
