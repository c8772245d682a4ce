import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { MessageFrame, SubscribedFrame } from "@tributary/client/protocol";
import { FileLogEngine } from "../server/src/log/file/file-log-engine.ts";
import { startWsTestServer, type WsTestServer } from "./helpers/ws-harness.ts";
import { text, WsTestClient } from "./helpers/ws-test-client.ts";

let server: WsTestServer | undefined;
const clients: WsTestClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
async function connect(s: WsTestServer): Promise<WsTestClient> {
  const c = await WsTestClient.connect(s.url);
  clients.push(c);
  return c;
}

/** What a resuming client keeps: per partition the next offset and the epoch. */
class Position {
  readonly next = new Map<number, number>();
  readonly epochs = new Map<number, string>();
  readonly seen: MessageFrame[] = [];
  take(subscribed: SubscribedFrame, messages: MessageFrame[]): void {
    for (const p of subscribed.partitions) {
      this.epochs.set(p.partition, p.epoch);
      if (!this.next.has(p.partition)) this.next.set(p.partition, p.offset);
    }
    for (const m of messages) {
      this.seen.push(m);
      this.next.set(m.partition, m.offset + 1);
    }
  }
  from() {
    return { offsets: Object.fromEntries(this.next), epochs: Object.fromEntries(this.epochs) };
  }
}

async function publishSeq(pub: WsTestClient, topic: string, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(to, i + 500); j++) batch.push(pub.publish(topic, `m${j}`, { key: new TextEncoder().encode(`k${j % 7}`) }));
    for (const r of await Promise.all(batch)) if (r.op !== "ack") throw new Error(JSON.stringify(r));
  }
}

function expectExactlyOnceInOrder(seen: MessageFrame[], total: number): void {
  const values = seen.map((m) => Number(text(m.value)!.slice(1)));
  expect(new Set(values).size).toBe(values.length); // no duplicate
  expect(values.length).toBe(total); // no gap
  const byPartition = new Map<number, number[]>();
  for (const m of seen) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m.offset]);
  for (const offsets of byPartition.values()) expect(offsets).toEqual(offsets.map((_, i) => i));
}

describe("WebSocket gateway: resume", () => {
  it("resumes without gap or duplicate after the server kills the socket mid-stream (12,000 records)", async () => {
    server = await startWsTestServer();
    await server.broker.createTopic("stream", { partitions: 3 });
    const pub = await connect(server);
    const total = 12_000;
    await publishSeq(pub, "stream", 0, total / 2);

    const position = new Position();
    let consumer = await connect(server);
    consumer.keepFrames = false;
    let subscribed = await consumer.subscribeOk({ sub: 1, topic: "stream", from: "earliest", credit: 200 });
    const live = publishSeq(pub, "stream", total / 2, total);

    // Kill the socket from the server side once the consumer is mid-stream.
    await consumer.waitForMessages(1, 3000, 20_000);
    expect(server.gateway.connectionCount).toBe(2);
    const killed = consumer;
    const killedAt = killed.messagesOf(1).length;
    expect(server.gateway.terminate(sessionOf(killed))).toBe(true);
    await killed.closed;
    position.take(subscribed, killed.messagesOf(1));
    expect(position.seen.length).toBeGreaterThanOrEqual(killedAt);
    expect(position.seen.length).toBeLessThan(total);

    consumer = await connect(server);
    consumer.keepFrames = false;
    subscribed = await consumer.subscribeOk({ sub: 1, topic: "stream", from: position.from(), reset: "error", credit: 200 });
    for (const p of subscribed.partitions) expect(p.offset).toBe(position.next.get(p.partition) ?? 0);
    await live;
    await consumer.waitForMessages(1, total - position.seen.length, 20_000);
    position.take(subscribed, consumer.messagesOf(1));
    expectExactlyOnceInOrder(position.seen, total);
  });

  it("resumes after a full node restart with the file engine", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "tributary-ws-resume-"));
    dirs.push(dataDir);
    const open = () => FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0 });
    server = await startWsTestServer({ engine: await open() });
    await server.broker.createTopic("durable", { partitions: 2 });
    const pub = await connect(server);
    await publishSeq(pub, "durable", 0, 3000);

    const position = new Position();
    const consumer = await connect(server);
    const subscribed = await consumer.subscribeOk({ sub: 4, topic: "durable", from: "earliest", credit: 500, autoCredit: false });
    // Takes 500 of 3,000 then the node goes down (graceful: it says goodbye).
    await consumer.waitForMessages(4, 500);
    await server.close();
    const closed = await consumer.closed;
    expect(closed.code).toBe(4000);
    expect(consumer.frames.at(-1)).toMatchObject({ op: "disconnect", code: "UNAVAILABLE", reconnect: true });
    position.take(subscribed, consumer.messagesOf(4));
    expect(position.seen).toHaveLength(500);
    clients.splice(0);

    server = await startWsTestServer({ engine: await open() });
    const again = await connect(server);
    const resumed = await again.subscribeOk({ sub: 4, topic: "durable", from: position.from(), reset: "error", credit: 1000 });
    expect(resumed.partitions.map((p) => p.epoch)).toEqual(subscribed.partitions.map((p) => p.epoch));
    const pub2 = await connect(server);
    await publishSeq(pub2, "durable", 3000, 4000);
    await again.waitForMessages(4, 3500, 20_000);
    position.take(resumed, again.messagesOf(4));
    expectExactlyOnceInOrder(position.seen, 4000);
  });
});

function sessionOf(c: WsTestClient): string {
  const welcome = c.frames.find((f) => f.op === "welcome");
  if (!welcome) throw new Error("no welcome");
  return welcome.sessionId as string;
}
