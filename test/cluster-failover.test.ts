/**
 * Gateway node failure: three `tributary start --engine redis` processes on one Redis. One is
 * SIGKILLed (a crashed machine) while SDK clients stream through it; they reconnect to
 * another node (they were given every node's URL) and resume from their position, with no
 * gap and no duplicate; publishes whose ack was lost with the node are re-sent to a survivor
 * and written exactly once (producer state in Redis). The registry (`tributary cluster status`) drops the dead node once
 * its heartbeat TTL passes. A consumer group whose coordinating node is SIGKILLed re-forms
 * on a survivor once the coordinator lease expires.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, State, type Message, type TributaryClient } from "@tributary/client";
import { runCli, spawnRedisNode, type NodeProcess } from "./helpers/cluster-nodes.ts";
import { rawCommand, startRedis, type RedisServer } from "./helpers/redis-harness.ts";
import { hasMarks, publishMarks, until } from "./helpers/sdk-node.ts";
import { waitFor } from "./helpers/wait.ts";
import type { ClusterStatus } from "../server/src/cluster/node-registry.ts";
import type { GroupDescription } from "../server/src/groups/index.ts";

const MARKER = "__marker__";

const TTL_MS = 1000;
let redis: RedisServer;
let nodes: NodeProcess[] = [];
const clients: TributaryClient[] = [];

beforeAll(async () => {
  redis = await startRedis();
  nodes = await Promise.all([0, 1, 2].map(() => spawnRedisNode(redis.url, { nodeTtlMs: TTL_MS, defaultPartitions: 2 })));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(nodes.map((n) => n.kill("SIGKILL")));
  await redis?.destroy();
});

function client(urls: string[]): TributaryClient {
  const c = connect(urls, { minReconnectDelay: 10, maxReconnectDelay: 100 });
  clients.push(c);
  return c;
}

async function clusterStatus(url: string): Promise<ClusterStatus> {
  return (await (await fetch(`${url}/cluster`)).json()) as ClusterStatus;
}

describe("gateway node failure", () => {
  it("lists the three running nodes in `tributary cluster status`, from a node and straight from Redis", async () => {
    const viaNode = await runCli(["cluster", "status", "--url", nodes[0]!.url]);
    expect(viaNode.stderr).toBe("");
    expect(viaNode.code).toBe(0);
    for (const n of nodes) expect(viaNode.stdout).toContain(n.url);
    expect(viaNode.stdout).toMatch(/^3 nodes \(heartbeat TTL 1000 ms\)$/m);

    const viaRedis = await runCli(["cluster", "status", "--redis", redis.url, "--json"]);
    expect(viaRedis.code).toBe(0);
    const status = JSON.parse(viaRedis.stdout) as ClusterStatus;
    expect(status.nodes.map((n) => n.urls.http).sort()).toEqual(nodes.map((n) => n.url).sort());
    expect(status.nodes.every((n) => n.health === "ready" && n.engine === "redis")).toBe(true);
  });

  it("reconnects the SDK clients of a SIGKILLed node to another node, which resume with no gap and no duplicate, and writes the victim's unacked publishes exactly once", async () => {
    const [n0, n1, victim] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    // Subscribers start on the victim and know every node; the publisher is on a survivor.
    const subscribers = [client([victim.wsUrl, n0.wsUrl, n1.wsUrl]), client([victim.wsUrl, n1.wsUrl, n0.wsUrl])];
    const publisher = client([n0.wsUrl, n1.wsUrl]);
    // A second publisher writes through the victim: its in-flight publishes are re-sent to a survivor.
    const victimPublisher = client([victim.wsUrl, n1.wsUrl]);
    const seen = subscribers.map(() => new Map<number, number[]>());
    const markers = subscribers.map(() => [] as Array<{ partition: number; offset: number }>);
    const values: Array<number | string> = [];
    const reconnectedTo = subscribers.map(() => new Set<string>());
    subscribers.forEach((s, i) => {
      s.on("connected", ({ url }) => reconnectedTo[i]!.add(url));
      s.subscribe<number | string>("telemetry", (m: Message<number | string>) => {
        if (m.value === MARKER) return void markers[i]!.push(m);
        if (i === 0) values.push(m.value);
        let list = seen[i]!.get(m.partition);
        if (!list) seen[i]!.set(m.partition, (list = []));
        list.push(m.offset);
      }, { from: "earliest", credit: 100 });
    });
    await until(() => [publisher, victimPublisher, ...subscribers].every((c) => c.state === State.Connected), "clients connected");

    let published = 0;
    let stop = false;
    const acked: Array<{ partition: number; offset: number }> = [];
    const victimAcked: string[] = [];
    let victimSent = 0;
    const victimProducing = (async () => {
      while (!stop) {
        const ids = Array.from({ length: 20 }, (_, j) => `v${victimSent + j}`);
        victimSent += ids.length;
        const results = await Promise.allSettled(ids.map((id) => victimPublisher.publish("telemetry", id, { key: id.slice(0, 2) })));
        results.forEach((r, j) => r.status === "fulfilled" && victimAcked.push(ids[j]!));
        await new Promise((r) => setTimeout(r, 2)); // pacing the stream, not a synchronisation
      }
    })();
    const producing = (async () => {
      while (!stop) {
        const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => publisher.publish("telemetry", published + j, { key: `d${(published + j) % 8}` })));
        acked.push(...batch);
        published += batch.length;
        await new Promise((r) => setTimeout(r, 2)); // pacing the stream, not a synchronisation
      }
    })();
    const total = (i: number) => [...seen[i]!.values()].reduce((s, l) => s + l.length, 0);
    await until(() => total(0) >= 1000 && total(1) >= 1000, "records flowing through the victim", 20_000).catch((err: Error) => {
      throw new Error(`${err.message}: published ${published}, seen ${total(0)}/${total(1)}, states ${subscribers.map((c) => c.state)}`);
    });
    await victim.kill("SIGKILL");
    const killedAt = published;
    await until(() => published >= killedAt + 2000, "publishing continues", 20_000);
    stop = true;
    await Promise.all([producing, victimProducing]);

    const ends = new Map<number, number>();
    const all = await Promise.all([publisher, victimPublisher].map((p) => p.publish("telemetry", "end", { partition: 0 })));
    acked.push(...all);
    for (const a of acked) ends.set(a.partition, Math.max(ends.get(a.partition) ?? 0, a.offset + 1));
    await until(() => subscribers.every((_, i) => [...ends].every(([p, end]) => (seen[i]!.get(p)?.length ?? 0) >= end)), "subscribers caught up", 20_000);
    // nothing extra arrives late: a marker after the last record of each partition
    const marks = await publishMarks(publisher, "telemetry", [0, 1], MARKER);
    await until(() => markers.every((got) => hasMarks(got, marks)), "the markers at both subscribers", 20_000);

    for (let i = 0; i < subscribers.length; i++) {
      expect([...reconnectedTo[i]!].some((u) => !u.startsWith(victim.wsUrl)), `subscriber ${i} moved to a survivor`).toBe(true);
      for (const [partition, end] of ends) {
        const offsets = seen[i]!.get(partition)!;
        expect(offsets.length, `subscriber ${i} partition ${partition}: no duplicate`).toBe(end);
        expect(offsets.every((o, k) => o === k), `subscriber ${i} partition ${partition}: no gap, in order`).toBe(true);
      }
    }
    // Publishes through the victim: every acknowledged one is in the log; count those written twice.
    const counts = new Map<number | string, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect(victimAcked.filter((id) => !counts.has(id))).toEqual([]);
    const twice = [...counts].filter(([v, n]) => typeof v === "string" && v !== "end" && n > 1).length;
    console.log(`publishes through the SIGKILLed node: ${victimAcked.length} acked (${victimSent} sent), 0 acked lost, ${twice} written twice`);
    // Acks lost with the node are re-sent to a survivor with the same (producerId, seq): the
    // producer state in Redis makes the survivor answer with the first write's offset.
    expect(twice, "publishes written twice after being re-sent to a survivor").toBe(0);
    expect(victimSent - victimAcked.length, "no publish through the victim failed").toBe(0);
    expect([...counts].filter(([v, n]) => typeof v === "number" && n > 1)).toEqual([]);
  });

  it("drops the SIGKILLed node from the cluster status once its heartbeat TTL has passed", async () => {
    const [n0, n1] = nodes as [NodeProcess, NodeProcess];
    let status = await clusterStatus(n0.url);
    await waitFor(async () => (status = await clusterStatus(n0.url)).nodes.length === 2, { timeoutMs: TTL_MS + 3000, what: "the registry to drop the dead node", intervalMs: 100 }).catch(() => undefined);
    expect(status.nodes.map((n) => n.urls.http).sort()).toEqual([n0.url, n1.url].sort());
    const cli = await runCli(["cluster", "status", "--url", n1.url]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/^2 nodes/m);
    expect(cli.stdout).not.toContain(nodes[2]!.url);
  });

  it("moves a consumer group to another node when its coordinating node is SIGKILLed, and its members consume every record", async () => {
    const [n0, n1] = nodes as [NodeProcess, NodeProcess];
    const coordinator = await spawnRedisNode(redis.url, { nodeTtlMs: TTL_MS, defaultPartitions: 4 });
    nodes.push(coordinator);
    const producer = client([n0.wsUrl]);
    const created = await fetch(`${n0.url}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "jobs", partitions: 4 }) });
    expect(created.status).toBe(201);
    await producer.publish("jobs", -1, { partition: 0 });
    // The first member joins through `coordinator`, so that node takes the group's lease.
    const seen: string[] = [];
    const assignments = [0, 0, 0];
    const partitions: number[][] = [[], [], []];
    const member = (urls: string[], i: number) => {
      const c = client(urls);
      const sub = c.subscribe<number>("jobs", (m) => void seen.push(`${m.partition}:${m.offset}`), { group: "workers", sessionTimeoutMs: 1500, autoCommitIntervalMs: 100, reset: "earliest" });
      sub.on("assigned", (e) => {
        assignments[i]!++;
        partitions[i] = e.partitions;
      });
      return c;
    };
    member([coordinator.wsUrl, n0.wsUrl], 0);
    await until(() => assignments[0]! > 0, "first member assigned");
    member([n0.wsUrl], 1);
    member([n1.wsUrl], 2);
    const disjoint = () => partitions.flat().length === 4 && new Set(partitions.flat()).size === 4;
    await until(() => assignments.every((n) => n > 0) && disjoint(), "three members on three nodes share 4 partitions", 20_000).catch(async (err: Error) => {
      const d = await (await fetch(`${n0.url}/groups/workers`)).text();
      throw new Error(`${err.message}: assignments ${assignments}, partitions ${JSON.stringify(partitions)}, group ${d}\n${coordinator.stderr().slice(-2000)}\n${n0.stderr().slice(-1500)}`);
    });
    const live = (await clusterStatus(n0.url)).nodes;
    expect(live).toHaveLength(3);
    const coordinatorId = live.find((n) => n.urls.http === coordinator.url)!.nodeId;
    expect(await rawCommand(redis.port, "GET {trib:cluster}:lease:workers"), "the node about to die coordinates the group").toContain(`${coordinatorId}|`);

    for (let i = 0; i < 400; i++) await producer.publish("jobs", i, { key: `j${i}` });
    await until(() => new Set(seen).size >= 401, "first records consumed", 20_000);
    // the members have committed what they consumed (fewer re-deliveries after the move)
    await waitFor(async () => ((await (await fetch(`${n0.url}/groups/workers`)).json()) as GroupDescription).partitions.every((p) => p.lag === 0), {
      timeoutMs: 10_000,
      what: "the group's commits to reach the end of every partition",
      intervalMs: 50,
    });

    const before = [...assignments];
    const killedAt = Date.now();
    await coordinator.kill("SIGKILL");
    // Members on the survivors find the lease expired, the group starts again on a survivor, everyone re-joins.
    await until(() => assignments[1]! > before[1]! && assignments[2]! > before[2]! && partitions[1]!.length + partitions[2]!.length === 4, "group re-formed on the survivors", 20_000);
    const movedAfterMs = Date.now() - killedAt;
    for (let i = 400; i < 800; i++) await producer.publish("jobs", i, { key: `j${i}` });
    await until(() => new Set(seen).size >= 801, "every record consumed at least once", 20_000);
    console.log(`group coordinator SIGKILL: group re-formed ${movedAfterMs} ms after the kill (lease TTL ${TTL_MS} ms), ${seen.length - new Set(seen).size} records re-delivered`);
  });
});
