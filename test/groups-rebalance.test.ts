/**
 * Consumer groups end to end: real SDK clients, each in its own process
 * (test/fixtures/group-consumer.ts), against a real node; the group as seen over HTTP.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect, State, type TributaryClient } from "@tributary/client";
import { ConsumerProcess, waitFor, type ConsumerOptions, type ProcessedRecord } from "./helpers/group-consumer-proc.ts";
import { KeyedProducer, describeGroup } from "./helpers/groups.ts";
import { startSdkTestNode, type SdkTestNode } from "./helpers/sdk-node.ts";
import { startTcpProxy } from "./helpers/tcp-proxy.ts";

const SESSION_MS = 1500;
let node: SdkTestNode;
let procs: ConsumerProcess[] = [];

beforeAll(async () => {
  node = await startSdkTestNode();
});
afterEach(async () => {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
  procs = [];
});
afterAll(async () => node?.close());

function spawnMember(options: Omit<ConsumerOptions, "url">): ConsumerProcess {
  const p = new ConsumerProcess({ url: node.url, sessionTimeoutMs: SESSION_MS, autoCommitIntervalMs: 200, ...options });
  procs.push(p);
  return p;
}

const total = () => procs.reduce((n, p) => n + p.records.length, 0);

/** (partition, offset) → how many times processed, over all members. */
function tally(records: ProcessedRecord[]): Map<string, number> {
  const seen = new Map<string, number>();
  for (const r of records) seen.set(`${r.p}:${r.o}`, (seen.get(`${r.p}:${r.o}`) ?? 0) + 1);
  return seen;
}

function expectEveryRecordProcessed(producer: KeyedProducer, seen: Map<string, number>): void {
  const missing: string[] = [];
  for (const [p, end] of producer.end) for (let o = 0; o < end; o++) if (!seen.has(`${p}:${o}`)) missing.push(`${p}:${o}`);
  expect(missing.slice(0, 10), `${missing.length} records never processed`).toEqual([]);
}

