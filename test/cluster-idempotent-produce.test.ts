/**
 * Idempotent produce across nodes (Redis engine): a publish retried through another node,
 * with the same (producerId, sequence), is written once and both nodes answer with the
 * same partition and offset. Null-keyed records of a producer go to the same partition on
 * every node (producerPartition), so the retry meets the producer state it needs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisNode } from "./helpers/cluster-nodes.ts";
import { startRedis, type RedisServer } from "./helpers/redis-harness.ts";
import { WsTestClient } from "./helpers/ws-test-client.ts";
import type { TributaryNode } from "../server/src/node.ts";

let redis: RedisServer;
let a: TributaryNode & { wsUrl: string };
let b: TributaryNode & { wsUrl: string };
const sockets: WsTestClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  a = await startRedisNode(redis.url, { defaultPartitions: 4 });
  b = await startRedisNode(redis.url, { defaultPartitions: 4 });
});
afterAll(async () => {
  for (const s of sockets) await s.close();
  await a?.close();
  await b?.close();
  await redis?.destroy();
});

async function ws(url: string): Promise<WsTestClient> {
  const c = await WsTestClient.connect(`${url}/ws`);
  sockets.push(c);
  return c;
}

async function values(node: TributaryNode, topic: string): Promise<string[]> {
  const out: string[] = [];
  for (let p = 0; p < 4; p++) {
    const end = (await node.engine.offsets(topic, p)).endOffset;
    if (end > 0) out.push(...(await node.engine.read(topic, p, 0, { maxRecords: 10_000 })).map((r) => new TextDecoder().decode(r.value!)));
  }
  return out.sort();
}

describe("idempotent produce across nodes (Redis engine)", () => {
  it("writes a null-keyed publish once when the same (producerId, seq) is sent to node A then node B, and both ack the same offset", async () => {
    const [onA, onB] = [await ws(a.wsUrl), await ws(b.wsUrl)];
    const acksA = [];
    const acksB = [];
    for (let seq = 0; seq < 200; seq++) acksA.push(await onA.publish("cross", `v${seq}`, { producerId: "prod-1", seq }));
    // Node B never saw these requests: only the producer state in Redis can tell.
    for (let seq = 0; seq < 200; seq++) acksB.push(await onB.publish("cross", `v${seq}`, { producerId: "prod-1", seq }));
    expect(acksA.every((f) => f.op === "ack")).toBe(true);
    expect(acksB.map((f) => [f.partition, f.offset])).toEqual(acksA.map((f) => [f.partition, f.offset]));
    expect(new Set(acksA.map((f) => f.partition)).size, "the producer moves between partitions every 64 sequences").toBeGreaterThan(1);
    expect(await values(a, "cross")).toEqual(Array.from({ length: 200 }, (_, i) => `v${i}`).sort());
    // Another producer with the same seqs is another publish.
    const other = await onB.publish("cross", "other", { producerId: "prod-2", seq: 0 });
    expect(other.op).toBe("ack");
    expect((await values(b, "cross")).length).toBe(201);
  });

  it("writes a keyed HTTP batch once when it is retried on another node, every record at its first offset", async () => {
    const body = JSON.stringify({ producerId: "http-prod", sequence: 3, records: Array.from({ length: 12 }, (_, i) => ({ key: `k${i}`, value: `r${i}` })) });
    const post = async (url: string) => {
      const res = await fetch(`${url}/topics/batch/records`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(res.status).toBe(200);
      return ((await res.json()) as { offsets: Array<{ partition: number; offset: number }> }).offsets;
    };
    const first = await post(a.url);
    const retried = await post(b.url);
    expect(retried).toEqual(first);
    expect(new Set(first.map((o) => o.partition)).size).toBeGreaterThan(1);
    expect(await values(b, "batch")).toEqual(Array.from({ length: 12 }, (_, i) => `r${i}`).sort());
  });
});
