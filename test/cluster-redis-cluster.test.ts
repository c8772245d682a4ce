/**
 * Two nodes on a Redis Cluster (3 primaries + 3 replicas): the registry, cross-node delivery
 * and a consumer group whose members sit on both nodes work with partitions spread over
 * shards and the cluster keys under one hash tag.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type TributaryClient } from "@tributary/client";
import { startRedisNode } from "./helpers/cluster-nodes.ts";
import { startRedisCluster, type RedisClusterSetup } from "./helpers/redis-harness.ts";
import { until } from "./helpers/sdk-node.ts";
import type { ClusterStatus } from "../server/src/cluster/node-registry.ts";

let cluster: RedisClusterSetup;
beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(async () => {
  await cluster?.destroy();
});

const MARKER_KEY = "__marker__";

describe("nodes on Redis Cluster", () => {
  it("lists both nodes, delivers across them and shares a consumer group between them, each record once", async () => {
    const url = `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(",")}`;
    const a = await startRedisNode(url, { nodeTtlMs: 3000 });
    const b = await startRedisNode(url, { nodeTtlMs: 3000 });
    const clients: TributaryClient[] = [];
    try {
      const status = (await (await fetch(`${a.url}/cluster`)).json()) as ClusterStatus;
      expect(status.nodes.map((n) => n.nodeId).sort()).toEqual([a.nodeId, b.nodeId].sort());

      await a.broker.createTopic("readings", { partitions: 4 });
      const owned: number[][] = [[], []];
      const grouped: string[] = [];
      const groupMarkers: string[] = [];
      const plainMarkers: string[] = [];
      const isMarker = (m: { key: string | null }) => m.key === MARKER_KEY;
      [a, b].forEach((node, i) => {
        const c = connect(node.wsUrl);
        clients.push(c);
        const sub = c.subscribe("readings", (m) => void (isMarker(m) ? groupMarkers : grouped).push(`${m.partition}:${m.offset}`), { group: "meters", reset: "earliest", autoCommitIntervalMs: 100 });
        sub.on("assigned", (e) => (owned[i] = e.partitions));
      });
      const plain: string[] = [];
      const watcher = connect(b.wsUrl);
      clients.push(watcher);
      watcher.subscribe("readings", (m) => void (isMarker(m) ? plainMarkers : plain).push(`${m.partition}:${m.offset}`), { from: "earliest" });
      await until(() => owned[0]!.length === 2 && owned[1]!.length === 2 && new Set(owned.flat()).size === 4, "two partitions per member", 15_000);

      for (let i = 0; i < 400; i += 50) {
        await a.broker.produce("readings", Array.from({ length: 50 }, (_, j) => ({ key: Buffer.from(`m${i + j}`), value: Buffer.from(String(i + j)) })));
      }
      await until(() => grouped.length >= 400 && plain.length >= 400, "every record delivered", 15_000);
      // nothing extra arrives late: a marker after the last record of each partition, at its group owner and at the watcher
      const marks = await a.broker.produce(
        "readings",
        [0, 1, 2, 3].map((partition) => ({ key: Buffer.from(MARKER_KEY), value: Buffer.from('"marker"'), partition })),
      );
      const markAt = marks.map((m) => `${m.partition}:${m.offset}`);
      await until(() => markAt.every((at) => groupMarkers.includes(at) && plainMarkers.includes(at)), "the markers", 15_000);
      expect(new Set(grouped).size).toBe(400);
      expect(grouped).toHaveLength(400);
      expect(plain).toHaveLength(400);
    } finally {
      for (const c of clients) c.close();
      await a.close();
      await b.close();
    }
  });
});
