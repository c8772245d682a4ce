import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Message, type TributaryClient } from "@tributary/client";
import type { MqttClient } from "mqtt";
import { collect, connectClient, endClient, flushLog, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor } from "./helpers/wait.ts";

let node: MqttTestNode;
const mqttClients: MqttClient[] = [];
const sdkClients: TributaryClient[] = [];
const dec = new TextDecoder();

beforeAll(async () => {
  node = await startMqttTestNode({}, { defaultPartitions: 3 });
});
afterAll(async () => {
  await Promise.all(mqttClients.map((c) => endClient(c, true)));
  await Promise.all(sdkClients.map((c) => c.close()));
  await node?.close();
});

function sdk(): TributaryClient {
  const c = connect(node.sdkUrl, { codec: "raw", minReconnectDelay: 20, maxReconnectDelay: 200 });
  sdkClients.push(c);
  return c;
}

describe("SDK ↔ MQTT on the same log", () => {
  it("an MQTT publish reaches SDK subscribers of the log topic, key = MQTT topic, properties as headers", async () => {
    const c = sdk();
    const got: Message[] = [];
    const sub = c.subscribe("sensor-data", (m) => void got.push(m));
    await new Promise<void>((resolve) => sub.once("subscribed", () => resolve()));
    const device = await connectClient(node.tcpUrl, { protocolVersion: 5 });
    mqttClients.push(device);
    await device.publishAsync("sensor-data/d42/temp", '{"t":21.5}', { qos: 1, properties: { contentType: "application/json", userProperties: { unit: "C" } } });
    await waitFor(() => got.length === 1, { timeoutMs: 5000, what: "the MQTT publish at the SDK subscriber" });
    const m = got[0]!;
    expect(m.topic).toBe("sensor-data");
    expect(m.key).toBe("sensor-data/d42/temp");
    expect(dec.decode(m.bytes!)).toBe('{"t":21.5}');
    // MQTT 5 Content Type is the record's content-type header; header values read as strings.
    expect(m.contentType).toBe("application/json");
    expect(m.headers["content-type"]).toBe("application/json");
    expect(m.headers["unit"]).toBe("C");
    expect(m.headers["mqtt.qos"]).toBe("1");
    expect(dec.decode(m.headerBytes["unit"]!)).toBe("C");
    expect(m.json()).toEqual({ t: 21.5 });
  });

  it("an SDK publish keyed by an MQTT topic reaches MQTT subscribers whose filter matches the key; headers become user properties", async () => {
    const sub = await connectClient(node.wsUrl, { protocolVersion: 5 });
    mqttClients.push(sub);
    const got = collect(sub);
    await sub.subscribeAsync("commands/+/reboot", { qos: 1 });
    const c = sdk();
    await c.publish("commands", new TextEncoder().encode("now"), { key: "commands/d7/reboot", headers: { origin: "console" } });
    await c.publish("commands", new TextEncoder().encode("other"), { key: "commands/d7/update" });
    const msgs = await got.waitFor(1);
    expect(msgs[0]).toMatchObject({ topic: "commands/d7/reboot", payload: "now", qos: 1 });
    expect(msgs[0]!.properties).toMatchObject({ userProperties: { origin: "console" } });
    await flushLog(node, "commands/marker/reboot", [got]); // commands/d7/update is not delivered
    expect(got.messages).toHaveLength(1);
  });

  it("an SDK record with a null key is delivered on the topic named by the log topic alone (seen by `t`, `t/#` and `#`)", async () => {
    const exact = await connectClient(node.tcpUrl);
    const hash = await connectClient(node.tcpUrl);
    mqttClients.push(exact, hash);
    const gotExact = collect(exact);
    const gotHash = collect(hash);
    await exact.subscribeAsync("alerts", { qos: 1 });
    await hash.subscribeAsync("alerts/#", { qos: 0 });
    const c = sdk();
    await c.publish("alerts", new TextEncoder().encode("fire"));
    expect((await gotExact.waitFor(1))[0]).toMatchObject({ topic: "alerts", payload: "fire" });
    expect((await gotHash.waitFor(1))[0]).toMatchObject({ topic: "alerts", payload: "fire", qos: 0 });
  });

  it("an SDK record keyed `d42` reaches MQTT subscribers on `t/d42` (and `t/+`), as JSON with its Content Type", async () => {
    const v5 = await connectClient(node.tcpUrl, { protocolVersion: 5 });
    const v311 = await connectClient(node.tcpUrl);
    mqttClients.push(v5, v311);
    const got5 = collect(v5);
    const got311 = collect(v311);
    await v5.subscribeAsync("readings/d42", { qos: 1 });
    await v311.subscribeAsync("readings/+/temp", { qos: 1 });
    const c = connect(node.sdkUrl, { minReconnectDelay: 20, maxReconnectDelay: 200 }); // the default (JSON) codec
    sdkClients.push(c);
    await c.publish("readings", { temp: 21.5 }, { key: "d42" });
    await c.publish("readings", "hot", { key: "d42/temp" });
    const [m] = await got5.waitFor(1);
    expect(m).toMatchObject({ topic: "readings/d42", payload: '{"temp":21.5}' });
    expect(m!.properties).toMatchObject({ contentType: "application/json", payloadFormatIndicator: true });
    expect((await got311.waitFor(1))[0]).toMatchObject({ topic: "readings/d42/temp", payload: "hot" });
  });
});
