/**
 * One backpressure policy for every protocol (broker/delivery: SendBudget + DeliveryCursor):
 * a client that subscribes to three topics and stops reading while 1 MB records are
 * published (1,000 per topic) holds no memory in the node (its cursors stop reading the
 * log, nothing is queued for it), is disconnected as a slow consumer within the grace
 * period, and a fast subscriber on the same topics gets every record with no gap.
 *
 * Run for a WebSocket subscriber, MQTT 3.1.1 and MQTT 5 subscribers (QoS 0: bounded by
 * bytes only) and an SDK consumer-group member, each against its own node process whose
 * RSS is sampled from /proc.
 *
 * Baseline: the node's RSS after a warm-up of WARM_UP records per topic that every client
 * (the soon-stalled one included) reads. 1 MB records flowing through a node cost it
 * ~70 MB over idle whoever reads them (V8 collects dead Buffers once ~64 MB of them have
 * piled up); the baseline includes that working set, so what is measured after it is what
 * the stalled client costs while the other 900 MB per topic are published.
 */
import { connect as netConnect, type Socket } from "node:net";
import mqtt from "mqtt-packet";
import { afterEach, describe, expect, it } from "vitest";
import { connect, type TributaryClient } from "@tributary/client";
import { spawnFileNode, type NodeChild } from "./helpers/node-process.ts";
import { waitFor, within } from "./helpers/wait.ts";
import { WsTestClient } from "./helpers/ws-test-client.ts";

const TOPICS = ["bp-a", "bp-b", "bp-c"];
const PER_TOPIC = 1000;
const WARM_UP = 100;
const VALUE = new Uint8Array(1_000_000).fill(0x61);
const GRACE_MS = 2000;
const MAX_BUFFERED = 4 * 1024 * 1024;
const RSS_SLACK = 64 * 1024 * 1024;

async function spawnNode(): Promise<NodeChild> {
  return spawnFileNode({ env: { TRIBUTARY_SLOW_CONSUMER_GRACE_MS: String(GRACE_MS), TRIBUTARY_MAX_BUFFERED_BYTES: String(MAX_BUFFERED) } });
}

async function metric(node: NodeChild, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** A subscriber that stops reading once subscribed; `closed` resolves when the node drops it. */
interface StalledClient {
  /** The node's name for its gateway in tributary_slow_consumer_disconnects_total. */
  gateway: string;
  /** Messages (frames or PUBLISH packets) it read so far. */
  received(): number;
  stall(): void;
  closed: Promise<void>;
  destroy(): void;
}

async function stalledWs(node: NodeChild, group: string | null): Promise<StalledClient> {
  const c = await WsTestClient.connect(`ws://127.0.0.1:${node.httpPort}/ws`);
  c.keepFrames = false;
  let received = 0;
  c.ws.on("message", () => received++);
  let sub = 1;
  for (const topic of TOPICS) {
    const reply = await c.request({ op: "subscribe", sub: sub++, topic, credit: 100_000, ...(group ? { group } : { from: "latest" }) });
    expect(reply.op).toBe(group ? "joined" : "subscribed");
  }
  if (group) await c.waitFor((f) => f.op === "assign" && (f.partitions as unknown[]).length > 0 && f.sub === TOPICS.length, 10_000);
  const socket = (c.ws as unknown as { _socket: Socket })._socket;
  return {
    gateway: "ws",
    received: () => received,
    stall: () => socket.pause(),
    closed: c.closed.then(() => undefined),
    destroy: () => c.ws.terminate(),
  };
}

async function stalledMqtt(node: NodeChild, protocolVersion: 4 | 5): Promise<StalledClient> {
  const socket = netConnect(node.mqttPort, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const parser = mqtt.parser({ protocolVersion });
  const packets: mqtt.Packet[] = [];
  const arrived: (() => void)[] = [];
  let received = 0;
  parser.on("packet", (p) => {
    if (p.cmd === "publish") {
      received++;
      return;
    }
    packets.push(p);
    for (const a of arrived.splice(0)) a();
  });
  socket.on("data", (d) => parser.parse(d));
  socket.on("error", () => {}); // the node resets a connection it dropped: expected here
  const next = async (cmd: string): Promise<mqtt.Packet> => {
    for (;;) {
      const i = packets.findIndex((p) => p.cmd === cmd);
      if (i >= 0) return packets.splice(i, 1)[0]!;
      await within(new Promise<void>((r) => arrived.push(r)), 5000, `MQTT ${cmd}`);
    }
  };
  socket.write(mqtt.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion, clean: true, clientId: `stalled-v${protocolVersion}`, keepalive: 0 }, { protocolVersion }));
  expect(await next("connack")).toMatchObject({ cmd: "connack" });
  socket.write(mqtt.generate({ cmd: "subscribe", messageId: 1, subscriptions: TOPICS.map((t) => ({ topic: `${t}/#`, qos: 0 })) }, { protocolVersion }));
  expect(await next("suback")).toMatchObject({ granted: [0, 0, 0] });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return {
    gateway: "mqtt",
    received: () => received,
    // Stop reading: what the node sends piles up in the kernel's socket buffers, then in its own.
    stall: () => socket.pause(),
    // A paused socket sees the node's close only once it reads again: resume after the node says it dropped us.
    closed: closed,
    destroy: () => socket.destroy(),
  };
}