describe("consumer groups across processes", () => {
  it("six-partitions-three-member-processes-get-two-each-and-the-group-is-stable", async () => {
    await node.node.broker.createTopic("orders-a", { partitions: 6 });
    const members = [0, 1, 2].map((i) => spawnMember({ topic: "orders-a", group: "billing-a", clientId: `a${i}` }));
    await waitFor(() => members.every((m) => m.partitions.length === 2), "two partitions per member", 30_000);
    await waitFor(async () => (await describeGroup(node.node, "billing-a")).state === "Stable", "Stable");
    const d = await describeGroup(node.node, "billing-a");
    expect(d.members).toHaveLength(3);
    expect(d.members.map((m) => m.assignment.length)).toEqual([2, 2, 2]);
    const owners = d.partitions.map((p) => p.owner);
    expect(new Set(owners).size).toBe(3);
    expect(owners.every((o) => o !== null)).toBe(true);
    // every member's view agrees with the coordinator's
    for (const m of members) {
      const memberId = m.events.find((e) => e.ev === "joined")!.memberId as string;
      const described = d.members.find((x) => x.memberId === memberId)!;
      expect(described.assignment.map((tp) => tp.partition)).toEqual(m.partitions);
      expect(described.clientId).toBe(m.clientId);
    }
  });

  it("sigkilled-member-partitions-move-after-the-session-timeout-and-resume-from-its-last-commit-without-loss", async () => {
    await node.node.broker.createTopic("orders-b", { partitions: 6 });
    const producer = new KeyedProducer(node.node, "orders-b", 24);
    const members = [0, 1, 2].map((i) => spawnMember({ topic: "orders-b", group: "billing-b", clientId: `b${i}` }));
    await waitFor(() => members.every((m) => m.partitions.length === 2), "two partitions per member", 30_000);
    const stream = producer.stream(3000);
    await waitFor(() => total() > 1500, "records flowing");
    const victim = members[0]!;
    const victimPartitions = victim.partitions;
    const survivors = members.slice(1);
    const eventsAtKill = survivors.map((m) => m.events.length);
    victim.kill();
    const killedAt = Date.now();
    await victim.exited;
    // The dead member cannot commit any more: what is committed now is its last commit.
    const atKill = await describeGroup(node.node, "billing-b");
    const lastCommit = new Map(atKill.partitions.map((p) => [p.partition, p.committedOffset ?? 0]));
    const lastProcessed = new Map<number, number>();
    for (const r of victim.records) lastProcessed.set(r.p, Math.max(lastProcessed.get(r.p) ?? -1, r.o));

    await waitFor(() => survivors.every((m) => m.partitions.length === 3), "the victim's partitions reassigned", 15_000);
    const movedAfter = Date.now() - killedAt;
    expect(movedAfter).toBeGreaterThanOrEqual(SESSION_MS - 300); // not before the session timeout (sweep granularity 250 ms)
    await stream.stop();
    await waitFor(async () => (await describeGroup(node.node, "billing-b")).totalLag === 0, "all committed", 20_000);

    // The new owners started exactly at the victim's last commit.
    for (const p of victimPartitions) {
      const starts = survivors.flatMap((m, i) => m.events.slice(eventsAtKill[i]).filter((e) => e.ev === "assigned").flatMap((e) => (e.added as Array<{ p: number; o: number }>).filter((a) => a.p === p)));
      expect(starts.map((s) => s.o)).toEqual([lastCommit.get(p)]);
    }
    const all = procs.flatMap((m) => m.records);
    const seen = tally(all);
    expectEveryRecordProcessed(producer, seen);
    // Duplicates: only records of the victim's partitions it processed after its last commit.
    let duplicates = 0;
    let window = 0;
    for (const p of victimPartitions) window += Math.max(0, (lastProcessed.get(p) ?? -1) + 1 - lastCommit.get(p)!);
    for (const [key, n] of seen) {
      if (n === 1) continue;
      const [p, o] = key.split(":").map(Number) as [number, number];
      expect(victimPartitions).toContain(p);
      expect(o).toBeGreaterThanOrEqual(lastCommit.get(p)!);
      expect(o).toBeLessThanOrEqual(lastProcessed.get(p)!);
      expect(n).toBe(2);
      duplicates++;
    }
    expect(duplicates).toBe(window);
    console.log(`[groups] kill: ${all.length} processed for ${producer.produced} produced, ${duplicates} duplicates (uncommitted window ${window}), partitions moved ${movedAfter} ms after SIGKILL`);
  });

  it("a-joining-member-moves-only-what-balance-needs-and-never-pauses-partitions-that-stay", async () => {
    await node.node.broker.createTopic("orders-c", { partitions: 6 });
    const producer = new KeyedProducer(node.node, "orders-c", 24);
    const [a, b] = [0, 1].map((i) => spawnMember({ topic: "orders-c", group: "billing-c", clientId: `c${i}` })) as [ConsumerProcess, ConsumerProcess];
    await waitFor(() => a.partitions.length === 3 && b.partitions.length === 3, "three partitions each", 30_000);
    const stream = producer.stream(2000);
    await waitFor(() => total() > 500, "records flowing");
    const before = { a: a.partitions, b: b.partitions };
    const eventsBefore = { a: a.events.length, b: b.events.length };
    const c = spawnMember({ topic: "orders-c", group: "billing-c", clientId: "c2" });
    await waitFor(() => c.partitions.length === 2 && a.partitions.length === 2 && b.partitions.length === 2, "2/2/2", 30_000);
    await waitFor(() => c.records.length > 50, "the new member consuming");
    await stream.stop();
    await waitFor(async () => (await describeGroup(node.node, "billing-c")).totalLag === 0, "all committed", 20_000);

    for (const [m, was, from] of [
      [a, before.a, eventsBefore.a],
      [b, before.b, eventsBefore.b],
    ] as const) {
      const revokes = m.events.slice(from).filter((e) => e.ev === "revoked");
      // One revoke, of exactly the partition that moved to the new member.
      expect(revokes).toHaveLength(1);
      const moved = revokes[0]!.partitions as number[];
      expect(moved).toHaveLength(1);
      expect(c.partitions).toContain(moved[0]);
      const kept = was.filter((p) => !moved.includes(p));
      expect(m.partitions).toEqual(kept);
      // Kept partitions: one gapless run of offsets from start to end, never restarted.
      for (const p of kept) {
        const offsets = m.records.filter((r) => r.p === p).map((r) => r.o);
        expect(offsets).toEqual(Array.from({ length: producer.end.get(p)! }, (_, i) => i));
      }
    }
    expectEveryRecordProcessed(producer, tally(procs.flatMap((m) => m.records)));
  });
  it("a-member-whose-connection-drops-during-a-rebalance-commits-what-it-processed-before-its-partitions-move-and-nothing-is-processed-twice", async () => {
    await node.node.broker.createTopic("orders-d", { partitions: 4 });
    const producer = new KeyedProducer(node.node, "orders-d", 16);
    await producer.produce(400);
    const proxy = await startTcpProxy(node.port);
    const clients: TributaryClient[] = [];
    const seen: string[] = [];
    const assigned = new Map<string, number>();
    const member = (clientId: string, url: string) => {
      const client = connect(url, { clientId, minReconnectDelay: 10, maxReconnectDelay: 50, codec: "string" });
      clients.push(client);
      // range is eager: the joining member makes the coordinator revoke every partition from the other
      const sub = client.subscribe<string>("orders-d", (m) => void seen.push(`${m.partition}:${m.offset}`), { group: "billing-d", strategy: "range", reset: "earliest", sessionTimeoutMs: 10_000, autoCommitIntervalMs: 600_000 });
      sub.on("assigned", (e) => assigned.set(clientId, e.partitions.length));
      return client;
    };
    try {
      const a = member("d-a", proxy.url);
      await waitFor(() => seen.length === 400, "a processed every record");
      expect((await describeGroup(node.node, "billing-d")).partitions.every((p) => p.committedOffset === null)).toBe(true); // nothing committed yet

      // a's connection is cut, and it cannot reconnect for now
      proxy.refuse = true;
      proxy.sever();
      await waitFor(() => a.state !== State.Connected, "a disconnected");
      member("d-b", node.url);
      // The rebalance waits for a: its revoke is pending, b has no partition
      await waitFor(async () => (await describeGroup(node.node, "billing-d")).members.find((m) => m.clientId === "d-a")?.revoking.length === 4, "the revoke of a's partitions to be pending");
      expect(assigned.has("d-b")).toBe(false);

      // a comes back within its session timeout: it re-binds, gets the revoke, commits, confirms
      proxy.refuse = false;
      await waitFor(() => assigned.get("d-a") === 2 && assigned.get("d-b") === 2, "2/2 after a came back");
      const d = await describeGroup(node.node, "billing-d");
      expect(d.partitions.map((p) => p.committedOffset)).toEqual(d.partitions.map((p) => p.endOffset));
      await producer.produce(400);
      // Each partition is consumed in order, so a re-delivery of old records would come before its last record.
      await waitFor(() => new Set(seen).size === 800, "every record processed");
      expect(seen.length, "no record processed twice").toBe(800);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await proxy.close();
    }
  });
});
