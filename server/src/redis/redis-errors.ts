import { TributaryError } from "../errors.ts";

/** Replies that mean "this node cannot serve the write now; another may, soon". */
const UNAVAILABLE_REPLY = /^(READONLY|LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|NOREPLICAS|MOVED|ASK|BUSY|NOAUTH)\b/;
/** Client-side conditions of ioredis: not connected, connection lost, no node reachable. */
const UNAVAILABLE_CLIENT =
  /(Stream isn't writeable|Connection is closed|Reached the max retries|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|All sentinels are unreachable|None of startup nodes is available|Failed to refresh slots cache|Cluster isn't ready|connect ETIMEDOUT|Too many Cluster redirections|Connection closed|socket)/i;

/**
 * Maps anything ioredis throws to a TributaryError:
 * - not connected / connection lost / failover in progress (READONLY, LOADING, CLUSTERDOWN...)
 *   → UNAVAILABLE (retriable; the write was not acknowledged);
 * - command timeout → TIMEOUT (retriable; the write may or may not have happened);
 * - OOM and other Redis error replies → STORAGE_ERROR;
 * - anything else → INTERNAL.
 */
export function mapRedisError(err: unknown, context: Record<string, unknown> = {}): TributaryError {
  if (err instanceof TributaryError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const msg = e.message;
  if (/Command timed out/i.test(msg)) {
    return new TributaryError("TIMEOUT", `Redis did not answer in time: ${msg}`, context, { cause: e });
  }
  if (UNAVAILABLE_REPLY.test(msg) || UNAVAILABLE_CLIENT.test(msg) || e.name === "MaxRetriesPerRequestError" || e.name === "ClusterAllFailedError") {
    return new TributaryError("UNAVAILABLE", `Redis is unavailable: ${msg}`, context, { cause: e });
  }
  if (e.name === "ReplyError") {
    return new TributaryError("STORAGE_ERROR", `Redis refused the command: ${msg}`, context, { cause: e });
  }
  return new TributaryError("INTERNAL", msg, context, { cause: e });
}
