import type { PublishFrame } from "@tributary/client/protocol";
import { toTributaryError } from "../../../errors.ts";
import { TOPIC_NAME_PATTERN } from "../../../broker/broker.ts";
import type { WsConnection } from "../ws-connection.ts";
import type { HandlerContext } from "./context.ts";

/**
 * `publish` → Broker.produce → `ack` {partition, offset} (none for acks 0), or `error`
 * with the request id. At most `limits.maxPendingPublishes` publishes per connection wait
 * for the log at once; beyond that the publish fails fast with QUEUE_FULL (retriable).
 * `producerId` + `seq` make a retry after a lost ack write once (Broker dedupe).
 */
export function handlePublish(ctx: HandlerContext, conn: WsConnection, frame: PublishFrame): void {
  if (frame.topic !== lastValidTopic && !validTopic(frame.topic)) {
    conn.sendError("INVALID_TOPIC", `"${frame.topic}" is not a valid topic name: [a-zA-Z0-9._-]{1,249}`, { id: frame.id });
    return;
  }
  const limits = ctx.wsAuth.limits;
  if (limits?.limitsPublish) {
    // Over the identity's rate (docs/security.md#limits): QUEUE_FULL (retriable) with the limit and when to retry; nothing stored.
    const refusal = limits.publish(conn.identity, frame.value?.byteLength ?? 0, "ws");
    if (refusal !== null) {
      conn.sendError("QUEUE_FULL", `${refusal.message} (in ${Math.ceil(refusal.retryAfterMs)} ms)`, { id: frame.id });
      return;
    }
  }
  if (conn.pendingPublishes >= ctx.config.limits.maxPendingPublishes) {
    conn.sendError("QUEUE_FULL", `more than ${ctx.config.limits.maxPendingPublishes} publishes are waiting for the log on this connection (limits.maxPendingPublishes)`, { id: frame.id });
    return;
  }
  conn.pendingPublishes++;
  const acks = frame.acks ?? 1;
  const record = { key: frame.key ?? null, value: frame.value, headers: frame.headers, partition: frame.partition };
  // A callback, not a promise chain: the publish path runs once per message.
  ctx.broker.produceOne(frame.topic, record, { acks, producerId: frame.producerId, sequence: frame.seq, source: "ws" }, (err, partition, offset) => {
    if (err === null) {
      if (acks !== 0) conn.sendSoon({ op: "ack", id: frame.id, partition, offset });
    } else {
      const e = toTributaryError(err);
      if (e.code === "INTERNAL") ctx.log.error("ws.publish.failed", { topic: frame.topic, error: e.message });
      conn.sendSoon({ op: "error", id: frame.id, code: e.code, message: e.message });
    }
    conn.publishSettled();
  });
}

/** The last topic name found valid: publishers repeat topics (the decoder hands back the same string). */
let lastValidTopic: string | null = null;

function validTopic(topic: string): boolean {
  if (!TOPIC_NAME_PATTERN.test(topic)) return false;
  lastValidTopic = topic;
  return true;
}
