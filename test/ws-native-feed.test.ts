/**
 * The native fan-out path of the shared feed (feature "feed"): live records published once
 * through uWS pub/sub as feed `messages` frames, `attach` / `detach` at the seams.
 */
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { connect as sdkConnect, type Message } from "@tributary/client";
import { CLOSE_CODES, FEATURES, type MessageFrame, type WireFormat } from "@tributary/client/protocol";
import { startWsTestServer, type WsTestServer } from "./helpers/ws-harness.ts";
import { beforeMarks, publishMarks, text, WsTestClient } from "./helpers/ws-test-client.ts";
import { waitFor } from "./helpers/wait.ts";

let server: WsTestServer | undefined;
const clients: WsTestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});
async function connect(s: WsTestServer, options: { format?: WireFormat; feed?: boolean } = {}): Promise<WsTestClient> {
  const c = await WsTestClient.connect(s.url, { format: options.format, features: options.feed === false ? undefined : [FEATURES.FEED] });
  clients.push(c);
  return c;
}

async function publishMany(pub: WsTestClient, topic: string, from: number, to: number, window = 100, size = 16): Promise<void> {
  for (let i = from; i < to; i += window) {
    const batch = [];
    for (let j = i; j < Math.min(to, i + window); j++) batch.push(pub.publish(topic, `m${j}`.padEnd(size, ".")));
    for (const r of await Promise.all(batch)) if (r.op !== "ack") throw new Error(JSON.stringify(r));
  }
}

/** Per partition, offsets are contiguous from the first one seen: no gap, no duplicate. */
function expectGaplessPerPartition(messages: MessageFrame[], partitions: number[], startAt?: Map<number, number>): void {
  for (const p of partitions) {
    const offsets = messages.filter((m) => m.partition === p).map((m) => m.offset);
    const first = startAt?.get(p) ?? offsets[0] ?? 0;
    expect(offsets).toEqual(offsets.map((_, i) => first + i));
  }
}

const attaches = (c: WsTestClient) => c.frames.filter((f) => f.op === "attach").length;
const detaches = (c: WsTestClient) => c.frames.filter((f) => f.op === "detach").length;

