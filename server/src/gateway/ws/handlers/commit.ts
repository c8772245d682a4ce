import type { CommitFrame } from "@tributary/client/protocol";
import { forbidden } from "../../../auth/index.ts";
import { toTributaryError } from "../../../errors.ts";
import { GroupSubscription } from "../group-subscription.ts";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/**
 * `commit` → `committed` {id}, or `error` {id} (no `sub`: a fenced commit does not end the
 * subscription): UNKNOWN_MEMBER (join again), ILLEGAL_GENERATION (use the latest `assign`'s
 * generation), PARTITION_NOT_OWNED (drop the partition), BAD_REQUEST (`sub` is not a
 * joined group subscription).
 */
export function handleCommit(ctx: HandlerContext, conn: WsConnection, frame: CommitFrame): void {
  const sub = conn.subscriptions.get(frame.sub);
  if (!(sub instanceof GroupSubscription) || sub.memberId === "" || !ctx.groups) {
    conn.sendError("BAD_REQUEST", `subscription ${frame.sub} is not a joined group subscription on this connection`, { id: frame.id });
    return;
  }
  if (!ctx.wsAuth.allowed(conn, (a, id) => a.canJoinGroup(id, sub.group))) {
    const e = forbidden(conn.identity!, "join_group", sub.group);
    conn.sendError(e.code, e.message, { id: frame.id });
    return;
  }
  ctx.groups.commit(sub.group, { memberId: sub.memberId, generation: frame.generation, offsets: frame.offsets }).then(
    () => conn.send({ op: "committed", id: frame.id }),
    (err: unknown) => {
      const e = toTributaryError(err);
      conn.sendError(e.code, e.message, { id: frame.id });
    },
  );
}
