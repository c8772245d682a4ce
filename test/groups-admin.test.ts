/**
 * Consumer groups: fencing over the wire, lag while producing (HTTP describe), and
 * reset-offsets (HTTP and CLI) allowed only while the group is empty. Members are real SDK
 * clients in their own processes; the fencing test speaks the wire protocol directly.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConsumerProcess, waitFor, type ConsumerOptions } from "./helpers/group-consumer-proc.ts";
import { KeyedProducer, describeGroup } from "./helpers/groups.ts";
import { startSdkTestNode, type SdkTestNode } from "./helpers/sdk-node.ts";
import { WsTestClient } from "./helpers/ws-test-client.ts";

const BIN = fileURLToPath(new URL("../server/bin/tributary.mjs", import.meta.url));
let node: SdkTestNode;
let procs: ConsumerProcess[] = [];
const clients: WsTestClient[] = [];

beforeAll(async () => {
  node = await startSdkTestNode();
});
afterEach(async () => {
  for (const p of procs) p.kill();
  await Promise.all(procs.map((p) => p.exited));
  procs = [];
  for (const c of clients.splice(0)) c.ws.terminate();
});
afterAll(async () => node?.close());

function spawnMember(options: Omit<ConsumerOptions, "url">): ConsumerProcess {
  const p = new ConsumerProcess({ url: node.url, sessionTimeoutMs: 1500, autoCommitIntervalMs: 200, ...options });
  procs.push(p);
  return p;
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args, "--url", `http://127.0.0.1:${node.port}`], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function member(topic: string, group: string, clientId: string) {
  const c = await WsTestClient.connect(`${node.url}/ws`, { clientId });
  clients.push(c);
  const sub = 1;
  const joined = await c.request({ op: "subscribe", sub, topic, group, reset: "earliest", sessionTimeoutMs: 1000 });
  expect(joined.op).toBe("joined");
  return { c, sub, memberId: joined.memberId as string };
}

describe("consumer group admin and fencing", () => {
  it("fences-commits-with-a-stale-generation-or-for-partitions-the-member-no-longer-owns", async () => {
    await node.node.broker.createTopic("fence", { partitions: 4 });
    const x = await member("fence", "fence-g", "x");
    const first = await x.c.waitFor((f) => f.op === "assign");
    const g1 = first.generation as number;
    expect((first.partitions as unknown[]).length).toBe(4);
    // the current generation commits fine
    expect((await x.c.request({ op: "commit", sub: x.sub, generation: g1, offsets: [{ topic: "fence", partition: 0, offset: 0 }] })).op).toBe("committed");
    const wrong = await x.c.request({ op: "commit", sub: x.sub, generation: g1 + 7, offsets: [{ topic: "fence", partition: 0, offset: 0 }] });
    expect(wrong).toMatchObject({ op: "error", code: "ILLEGAL_GENERATION" });

    // y joins: x is asked to give up two partitions, confirms, and gets generation g2
    const y = await member("fence", "fence-g", "y");
    const revoke = await x.c.waitFor((f) => f.op === "revoke");
    const moved = (revoke.partitions as Array<{ partition: number }>).map((p) => p.partition);
    expect(moved).toHaveLength(2);
    x.c.send({ op: "revoked", sub: x.sub, generation: revoke.generation, partitions: revoke.partitions });
    const second = await x.c.waitFor((f) => f.op === "assign" && (f.generation as number) > g1);
    const g2 = second.generation as number;
    const yAssign = await y.c.waitFor((f) => f.op === "assign");
    expect((yAssign.added as Array<{ partition: number }>).map((p) => p.partition).sort()).toEqual(moved.sort());
    const kept = (second.partitions as Array<{ partition: number }>).map((p) => p.partition);

    const stale = await x.c.request({ op: "commit", sub: x.sub, generation: g1, offsets: [{ topic: "fence", partition: kept[0], offset: 0 }] });
    expect(stale).toMatchObject({ op: "error", code: "ILLEGAL_GENERATION" });
    const notOwned = await x.c.request({ op: "commit", sub: x.sub, generation: g2, offsets: [{ topic: "fence", partition: moved[0], offset: 0 }] });
    expect(notOwned).toMatchObject({ op: "error", code: "PARTITION_NOT_OWNED" });
    // nothing fenced was written: partition moved[0] has no commit
    const d = await describeGroup(node.node, "fence-g");
    expect(d.partitions.find((p) => p.partition === moved[0])!.committedOffset).toBeNull();

    // x's connection dies; after its session timeout its memberId is fenced for good
    x.c.ws.terminate();
    await waitFor(async () => (await describeGroup(node.node, "fence-g")).members.length === 1, "x timed out", 10_000);
    await expect(node.node.groups.commit("fence-g", { memberId: x.memberId, generation: g2, offsets: [{ topic: "fence", partition: kept[0]!, offset: 0 }] })).rejects.toMatchObject({
      code: "UNKNOWN_MEMBER",
    });
    const all = await y.c.waitFor((f) => f.op === "assign" && (f.partitions as unknown[]).length === 4);
    expect(all.generation as number).toBeGreaterThan(g2);
  });

  it("reports-lag-as-end-minus-committed-per-partition-while-producing", async () => {
    await node.node.broker.createTopic("lagging", { partitions: 3 });
    const producer = new KeyedProducer(node.node, "lagging", 9);
    spawnMember({ topic: "lagging", group: "lag-g", clientId: "slow", delayMs: 2 });
    await waitFor(() => procs[0]!.partitions.length === 3, "assigned", 30_000);
    const stream = producer.stream(800);
    // Sample the description while producing until it showed lag on committed partitions
    // (the consumer is slower than the producer); every sample must add up.
    let sawLag = 0;
    let samples = 0;
    await waitFor(
      async () => {
        const endsBefore = new Map(producer.end);
        const d = await describeGroup(node.node, "lag-g");
        let sum = 0;
        for (const p of d.partitions) {
          expect(p.endOffset).toBeGreaterThanOrEqual(endsBefore.get(p.partition) ?? 0);
          expect(p.endOffset).toBeLessThanOrEqual(producer.end.get(p.partition) ?? 0);
          if (p.committedOffset !== null) {
            expect(p.lag).toBe(p.endOffset - p.committedOffset);
            sum += p.lag!;
          } else expect(p.lag).toBeNull();
        }
        expect(d.totalLag).toBe(sum);
        sawLag = Math.max(sawLag, d.totalLag);
        samples++;
        return sawLag > 0 && samples >= 6;
      },
      "lag of committed partitions while producing",
      30_000,
    );
    await stream.stop();
    await waitFor(async () => (await describeGroup(node.node, "lag-g")).totalLag === 0, "caught up", 30_000);
    const d = await describeGroup(node.node, "lag-g");
    for (const p of d.partitions) expect(p.committedOffset).toBe(producer.end.get(p.partition));
  });

  it("resets-offsets-over-http-and-cli-only-while-the-group-has-no-members", async () => {
    await node.node.broker.createTopic("replay", { partitions: 2 });
    const producer = new KeyedProducer(node.node, "replay", 4);
    await producer.produce(200);
    const m = spawnMember({ topic: "replay", group: "replay-g", clientId: "r1" });
    await waitFor(() => m.records.length === 200, "processed").catch((err) => {
      throw new Error(`${err} ${m.records.length} ${JSON.stringify(m.events)} ${m.stderr}`);
    });
    await waitFor(async () => (await describeGroup(node.node, "replay-g")).totalLag === 0, "committed");

    const refused = await fetch(`${node.node.url}/groups/replay-g/reset-offsets`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ topic: "replay", to: "earliest" }) });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("GROUP_NOT_EMPTY");
    const cliRefused = await cli(["groups", "reset-offsets", "replay-g", "--topic", "replay", "--to", "earliest"]);
    expect(cliRefused.code).toBe(4); // conflict: the group has members (docs/cli.md exit codes)
    expect(cliRefused.stderr).toContain("GROUP_NOT_EMPTY");

    await m.close(); // commits and leaves: the group is empty at once
    expect(m.events.at(-1)).toEqual({ ev: "closed" });
    const ok = await cli(["groups", "reset-offsets", "replay-g", "--topic", "replay", "--to", "earliest", "--json"]);
    expect(ok.code, ok.stderr).toBe(0);
    const result = JSON.parse(ok.stdout) as { partitions: Array<{ partition: number; previous: number; offset: number }> };
    expect(result.partitions.map((p) => [p.previous, p.offset])).toEqual([0, 1].map((p) => [producer.end.get(p), 0]));
    const http = await fetch(`${node.node.url}/groups/replay-g/reset-offsets`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ topic: "replay", to: { offset: 10 }, partitions: [1] }) });
    expect(http.status).toBe(200);

    // a new member replays from the reset positions
    const again = spawnMember({ topic: "replay", group: "replay-g", clientId: "r2" });
    await waitFor(() => again.partitions.length === 2, "assigned", 30_000);
    const added = again.events.find((e) => e.ev === "assigned")!.added as Array<{ p: number; o: number }>;
    expect(added.sort((a, b) => a.p - b.p)).toEqual([
      { p: 0, o: 0 },
      { p: 1, o: 10 },
    ]);
    await waitFor(() => again.records.length === 200 - 10, "replayed");
  });
});
