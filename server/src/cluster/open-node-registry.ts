/**
 * Picks the node registry for a node's configuration: Redis engine → RedisNodeRegistry on
 * the same Redis (heartbeating), file engine → LocalNodeRegistry (this node only).
 */
import { hostname } from "node:os";
import type { TributaryConfig } from "../config/config.ts";
import type { LogEngine } from "../log/log-engine.ts";
import type { RedisErrorReporter } from "../redis/redis-error-reporter.ts";
import { LocalNodeRegistry } from "./local-node-registry.ts";
import type { NodeRegistry, NodeUrls, SelfDescriptor } from "./node-registry.ts";
import { RedisNodeRegistry } from "./redis-node-registry.ts";

export async function openNodeRegistry(config: TributaryConfig, engine: LogEngine, self: SelfDescriptor, reporter: RedisErrorReporter): Promise<NodeRegistry> {
  if (engine.kind === "redis" && config.redis.url) {
    return RedisNodeRegistry.connect(self, { redisUrl: config.redis.url, ttlMs: config.cluster.nodeTtlMs, reporter });
  }
  return new LocalNodeRegistry(self, engine);
}

/** The URLs this node advertises, from the bound ports and `cluster.advertisedHost`. */
export function advertisedUrls(config: TributaryConfig, httpPort: number, mqttPort: number): NodeUrls {
  const wildcard = config.host === "0.0.0.0" || config.host === "::" || config.host === "";
  const host = config.cluster.advertisedHost ?? (wildcard ? hostname() : config.host);
  const h = host.includes(":") ? `[${host}]` : host;
  return { http: `http://${h}:${httpPort}`, ws: `ws://${h}:${httpPort}`, mqtt: mqttPort > 0 ? `mqtt://${h}:${mqttPort}` : null };
}
