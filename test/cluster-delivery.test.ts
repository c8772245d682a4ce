/**
 * Cross-node delivery on one Redis: three in-process nodes share a standalone redis-server;
 * a record published through one node reaches subscribers connected to the others, in
 * order, with no gap. Also: GET /cluster and /readyz on the Redis engine, and /cluster on
 * the file engine.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, State, type Message, type TributaryClient } from "@tributary/client";
import { percentile, startRedisNode } from "./helpers/cluster-nodes.ts";
import { startRedis, type RedisServer } from "./helpers/redis-harness.ts";
import { hasMarks, publishMarks, startSdkTestNode, until } from "./helpers/sdk-node.ts";
import type { TributaryNode } from "../server/src/node.ts";
import type { ClusterStatus } from "../server/src/cluster/node-registry.ts";

let redis: RedisServer;
let nodes: Array<TributaryNode & { wsUrl: string }> = [];
const clients: TributaryClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const url = `${redis.url}?prefix=delivery`;
  nodes = await Promise.all([0, 1, 2].map(() => startRedisNode(url, { defaultPartitions: 3 })));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(nodes.map((n) => n.close()));
  await redis?.destroy();
});

function client(url: string | string[]): TributaryClient {
  const c = connect(url, { minReconnectDelay: 10, maxReconnectDelay: 200 });
  clients.push(c);
  return c;
}

const MARKER = "__marker__";

interface Sample {
  i: number;
  key: string;
  sentAt: number;
}

describe("cross-node delivery on one Redis", () => {
  it("delivers records published on node B to subscribers on nodes A and C, in order per partition and per key, with no gap", async () => {
    const [a, b, c] = nodes as [TributaryNode & { wsUrl: string }, TributaryNode & { wsUrl: string }, TributaryNode & { wsUrl: string }];
    const publisher = client(b.wsUrl);
    const subscribers = [client(a.wsUrl), client(c.wsUrl)];
    const seen = subscribers.map(() => new Map<number, Message<Sample>[]>());
    const markers = subscribers.map(() => [] as Array<{ partition: number; offset: number }>);
    const latencies: number[] = [];
    subscribers.forEach((s, n) =>
      s.subscribe<Sample>("orders", (m) => {
        if ((m.value as unknown) === MARKER) return void markers[n]!.push(m);
        if (n === 0) latencies.push(Date.now() - m.value.sentAt);
        let list = seen[n]!.get(m.partition);
        if (!list) seen[n]!.set(m.partition, (list = []));
        list.push(m);
      }, { from: "earliest" }),
    );
    await until(() => [publisher, ...subscribers].every((x) => x.state === State.Connected), "clients connected");

    const TOTAL = 3000;
    for (let i = 0; i < TOTAL; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => {
          const key = `k${(i + j) % 16}`;
          return publisher.publish("orders", { i: i + j, key, sentAt: Date.now() } satisfies Sample, { key });
        }),
      );
    }
    const count = (n: number) => [...seen[n]!.values()].reduce((sum, l) => sum + l.length, 0);
    await until(() => count(0) >= TOTAL && count(1) >= TOTAL, "every record on A and C", 30_000);
    // nothing extra arrives late: a marker after the last record of each partition
    const marks = await publishMarks(publisher, "orders", [0, 1, 2], MARKER);
    await until(() => markers.every((got) => hasMarks(got, marks)), "the markers on A and C");

    for (const perPartition of seen) {
      expect([...perPartition.keys()].sort()).toEqual([0, 1, 2]);
      let sum = 0;
      for (const [partition, list] of perPartition) {
        const offsets = list.map((m) => m.offset);
        expect(offsets, `partition ${partition} offsets`).toEqual(offsets.map((_, i) => i));
        sum += list.length;
      }
      expect(sum).toBe(TOTAL);
      const lastByKey = new Map<string, number>();
      for (const list of perPartition.values()) {
        for (const m of list) {
          expect(m.value.i, `key ${m.value.key} in publish order`).toBeGreaterThan(lastByKey.get(m.value.key) ?? -1);
          lastByKey.set(m.value.key, m.value.i);
        }
      }
    }
    // Both subscribers saw the same records at the same offsets.
    for (const partition of [0, 1, 2]) {
      expect(seen[1]!.get(partition)!.map((m) => m.value.i)).toEqual(seen[0]!.get(partition)!.map((m) => m.value.i));
    }
    latencies.sort((x, y) => x - y);
    console.log(`cross-node delivery B→A (publish call → handler, batches of 100): p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms over ${latencies.length}`);
  });

  it("lists every live node in GET /cluster with its URLs, and answers /readyz 200 while Redis answers", async () => {
    for (const node of nodes) {
      const status = (await (await fetch(`${node.url}/cluster`)).json()) as ClusterStatus;
      expect(status.self).toBe(node.nodeId);
      expect(status.engine).toBe("redis");
      expect(status.nodes.map((n) => n.nodeId).sort()).toEqual(nodes.map((n) => n.nodeId).sort());
      const self = status.nodes.find((n) => n.nodeId === node.nodeId)!;
      expect(self.urls).toEqual({ http: node.url, ws: node.wsUrl, mqtt: null });
      expect(self.health).toBe("ready");
      expect(typeof self.connections.ws).toBe("number");
      const ready = await fetch(`${node.url}/readyz`);
      expect(ready.status).toBe(200);
    }
  });

  it("lists just this node in GET /cluster with the file engine", async () => {
    const single = await startSdkTestNode();
    try {
      const status = (await (await fetch(`http://127.0.0.1:${single.port}/cluster`)).json()) as ClusterStatus;
      expect(status.engine).toBe("file");
      expect(status.nodes).toHaveLength(1);
      expect(status.nodes[0]!.nodeId).toBe(single.node.nodeId);
      expect(status.nodes[0]!.urls.http).toBe(`http://127.0.0.1:${single.port}`);
    } finally {
      await single.close();
    }
  });
});
