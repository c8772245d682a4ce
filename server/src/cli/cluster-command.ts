/**
 * `tributary cluster status`: the live nodes of a cluster (docs/cluster.md), asked of one
 * node (`--url`, GET /cluster) or read straight from the registry in Redis (`--redis <url>`,
 * which works even when no node answers).
 *
 *   NODE      HEALTH  HTTP                    MQTT                    WS  MQTT  UP    SEEN
 *   4f1c...   ready   http://10.0.0.5:8080    mqtt://10.0.0.5:1883    12  3     2h5m  1s ago
 *
 * Exit codes: 0 ok; 1 node or Redis unreachable (UNAVAILABLE); 2 usage.
 */
import type { Command } from "commander";
import type { ClusterStatus } from "../cluster/node-registry.ts";
import { RedisNodeRegistry } from "../cluster/redis-node-registry.ts";
import { addUrlOption, clientFrom } from "./client-options.ts";

export function registerClusterCommand(program: Command): void {
  const cluster = program.command("cluster").description("Inspect the cluster: the nodes sharing this node's Redis.");
  addUrlOption(
    cluster
      .command("status")
      .description("List the live nodes (id, health, URLs, connections, uptime, last heartbeat).")
      .option("--redis <url>", "read the registry from this Redis instead of asking a node (same URL forms as start --redis)")
      .option("--json", "print the status as JSON"),
  ).action(async (o: { url: string; redis?: string; json?: boolean }) => {
    const status = o.redis ? await fromRedis(o.redis) : await clientFrom(o).clusterStatus();
    process.stdout.write(o.json ? JSON.stringify(status) + "\n" : render(status, Date.now()));
  });
}

async function fromRedis(url: string): Promise<ClusterStatus> {
  const registry = await RedisNodeRegistry.connect(null, { redisUrl: url });
  try {
    return await registry.status();
  } finally {
    await registry.close();
  }
}

export function render(status: ClusterStatus, now: number): string {
  const rows = [["NODE", "HEALTH", "ENGINE", "HTTP", "MQTT", "WS", "MQTT", "MQTT/WS", "UP", "SEEN"]];
  for (const n of status.nodes) {
    rows.push([
      n.nodeId === status.self ? `${n.nodeId} *` : n.nodeId,
      n.health,
      n.engine,
      n.urls.http,
      n.urls.mqtt ?? "-",
      String(n.connections.ws ?? "-"),
      String(n.connections.mqtt ?? "-"),
      String(n.connections["mqtt-ws"] ?? "-"),
      duration(now - n.startedAt),
      `${duration(now - n.lastHeartbeat)} ago`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const body = rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
  return `${body}\n${status.nodes.length} node${status.nodes.length === 1 ? "" : "s"}${status.ttlMs > 0 ? ` (heartbeat TTL ${status.ttlMs} ms)` : ""}\n`;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}
