/**
 * One URL names a Redis deployment (for `--engine redis --redis <url>` and everything else
 * a node connects to Redis for, e.g. the cluster registry):
 *
 *   redis://[:password@]host:port[/db]              standalone (rediss:// for TLS)
 *   redis+cluster://host:port,host:port             Redis Cluster startup nodes
 *   redis+sentinel://host:port,host:port/<name>     Sentinel-managed primary
 *
 * Query parameters: prefix, replicas, waitTimeoutMs, maxBatchBytes.
 */
import { TributaryError } from "../errors.ts";
import type { RedisTarget } from "./redis-connection.ts";

/** What a Redis URL says: where Redis is, plus the query parameters every user of it reads. */
export interface RedisUrlOptions extends RedisTarget {
  /** `prefix`: prefix of every key (default "trib", see redis-key-prefix.ts). */
  keyPrefix?: string;
  /** `replicas`: replicas that must acknowledge an acks=all append (log engine). */
  replicas?: number;
  /** `waitTimeoutMs`: WAIT timeout of acks=all (log engine). */
  waitTimeoutMs?: number;
  /** `maxBatchBytes`: largest accepted batch (log engine). */
  maxBatchBytes?: number;
}

const URL_PATTERN = /^([a-z][a-z+]*):\/\/(?:([^@/?]*)@)?([^/?]*)(\/[^?]*)?(?:\?(.*))?$/i;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:\[\],]+)?(?::(\d{1,5}))?$/;

/**
 * Parses a Redis URL into connection and engine options; throws INVALID_CONFIG naming the problem.
 * (Not WHATWG `new URL`: it refuses the comma-separated host lists of the cluster and
 * sentinel forms.)
 */
export function parseRedisUrl(url: string): RedisUrlOptions {
  const invalid = (why: string) => new TributaryError("INVALID_CONFIG", `invalid Redis URL ${url}: ${why}`, { url });
  const m = URL_PATTERN.exec(url.trim());
  if (!m) throw invalid("expected <scheme>://[:password@]host:port[,host:port...][/name][?query]");
  const [, scheme, userinfo, hostList, path, query] = m as unknown as [string, string, string | undefined, string, string | undefined, string | undefined];
  const q = new URLSearchParams(query ?? "");
  const num = (name: string): number | undefined => {
    const v = q.get(name);
    if (v === null) return undefined;
    const n = Number(v);
    if (v === "" || !Number.isInteger(n) || n < 0) throw invalid(`${name} must be a non-negative integer`);
    return n;
  };
  const password = userinfo?.includes(":") ? decodeURIComponent(userinfo.slice(userinfo.indexOf(":") + 1)) : undefined;
  const common: RedisUrlOptions = {
    keyPrefix: q.get("prefix") || undefined,
    replicas: num("replicas"),
    waitTimeoutMs: num("waitTimeoutMs"),
    maxBatchBytes: num("maxBatchBytes"),
    password: password || undefined,
  };
  const hosts = hostList.split(",").map((hp) => {
    const h = HOST_PORT.exec(hp);
    const port = Number(h?.[2] ?? 6379);
    if (!h || hp === "" || port < 1 || port > 65535) throw invalid(`"${hp}" is not host:port`);
    return { host: (h[1] ?? "127.0.0.1").replace(/^\[|\]$/g, ""), port };
  });
  switch (scheme.toLowerCase()) {
    case "redis":
    case "rediss": {
      if (hosts.length !== 1) throw invalid(`${scheme}:// takes one host; use redis+cluster:// or redis+sentinel:// for several`);
      return { ...common, url: `${scheme}://${userinfo ? `${userinfo}@` : ""}${hostList}${path ?? ""}` };
    }
    case "redis+cluster":
      return { ...common, cluster: hosts };
    case "redis+sentinel": {
      const name = decodeURIComponent((path ?? "").replace(/^\//, "")) || "mymaster";
      return { ...common, sentinel: { sentinels: hosts, name } };
    }
    default:
      throw invalid(`unsupported scheme ${scheme}:// (redis://, rediss://, redis+cluster://, redis+sentinel://)`);
  }
}
