/**
 * MQTT positions are (epoch, offset): a persistent session, or a live subscription, whose
 * topic gets a new history (deleted and re-created; a Redis that lost its data) continues
 * from the start of the new history instead of skipping it by resuming at an old offset.
 * MQTT subscriptions are filters, so delivery resumes at the new epoch (docs/mqtt.md).
 */
import type { MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startNode, type TributaryNode } from "../server/src/node.ts";
import { redisNodeConfig } from "./helpers/cluster-nodes.ts";
import { closeAndWait, collect, connectClient, endClient, flushLog, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { startRedis, type RedisServer } from "./helpers/redis-harness.ts";
import { waitFor } from "./helpers/wait.ts";
import { createLogger } from "../server/src/logger.ts";

const enc = new TextEncoder();
const clients: MqttClient[] = [];
async function client(url: string, options: Parameters<typeof connectClient>[1], before?: Parameters<typeof connectClient>[2]): Promise<MqttClient> {
  const c = await connectClient(url, options, before);
  clients.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => endClient(c, true)));
});

/** Publishes `values` to MQTT topic `topic` through the broker (as any producer would). */
async function produce(node: TributaryNode, logTopic: string, mqttTopic: string, values: string[]): Promise<void> {
  for (const v of values) await node.broker.produce(logTopic, [{ key: enc.encode(mqttTopic), value: enc.encode(v) }]);
}

async function recreate(node: TributaryNode, topic: string): Promise<string> {
  const before = (await node.broker.offsets(topic, 0)).epoch;
  await node.broker.deleteTopic(topic);
  await node.broker.createTopic(topic, { partitions: 1 });
  const after = (await node.broker.offsets(topic, 0)).epoch;
  expect(after).not.toBe(before);
  return after;
}

describe("MQTT across a topic deleted and re-created (file engine)", () => {
  let node: MqttTestNode;
  beforeAll(async () => {
    node = await startMqttTestNode();
  });
  afterAll(async () => {
    await node?.close();
  });

  for (const [version, restart] of [
    [5, false],
    [4, false],
    [5, true],
  ] as const) {
    it(`a persistent MQTT ${version === 5 ? "5" : "3.1.1"} session that was away${restart ? " across a node restart" : ""} gets the new history from its start, not from its old offset`, async () => {
      const topic = `epoch-s${version}${restart ? "r" : ""}`;
      await node.node.broker.createTopic(topic, { partitions: 1 });
      const opts = { protocolVersion: version, clientId: `${topic}-client`, clean: false, ...(version === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) };
      const first = await client(node.tcpUrl, opts);
      const got1 = collect(first);
      await first.subscribeAsync(`${topic}/#`, { qos: 1 });
      await produce(node.node, topic, `${topic}/d1`, Array.from({ length: 10 }, (_, i) => `old-${i}`));
      await got1.waitFor(10);
      await flushLog(node, `${topic}/d1`, [got1]); // every PUBACK is in: the session's position is 10 (+ the marker)
      await closeAndWait(node, () => endClient(first));

      await recreate(node.node, topic);
      await produce(node.node, topic, `${topic}/d1`, ["new-0", "new-1", "new-2"]);
      if (restart) await node.restart();

      let got2!: ReturnType<typeof collect>;
      const second = await client(node.tcpUrl, opts, (c) => void (got2 = collect(c)));
      await got2.waitFor(3);
      await flushLog(node, `${topic}/d1`, [got2]);
      expect(got2.messages.map((m) => m.payload)).toEqual(["new-0", "new-1", "new-2"]);
      await endClient(second);
    });
  }

  it("a live MQTT subscriber keeps receiving after its topic is deleted and re-created (at the new epoch)", async () => {
    const topic = "epoch-live";
    await node.node.broker.createTopic(topic, { partitions: 1 });
    const sub = await client(node.tcpUrl, { protocolVersion: 5, clientId: "epoch-live-sub" });
    const got = collect(sub);
    await sub.subscribeAsync(`${topic}/#`, { qos: 1 });
    await produce(node.node, topic, `${topic}/x`, ["a", "b"]);
    await got.waitFor(2);
    await recreate(node.node, topic);
    await produce(node.node, topic, `${topic}/x`, ["c", "d", "e"]);
    await got.waitFor(5, 10_000);
    await flushLog(node, `${topic}/x`, [got]);
    expect(got.messages.map((m) => m.payload)).toEqual(["a", "b", "c", "d", "e"]);
  });
});

describe("MQTT across a lost Redis tail (Redis engine)", () => {
  let redis: RedisServer;
  let tributary: TributaryNode;
  beforeAll(async () => {
    redis = await startRedis({ persistent: false });
    tributary = await startNode({ ...redisNodeConfig(redis.url), mqtt: { ...redisNodeConfig(redis.url).mqtt, enabled: true, port: 0 } }, { logger: createLogger("error") });
  });
  afterAll(async () => {
    await tributary?.close();
    await redis?.stop();
  });

  it("a persistent session that was away while Redis lost its data resumes from the start of the new history", async () => {
    const url = `mqtt://127.0.0.1:${tributary.mqttPort}`;
    const topic = "epoch-redis";
    await tributary.broker.createTopic(topic, { partitions: 1 });
    const opts = { protocolVersion: 5 as const, clientId: "epoch-redis-client", clean: false, properties: { sessionExpiryInterval: 300 } };
    const first = await client(url, opts);
    const got1 = collect(first);
    await first.subscribeAsync(`${topic}/#`, { qos: 1 });
    await produce(tributary, topic, `${topic}/d`, Array.from({ length: 20 }, (_, i) => `old-${i}`));
    await got1.waitFor(20);
    const oldEpoch = (await tributary.broker.offsets(topic, 0)).epoch;
    await endClient(first);

    await redis.stop("SIGKILL");
    await redis.start(); // empty: the partition's history is gone
    // New history: offsets 0.. again, under a new epoch (the topic is created again by the produce).
    await waitFor(
      async () => {
        try {
          await produce(tributary, topic, `${topic}/d`, ["new-0"]);
          return true;
        } catch {
          return false; // Redis still reconnecting
        }
      },
      { timeoutMs: 15_000, what: "a produce to succeed on the restarted Redis" },
    );
    await produce(tributary, topic, `${topic}/d`, ["new-1", "new-2"]);
    const now = await tributary.broker.offsets(topic, 0);
    expect(now.epoch).not.toBe(oldEpoch);
    expect(now.endOffset).toBe(3);

    let got2!: ReturnType<typeof collect>;
    await client(url, opts, (c) => void (got2 = collect(c)));
    await got2.waitFor(3, 15_000);
    expect(got2.messages.map((m) => m.payload)).toEqual(["new-0", "new-1", "new-2"]);
  });
});
