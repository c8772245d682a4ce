/**
 * Sentinel failover under a steady SDK produce at acks=all (replicas=1: each acked append
 * was on a replica, via WAIT 1): the primary is SIGKILLed, the Sentinels promote a replica,
 * both nodes follow it, producers and subscribers carry on. Counts acknowledged records
 * missing from the log afterwards (target 0) and records written twice by app retries.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, State, type OffsetOutOfRangeEvent, type TributaryClient } from "@tributary/client";
import { startRedisNode } from "./helpers/cluster-nodes.ts";
import { startSentinelSetup, type SentinelSetup } from "./helpers/redis-harness.ts";
import { hasMarks, publishMarks, until } from "./helpers/sdk-node.ts";
import type { TributaryNode } from "../server/src/node.ts";

let setup: SentinelSetup;
let nodes: Array<TributaryNode & { wsUrl: string }> = [];
const clients: TributaryClient[] = [];

beforeAll(async () => {
  setup = await startSentinelSetup();
  const hosts = setup.sentinelNodes.map((n) => `${n.host}:${n.port}`).join(",");
  const url = `redis+sentinel://${hosts}/${setup.name}?replicas=1&waitTimeoutMs=1000`;
  nodes = await Promise.all([0, 1].map(() => startRedisNode(url, { defaultPartitions: 2 })));
});

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(nodes.map((n) => n.close()));
  await setup?.destroy();
});

function client(urls: string[]): TributaryClient {
  const c = connect(urls, { minReconnectDelay: 10, maxReconnectDelay: 200 });
  clients.push(c);
  return c;
}

describe("Sentinel failover", () => {
  it("keeps producers and subscribers going across a primary SIGKILL at acks=all, losing no acknowledged record", async () => {
    const [a, b] = nodes as [TributaryNode & { wsUrl: string }, TributaryNode & { wsUrl: string }];
    const producer = client([a.wsUrl, b.wsUrl]);
    const subscriber = client([b.wsUrl, a.wsUrl]);
    const log = new Map<number, Array<{ offset: number; value: number }>>();
    const markers: Array<{ partition: number; offset: number }> = [];
    const resets: OffsetOutOfRangeEvent[] = [];
    const sub = subscriber.subscribe<number>("payments", (m) => {
      if ((m.value as unknown) === "__marker__") return void markers.push(m);
      let list = log.get(m.partition);
      if (!list) log.set(m.partition, (list = []));
      list.push({ offset: m.offset, value: m.value });
    }, { from: "earliest", reset: "earliest" });
    sub.on("offsetOutOfRange", (e) => resets.push(e));
    await until(() => producer.state === State.Connected && subscriber.state === State.Connected, "connected");

    // The app: publishes 0, 1, 2, ... at acks=all; a rejected publish is retried (same value) until acked.
    const acked = new Set<number>();
    let failures = 0;
    let lastAckAt = Date.now();
    let longestAckGap = 0;
    let next = 0;
    let stop = false;
    const failureCodes = new Set<string>();
    const produce = async (value: number): Promise<void> => {
      for (;;) {
        try {
          await producer.publish("payments", value, { key: `acct-${value % 10}`, acks: "all" });
          acked.add(value);
          const now = Date.now();
          longestAckGap = Math.max(longestAckGap, now - lastAckAt);
          lastAckAt = now;
          return;
        } catch (err) {
          failures++;
          failureCodes.add((err as { code: string }).code);
          if (!(err as { retriable?: boolean }).retriable) throw err;
          await new Promise((r) => setTimeout(r, 50)); // the app's retry backoff, not a synchronisation
        }
      }
    };
    const producing = (async () => {
      while (!stop) {
        const batch = Array.from({ length: 10 }, (_, i) => next + i);
        next += batch.length;
        await Promise.all(batch.map(produce));
      }
    })();

    await until(() => acked.size >= 500, "acked before the failover", 20_000);
    const oldPrimary = setup.primary.port;
    const killedAt = Date.now();
    await setup.primary.stop("SIGKILL");
    await until(() => acked.size >= next - 10 && next > 0 && Date.now() - killedAt > 500 && acked.size >= 1500, "acked after the failover", 40_000);
    stop = true;
    await producing;
    expect(await setup.currentPrimaryPort()).not.toBe(oldPrimary);

    // Everything the subscriber should have: the log's end per partition.
    const ends = await Promise.all([0, 1].map(async (p) => (await a.engine.offsets("payments", p)).endOffset));
    await until(() => ends.every((end, p) => (log.get(p)?.length ?? 0) >= end), "the subscriber reached the end", 20_000);
    // nothing extra arrives late: a marker after the last record of each partition
    const marks = await publishMarks(producer, "payments", [0, 1]);
    await until(() => hasMarks(markers, marks), "the markers", 20_000);

    const inLog = new Map<number, number>();
    for (const [partition, list] of log) {
      expect(list.map((r) => r.offset), `partition ${partition}: no gap, no duplicate`).toEqual(list.map((_, i) => i));
      for (const r of list) inLog.set(r.value, (inLog.get(r.value) ?? 0) + 1);
    }
    const lost = [...acked].filter((v) => !inLog.has(v));
    const writtenTwice = [...inLog.values()].filter((n) => n > 1).length;
    console.log(
      `Sentinel failover at acks=all (WAIT 1): ${acked.size} acked, ${lost.length} acked lost, ${writtenTwice} written twice by app retries, ` +
        `${failures} rejected publishes (${[...failureCodes].join(", ")}) retried by the app, longest time without an ack ${longestAckGap} ms, ${resets.length} subscriber resets`,
    );
    expect(lost).toEqual([]);
    expect(resets).toEqual([]);
  });
});