describe("WebSocket gateway: native feed fan-out", () => {
  it("delivers live records to feed-capable subscribers through the feed, and per subscription to the others", async () => {
    server = await startWsTestServer();
    const native = await connect(server);
    const json = await connect(server, { format: "json" });
    const legacy = await connect(server, { feed: false });
    const filtered = await connect(server);
    for (const c of [native, json, legacy]) await c.subscribeOk({ sub: 7, topic: "live" });
    await filtered.subscribeOk({ sub: 3, topic: "live/+/x" });
    const pub = await connect(server);
    for (let i = 0; i < 50; i++) await pub.publish("live", `v${i}`, { key: new TextEncoder().encode(`live/${i % 2 ? "a" : "b"}/x`) });
    for (const c of [native, json, legacy]) {
      const got = await c.waitForMessages(7, 50);
      expect(got.map((m) => text(m.value))).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
      expect(got.every((m) => m.sub === 7 && m.topic === "live" && m.partition === 0)).toBe(true);
      expectGaplessPerPartition(got, [0]);
    }
    expect(native.feedRecords.get(7)).toBeGreaterThan(0);
    expect(json.feedRecords.get(7)).toBeGreaterThan(0);
    // A client without the feature never sees feed frames; a key filter keeps the per-subscription path.
    expect(legacy.frames.some((f) => f.op === "messages" || f.op === "attach")).toBe(false);
    expect(filtered.frames.some((f) => f.op === "attach")).toBe(false);
    expect((await filtered.waitForMessages(3, 50)).map((m) => text(m.value))).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
    expect(server.gateway.nativeFeedMembers).toBe(2);
  });

  it("sends catch-up, partial-credit and key-filtered runs as messages frames addressed to the subscription", async () => {
    server = await startWsTestServer();
    const pub = await connect(server);
    const key = (i: number) => new TextEncoder().encode(`history/${i % 3 === 0 ? "a" : "b"}/x`);
    for (let i = 0; i < 300; i++) await pub.publish("history", `h${i}`, { key: key(i) });
    // From the earliest offset with credit 120: the catch-up stops at 120 records, then goes on per grant.
    const reader = await connect(server);
    await reader.subscribeOk({ sub: 4, topic: "history", from: "earliest", credit: 120, autoCredit: false });
    await reader.waitForMessages(4, 120);
    await reader.roundTrip();
    expect(reader.messagesOf(4)).toHaveLength(120);
    reader.send({ op: "credit", sub: 4, credit: 180 });
    const all = await reader.waitForMessages(4, 300);
    expect(all.map((m) => text(m.value))).toEqual(Array.from({ length: 300 }, (_, i) => `h${i}`));
    expectGaplessPerPartition(all, [0]);
    const batches = reader.frames.filter((f) => f.op === "messages" && (f as { sub?: number }).sub === 4);
    expect(reader.frames.some((f) => f.op === "message")).toBe(false);
    expect(batches.length).toBeLessThan(20); // runs, not a frame per record
    // A key filter: only the matching records, in order, in sub-addressed runs.
    const filtered = await connect(server);
    await filtered.subscribeOk({ sub: 9, topic: "history/a/+", from: "earliest", credit: 1000 });
    const matching = await filtered.waitForMessages(9, 100);
    expect(matching.map((m) => text(m.value))).toEqual(Array.from({ length: 100 }, (_, i) => `h${i * 3}`));
    expect(filtered.frames.some((f) => f.op === "message")).toBe(false);
    // A client without the feature still gets one message frame per record.
    const legacy = await connect(server, { feed: false });
    await legacy.subscribeOk({ sub: 2, topic: "history", from: "earliest", credit: 1000 });
    expect((await legacy.waitForMessages(2, 300)).map((m) => m.offset)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(legacy.frames.some((f) => f.op === "messages")).toBe(false);
  });

  it("delivers every record exactly once in order to many subscribers joining and leaving the native path while publishing", async () => {
    server = await startWsTestServer({ limits: { maxCredit: 1_000_000 } });
    const topic = "seam";
    await server.broker.createTopic(topic, { partitions: 2 });
    const pub = await connect(server);
    // Small windows force members off the native path (credit below a batch) and back;
    // big ones stay on it. Both wire formats.
    const windows = [1, 3, 8, 40, 1000];
    const steady = await Promise.all(Array.from({ length: 20 }, (_, i) => connect(server!, { format: i % 3 === 0 ? "json" : "cbor" })));
    await Promise.all(steady.map((c, i) => c.subscribeOk({ sub: 1, topic, from: "latest", credit: windows[i % windows.length] })));
    for (const c of steady) c.keepFrames = true;

    const total = 3000;
    let published = false;
    const publishing = publishMany(pub, topic, 0, total, 50).finally(() => (published = true));
    // Meanwhile subscribers come and go: each joins from the earliest offset (catch-up on its
    // own tail, then the feed, then native), leaves after a number of records that differs per
    // subscriber and round (unsubscribe), and resubscribes from where it stopped.
    const churners = await Promise.all(Array.from({ length: 8 }, () => connect(server!)));
    const churnSeen = churners.map(() => [] as MessageFrame[]);
    const churning = Promise.all(
      churners.map(async (c, k) => {
        let sub = 100;
        const next = new Map<number, number>([
          [0, 0],
          [1, 0],
        ]);
        for (let round = 0; round < 4; round++) {
          await c.subscribeOk({ sub, topic, from: { offsets: Object.fromEntries(next) }, reset: "error", credit: windows[(k + round) % windows.length] });
          const leaveAfter = 20 + ((k * 13 + round * 7) % 40) * 5;
          await waitFor(() => c.messagesOf(sub).length >= leaveAfter || published, { timeoutMs: 30_000, what: `churner ${k} round ${round}: ${leaveAfter} records` });
          await c.request({ op: "unsubscribe", sub });
          for (const m of c.messagesOf(sub)) {
            churnSeen[k]!.push(m);
            next.set(m.partition, m.offset + 1);
          }
          sub++;
        }
        // Last round: stay until the end.
        await c.subscribeOk({ sub, topic, from: { offsets: Object.fromEntries(next) }, reset: "error", credit: 1000 });
        return sub;
      }),
    );
    await publishing;
    const lastSubs = await churning;

    for (const c of steady) {
      const got = await c.waitForMessages(1, total, 30_000);
      expect(got).toHaveLength(total);
      expectGaplessPerPartition(got, [0, 1], new Map([[0, 0], [1, 0]]));
      expect(new Set(got.map((m) => text(m.value))).size).toBe(total);
    }
    for (const [k, c] of churners.entries()) {
      const sub = lastSubs[k]!;
      const before = churnSeen[k]!.length;
      await c.waitForMessages(sub, total - before, 30_000);
      const all = [...churnSeen[k]!, ...c.messagesOf(sub)];
      expect(all).toHaveLength(total);
      expectGaplessPerPartition(all, [0, 1], new Map([[0, 0], [1, 0]]));
    }
    // a marker after the last record of each partition: once every steady subscriber has both, nothing else is on its way
    const marks = await publishMarks(pub, topic, [0, 1]);
    for (const c of steady) await c.waitForMarks(1, marks, 30_000);
    for (const c of steady) expect(beforeMarks(c.messagesOf(1), marks)).toHaveLength(total);
    // The native path carried records, and members left it and came back at the seams.
    const viaFeed = steady.reduce((n, c) => n + (c.feedRecords.get(1) ?? 0), 0);
    expect(viaFeed).toBeGreaterThan(total);
    expect(steady.reduce((n, c) => n + detaches(c), 0)).toBeGreaterThan(0);
    expect(steady.every((c) => attaches(c) >= detaches(c))).toBe(true);
  });

  it("detaches a subscriber whose socket stops reading before uWS would skip it, then drops it as a slow consumer while the others get everything", async () => {
    server = await startWsTestServer({ limits: { maxBufferedBytes: 256 * 1024, slowConsumerGraceMs: 400, maxCredit: 1_000_000 } });
    const slow = await connect(server);
    const fast = await connect(server);
    const pub = await connect(server);
    await slow.subscribeOk({ sub: 1, topic: "firehose", credit: 1_000_000, autoCredit: false });
    await fast.subscribeOk({ sub: 1, topic: "firehose", credit: 500 });
    // Attach the slow one first: a few records while it still reads.
    await publishMany(pub, "firehose", 0, 20, 10, 1024);
    await slow.waitForMessages(1, 20);
    expect(slow.feedRecords.get(1)).toBeGreaterThan(0);
    slow.keepFrames = false;
    const socket = (slow.ws as unknown as { _socket: Socket })._socket;
    socket.pause();

    const count = 2000;
    await publishMany(pub, "firehose", 20, count, 200, 16 * 1024); // ~32 MB: far more than socket buffers
    const got = await fast.waitForMessages(1, count, 30_000);
    expect(got.map((m) => m.offset)).toEqual(Array.from({ length: count }, (_, i) => i));

    await waitFor(() => server!.gateway.connectionCount <= 2, { timeoutMs: 5000, what: "the slow connection to be dropped" });
    expect(server.gateway.connectionCount).toBe(2);
    socket.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(CLOSE_CODES.SLOW_CONSUMER);
    // What it got before the drop is a gapless prefix: uWS never skipped it silently.
    expect(slow.messagesOf(1).length).toBeLessThan(count);
    expect(slow.messagesOf(1).map((m) => m.offset)).toEqual(slow.messagesOf(1).map((_, i) => i));
  });

  it("never sends a native subscriber more records than its credit, and resumes it on credit", async () => {
    server = await startWsTestServer();
    const c = await connect(server);
    const fast = await connect(server);
    await c.subscribeOk({ sub: 1, topic: "edge", credit: 25, autoCredit: false });
    await fast.subscribeOk({ sub: 1, topic: "edge" });
    const pub = await connect(server);
    await publishMany(pub, "edge", 0, 10, 5);
    await c.waitForMessages(1, 10);
    expect(c.feedRecords.get(1)).toBeGreaterThan(0); // on the native path now
    await publishMany(pub, "edge", 10, 100, 20);
    await fast.waitForMessages(1, 100); // the witness: the feed has offered all 100 to c too
    await c.roundTrip(); // and whatever was sent to c before has arrived
    expect(c.messagesOf(1).map((m) => m.offset)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    c.send({ op: "credit", sub: 1, credit: 1000 });
    expect((await c.waitForMessages(1, 100)).map((m) => m.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("keeps one subscription per connection on the native path when a connection subscribes twice to a partition", async () => {
    server = await startWsTestServer();
    const c = await connect(server);
    await c.subscribeOk({ sub: 1, topic: "twice" });
    await c.subscribeOk({ sub: 2, topic: "twice" });
    const pub = await connect(server);
    await publishMany(pub, "twice", 0, 300, 30);
    for (const sub of [1, 2]) {
      const got = await c.waitForMessages(sub, 300);
      expect(got.map((m) => text(m.value)!.replace(/\.+$/, ""))).toEqual(Array.from({ length: 300 }, (_, i) => `m${i}`));
      expect(got.every((m) => m.sub === sub)).toBe(true);
    }
    expect((c.feedRecords.get(1) ?? 0) + (c.feedRecords.get(2) ?? 0)).toBeGreaterThan(0);
    expect(server.gateway.nativeFeedMembers).toBe(1);
    // Unsubscribing the attached one sends detach first; the other keeps receiving.
    await c.request({ op: "unsubscribe", sub: c.feedRecords.has(1) ? 1 : 2 });
    const kept = c.feedRecords.has(1) ? 2 : 1;
    await publishMany(pub, "twice", 300, 400, 20);
    expect((await c.waitForMessages(kept, 400)).map((m) => m.offset)).toEqual(Array.from({ length: 400 }, (_, i) => i));
  });

  it("the SDK receives feed frames in both wire formats and resumes without gap or duplicate after its socket is killed on the native path", async () => {
    server = await startWsTestServer();
    await server.broker.createTopic("sdk-native", { partitions: 2 });
    const pub = await connect(server);
    const results = await Promise.all(
      (["cbor", "json"] as const).map(async (format) => {
        const c = sdkConnect(`ws://127.0.0.1:${server!.port}`, { format, codec: "raw", minReconnectDelay: 20, maxReconnectDelay: 100 });
        const got: Message[] = [];
        const sub = c.subscribe("sdk-native", (m) => void got.push(m), { from: "latest" });
        await new Promise<void>((resolve) => sub.once("subscribed", () => resolve()));
        return { c, got };
      }),
    );
    await publishMany(pub, "sdk-native", 0, 1000, 50);
    await waitFor(() => results.every((r) => r.got.length >= 1000), { timeoutMs: 10_000, what: "the first 1000 records at both SDK clients" });
    expect(server.gateway.nativeFeedMembers).toBeGreaterThanOrEqual(2);
    // Kill every socket mid-stream while records keep coming: the SDK reconnects and resumes from its position.
    // (Through the broker: the gateway drops every socket, publishers' too.)
    const broker = server.broker;
    for (let i = 1000; i < 3000; i += 50) {
      if (i === 1500) {
        // mid-stream by construction: after some of the new records reached the clients, before the rest is produced
        await waitFor(() => results.every((r) => r.got.length > 1000), { timeoutMs: 10_000, what: "new records at both SDK clients" });
        server.gateway.terminateAll();
      }
      await broker.produce("sdk-native", Array.from({ length: 50 }, (_, j) => ({ key: null, value: new TextEncoder().encode(`m${i + j}`) })));
    }
    await waitFor(() => results.every((r) => r.got.length >= 3000), { timeoutMs: 20_000, what: "all 3000 records at both SDK clients" });
    for (const { c, got } of results) {
      const values = got.map((m) => new TextDecoder().decode(m.value as Uint8Array).replace(/\.+$/, ""));
      expect(new Set(values).size).toBe(values.length);
      expect(values).toHaveLength(3000);
      for (const p of [0, 1]) {
        const offsets = got.filter((m) => m.partition === p).map((m) => m.offset);
        expect(offsets).toEqual(offsets.map((_, i) => i));
      }
      await c.close();
    }
  });
});
