import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CLOSE_CODES } from "@tributary/client/protocol";
import { startWsTestServer, type WsTestServer } from "./helpers/ws-harness.ts";
import { beforeMarks, publishMarks, WsTestClient } from "./helpers/ws-test-client.ts";
import { waitFor } from "./helpers/wait.ts";

let server: WsTestServer | undefined;
const clients: WsTestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});
async function connect(s: WsTestServer): Promise<WsTestClient> {
  const c = await WsTestClient.connect(s.url);
  clients.push(c);
  return c;
}

async function publishMany(pub: WsTestClient, topic: string, count: number, size: number, window = 200): Promise<void> {
  const value = new Uint8Array(size).fill(7);
  for (let i = 0; i < count; i += window) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + window); j++) batch.push(pub.publish(topic, value));
    const replies = await Promise.all(batch);
    for (const r of replies) if (r.op !== "ack") throw new Error(JSON.stringify(r));
  }
}

describe("WebSocket gateway: flow control", () => {
  it("sends no more messages than the credit granted, and resumes on credit", async () => {
    server = await startWsTestServer();
    const c = await connect(server);
    await c.subscribeOk({ sub: 1, topic: "credit", from: "earliest", credit: 3, autoCredit: false });
    // a witness on the same feed with room to spare: once it has all 10, each was offered to sub 1 as well
    await c.subscribeOk({ sub: 2, topic: "credit", from: "earliest", credit: 1000 });
    await publishMany(c, "credit", 10, 8);
    await c.waitForMessages(2, 10);
    await c.roundTrip(); // and whatever was sent to this connection before has arrived
    expect(c.messagesOf(1).map((m) => m.offset)).toEqual([0, 1, 2]);
    c.send({ op: "credit", sub: 1, credit: 4 });
    await c.waitForMessages(1, 7);
    await c.roundTrip(); // the credit frame was handled before the ping: 4 more, not 5
    expect(c.messagesOf(1)).toHaveLength(7);
    c.send({ op: "credit", sub: 1, credit: 100 });
    expect((await c.waitForMessages(1, 10)).map((m) => m.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Live records use the remaining credit (97 - 0 used so far beyond the 10th).
    await publishMany(c, "credit", 5, 8);
    expect((await c.waitForMessages(1, 15)).map((m) => m.offset).slice(10)).toEqual([10, 11, 12, 13, 14]);
  });

  it("limits a subscriber at the live edge by its credit too (shared feed)", async () => {
    server = await startWsTestServer();
    const c = await connect(server);
    const fast = await connect(server);
    await c.subscribeOk({ sub: 1, topic: "edge", credit: 5, autoCredit: false });
    await fast.subscribeOk({ sub: 1, topic: "edge" });
    await publishMany(fast, "edge", 20, 8);
    await fast.waitForMessages(1, 20); // the witness: the feed has offered all 20 to c too
    await c.roundTrip();
    expect(c.messagesOf(1).map((m) => m.offset)).toEqual([0, 1, 2, 3, 4]);
    c.send({ op: "credit", sub: 1, credit: 1000 });
    expect((await c.waitForMessages(1, 20)).map((m) => m.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("pauses then drops a consumer that stops reading with SLOW_CONSUMER, while a fast consumer gets everything", async () => {
    server = await startWsTestServer({ limits: { maxBufferedBytes: 256 * 1024, slowConsumerGraceMs: 400, maxCredit: 1_000_000 } });
    const slow = await connect(server);
    const fast = await connect(server);
    const pub = await connect(server);
    await slow.subscribeOk({ sub: 1, topic: "firehose", credit: 1_000_000, autoCredit: false });
    await fast.subscribeOk({ sub: 1, topic: "firehose", credit: 500 });
    slow.keepFrames = false;
    const socket = (slow.ws as unknown as { _socket: Socket })._socket;
    socket.pause();

    const count = 2000;
    const size = 16 * 1024; // 32 MB in total: far more than the kernel's socket buffers
    await publishMany(pub, "firehose", count, size);
    const got = await fast.waitForMessages(1, count, 30_000);
    expect(got.map((m) => m.offset)).toEqual(Array.from({ length: count }, (_, i) => i));

    // The slow connection was dropped by the server (only pub and fast remain).
    await waitFor(() => server!.gateway.connectionCount <= 2, { timeoutMs: 5000, what: "the slow connection to be dropped" });
    expect(server.gateway.connectionCount).toBe(2);

    // Once it reads again it finds the reason: a disconnect frame and the close code.
    socket.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(CLOSE_CODES.SLOW_CONSUMER);
    expect(slow.frames.at(-1)).toMatchObject({ op: "disconnect", code: "SLOW_CONSUMER", reconnect: true });
    expect(slow.messagesOf(1).length).toBeLessThan(count);
    // What it did get is a gapless prefix.
    expect(slow.messagesOf(1).map((m) => m.offset)).toEqual(slow.messagesOf(1).map((_, i) => i));
  });
});

describe("WebSocket gateway: shared live feed", () => {
  it("delivers every record exactly once in order to subscribers that keep leaving and rejoining the shared feed", async () => {
    server = await startWsTestServer();
    await server.broker.createTopic("seam", { partitions: 2 });
    const subs = await Promise.all(Array.from({ length: 12 }, () => connect(server!)));
    // Small windows force members out of the feed (credit 0) and back (after catch-up).
    await Promise.all(subs.map((c, i) => c.subscribeOk({ sub: 1, topic: "seam", from: "latest", credit: [2, 3, 10, 1000][i % 4] })));
    const pub = await connect(server);
    const total = 4000;
    await publishMany(pub, "seam", total, 16, 100);
    for (const c of subs) {
      const got = await c.waitForMessages(1, total, 20_000);
      for (const p of [0, 1]) {
        const offsets = got.filter((m) => m.partition === p).map((m) => m.offset);
        expect(offsets).toEqual(offsets.map((_, i) => i));
      }
      expect(got).toHaveLength(total);
    }
    // a marker after the last record of each partition: once every subscriber has both, nothing else is on its way
    const marks = await publishMarks(pub, "seam", [0, 1]);
    for (const c of subs) await c.waitForMarks(1, marks);
    for (const c of subs) expect(beforeMarks(c.messagesOf(1), marks)).toHaveLength(total);
    // Everyone caught up: one shared feed per partition serves them all.
    expect(server.gateway.feedCount).toBe(2);
  });
});