/** Publishes `count` records of 1 MB to each topic over WebSocket, a few in flight. */
async function publish(p: WsTestClient, count: number): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < count; i++) {
    for (const topic of TOPICS) {
      const sent = p.publish(topic, VALUE, { acks: 1 }).then((ack) => {
        if (ack.op !== "ack") throw new Error(`publish failed: ${JSON.stringify(ack)}`);
        inFlight.delete(sent);
      });
      inFlight.add(sent);
      if (inFlight.size >= 6) await Promise.race(inFlight);
    }
  }
  await Promise.all(inFlight);
}

describe("a subscriber that stops reading is bounded in bytes and dropped, whatever its protocol", () => {
  let node: NodeChild | null = null;
  const clients: TributaryClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await node?.stop();
    node = null;
  });

  const variants: Array<[string, (n: NodeChild) => Promise<StalledClient>]> = [
    ["WebSocket subscriber", (n) => stalledWs(n, null)],
    ["MQTT 3.1.1 subscriber (QoS 0)", (n) => stalledMqtt(n, 4)],
    ["MQTT 5 subscriber (QoS 0)", (n) => stalledMqtt(n, 5)],
    ["SDK consumer-group member", (n) => stalledWs(n, "bp-group")],
  ];

  for (const [name, makeStalled] of variants) {
    it(`${name}: node RSS stays within 64 MB of its baseline, the stalled client is dropped within the grace period, a fast subscriber gets every record`, async () => {
      const n = (node = await spawnNode());
      for (const topic of TOPICS) {
        const res = await fetch(`http://127.0.0.1:${n.httpPort}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: topic, partitions: 1 }) });
        expect(res.status).toBe(201);
      }
      // The fast subscriber: the SDK, reading everything.
      const fast = connect(`ws://127.0.0.1:${n.httpPort}`, { minReconnectDelay: 20, maxReconnectDelay: 200 });
      clients.push(fast);
      const next = new Map(TOPICS.map((t) => [t, 0]));
      const gaps: string[] = [];
      await Promise.all(
        TOPICS.map(
          (topic) =>
            new Promise<void>((resolve, reject) => {
              const sub = fast.subscribe(topic, (msg) => {
                if (msg.offset !== next.get(topic)) gaps.push(`${topic}: expected ${next.get(topic)}, got ${msg.offset}`);
                next.set(topic, msg.offset + 1);
              }, { from: "earliest", codec: "raw" });
              sub.once("subscribed", () => resolve());
              sub.once("error", reject);
            }),
        ),
      );
      const idle = n.rss();
      const stalled = await makeStalled(n);
      const publisher = await WsTestClient.connect(`ws://127.0.0.1:${n.httpPort}/ws`);
      publisher.keepFrames = false;
      await publish(publisher, WARM_UP);
      await waitFor(() => TOPICS.every((t) => next.get(t) === WARM_UP) && stalled.received() >= WARM_UP * TOPICS.length, { timeoutMs: 60_000, what: "every client to read the warm-up records" });
      stalled.stall();
      const slowBefore = await metric(n, "tributary_slow_consumer_disconnects_total", `gateway="${stalled.gateway}"`);
      const baseline = n.rss();
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, n.rss())), 50);
      let droppedAt = 0;
      const dropped = waitFor(async () => (await metric(n, "tributary_slow_consumer_disconnects_total", `gateway="${stalled.gateway}"`)) > slowBefore, {
        timeoutMs: 120_000,
        intervalMs: 100,
        what: "the stalled client to be disconnected as a slow consumer",
      }).then(() => (droppedAt = Date.now()));
      try {
        const started = Date.now();
        await publish(publisher, PER_TOPIC - WARM_UP);
        await dropped;
        await waitFor(() => TOPICS.every((t) => next.get(t) === PER_TOPIC), { timeoutMs: 120_000, what: "the fast subscriber to get every record" });
        peak = Math.max(peak, n.rss());
        // Dropped once its buffers were full for the grace period: long before the publisher finished.
        expect(droppedAt - started).toBeLessThan(GRACE_MS + 10_000);
      } finally {
        clearInterval(sampler);
        stalled.destroy();
        publisher.ws.close();
      }
      await within(stalled.closed, 10_000, "the stalled client's socket to close");
      expect(gaps).toEqual([]);
      expect([...next.values()]).toEqual(TOPICS.map(() => PER_TOPIC));
      const grew = peak - baseline;
      const mb = (b: number) => (b / 2 ** 20).toFixed(1);
      console.log(`${name}: RSS idle ${mb(idle)} MB, baseline after warm-up ${mb(baseline)} MB, peak while stalled ${mb(peak)} MB (+${mb(grew)} MB over baseline, +${mb(peak - idle)} MB over idle)`);
      expect(grew).toBeLessThan(RSS_SLACK);
      expect(n.stderr()).toMatch(stalled.gateway === "ws" ? /ws\.slow_consumer/ : /mqtt\.slow_consumer/);
    });
  }
});
