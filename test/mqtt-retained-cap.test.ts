/**
 * Retained messages are capped by count (`mqtt.maxRetainedMessages`) and bytes
 * (`mqtt.maxRetainedBytes`): past a cap, an MQTT 5 QoS 1/2 retained PUBLISH gets
 * PUBACK/PUBREC 0x97 Quota exceeded and nothing is stored; QoS 0 and MQTT 3.1.1 are stored
 * as a normal message without retaining, counted; clearing and replacing always work.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import { collect, connectClient, endClient, flushLog, roundTrip, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(limits: { maxRetainedMessages?: number; maxRetainedBytes?: number }): Promise<MqttTestNode> {
  const n = await startMqttTestNode(limits);
  cleanups.push(() => n.close());
  return n;
}

async function client(n: MqttTestNode, protocolVersion: 4 | 5): Promise<MqttClient> {
  const c = await connectClient(n.tcpUrl, { protocolVersion });
  cleanups.push(() => endClient(c));
  return c;
}

/** PUBACK reason code of a QoS 1 publish (MQTT.js rejects on an error reason code). */
async function pubackCode(c: MqttClient, topic: string, payload: string, qos: 1 | 2 = 1): Promise<number> {
  try {
    const packet = await c.publishAsync(topic, payload, { qos, retain: true });
    return (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

async function overLimit(n: MqttTestNode, outcome: "refused" | "not-retained"): Promise<number> {
  const metric = await n.node.broker.metrics.mqttRetainedOverLimit.get();
  return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

/** Retained messages a fresh subscriber to `filter` gets, as "topic=payload". */
async function retainedSeen(n: MqttTestNode, filter: string): Promise<string[]> {
  const c = await client(n, 5);
  const got = collect(c);
  await c.subscribeAsync(filter, { qos: 1 });
  await roundTrip(c); // retained messages are sent right after SUBACK, before this answer
  return got.messages.filter((m) => m.retain).map((m) => `${m.topic}=${m.payload}`).sort();
}

describe("retained message caps", () => {
  it("MQTT 5 QoS 1 and 2: a retained PUBLISH past mqtt.maxRetainedMessages gets 0x97 and nothing is stored; replacing and clearing still work", async () => {
    const n = await node({ maxRetainedMessages: 2 });
    const pub = await client(n, 5);
    const live = await client(n, 5);
    const liveGot = collect(live);
    await live.subscribeAsync("cap/#", { qos: 1 });
    expect(await pubackCode(pub, "cap/a", "1")).toBe(0);
    expect(await pubackCode(pub, "cap/b", "2")).toBe(0);
    expect(await pubackCode(pub, "cap/c", "3")).toBe(0x97);
    expect(await pubackCode(pub, "cap/d", "4", 2)).toBe(0x97);
    expect(await overLimit(n, "refused")).toBe(2);
    // replacing a kept topic is not a new one
    expect(await pubackCode(pub, "cap/a", "1b")).toBe(0);
    await flushLog(n, "cap/marker", [liveGot]);
    // refused means not stored at all: live subscribers never saw cap/c or cap/d
    expect(liveGot.messages.map((m) => `${m.topic}=${m.payload}`)).toEqual(["cap/a=1", "cap/b=2", "cap/a=1b"]);
    expect(await retainedSeen(n, "cap/#")).toEqual(["cap/a=1b", "cap/b=2"]);
    // clearing always works, and frees a place
    expect(await pubackCode(pub, "cap/b", "")).toBe(0);
    expect(await pubackCode(pub, "cap/c", "3")).toBe(0);
    expect(await retainedSeen(n, "cap/#")).toEqual(["cap/a=1b", "cap/c=3"]);
    // the connection is still good for normal publishes
    await pub.publishAsync("cap/plain", "x", { qos: 1 });
  });

  it("QoS 0 and MQTT 3.1.1 past the cap: stored and delivered as a normal message, not retained, and counted", async () => {
    const n = await node({ maxRetainedMessages: 1 });
    const v5 = await client(n, 5);
    const v4 = await client(n, 4);
    const live = await client(n, 5);
    const liveGot = collect(live);
    await live.subscribeAsync("cap0/#", { qos: 1, rap: true });
    await v5.publishAsync("cap0/a", "kept", { qos: 1, retain: true });
    await v5.publishAsync("cap0/b", "qos0", { qos: 0, retain: true });
    await v4.publishAsync("cap0/c", "v311", { qos: 1, retain: true });
    await flushLog(n, "cap0/marker", [liveGot]);
    // delivered live; with Retain As Published only the kept one carries RETAIN
    expect(liveGot.messages.map((m) => `${m.topic}=${m.payload}:${m.retain}`)).toEqual(["cap0/a=kept:true", "cap0/b=qos0:false", "cap0/c=v311:false"]);
    expect(await overLimit(n, "not-retained")).toBe(2);
    expect(await retainedSeen(n, "cap0/#")).toEqual(["cap0/a=kept"]);
  });

  it("mqtt.maxRetainedBytes counts topic + payload bytes; a retained message that does not grow always fits", async () => {
    const n = await node({ maxRetainedBytes: 100 });
    const pub = await client(n, 5);
    expect(await pubackCode(pub, "capb/a", "x".repeat(60))).toBe(0); // 6 + 60 = 66
    expect(await pubackCode(pub, "capb/b", "y".repeat(40))).toBe(0x97); // 66 + 46 > 100
    expect(await pubackCode(pub, "capb/b", "y".repeat(20))).toBe(0); // 66 + 26 = 92
    expect(await pubackCode(pub, "capb/a", "z".repeat(50))).toBe(0); // smaller than before
    expect(await retainedSeen(n, "capb/#")).toEqual([`capb/a=${"z".repeat(50)}`, `capb/b=${"y".repeat(20)}`]);
  });

  it("the caps hold after a restart: the loaded retained messages count", async () => {
    const n = await node({ maxRetainedMessages: 1 });
    const pub = await client(n, 5);
    expect(await pubackCode(pub, "capr/a", "1")).toBe(0);
    await endClient(pub);
    await n.restart();
    const again = await connectClient(n.tcpUrl, { protocolVersion: 5 });
    cleanups.push(() => endClient(again));
    expect(await pubackCode(again, "capr/b", "2")).toBe(0x97);
    expect(await retainedSeen(n, "capr/#")).toEqual(["capr/a=1"]);
  });
});
