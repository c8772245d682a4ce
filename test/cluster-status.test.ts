/**
 * `GET /cluster` and `tributary cluster status` count every kind of client connection:
 * SDK WebSockets, MQTT over TCP and MQTT over WebSocket.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import { connect, type TributaryClient } from "@tributary/client";
import type { ClusterStatus } from "../server/src/cluster/node-registry.ts";
import { render } from "../server/src/cli/cluster-command.ts";
import { connectClient, endClient, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor } from "./helpers/wait.ts";

let node: MqttTestNode;
const mqttClients: MqttClient[] = [];
let sdk: TributaryClient;
beforeAll(async () => {
  node = await startMqttTestNode();
});
afterAll(async () => {
  await Promise.all(mqttClients.map((c) => endClient(c, true)));
  await sdk?.close();
  await node?.close();
});

async function status(): Promise<ClusterStatus> {
  return (await (await fetch(`http://127.0.0.1:${node.httpPort}/cluster`)).json()) as ClusterStatus;
}

describe("cluster status connection counts", () => {
  it("counts SDK, MQTT/TCP and MQTT/WebSocket connections separately, and renders them", async () => {
    expect((await status()).nodes[0]!.connections).toEqual({ ws: 0, mqtt: 0, "mqtt-ws": 0 });
    mqttClients.push(await connectClient(node.tcpUrl), await connectClient(node.tcpUrl, { protocolVersion: 5 }), await connectClient(node.wsUrl));
    sdk = connect(node.sdkUrl);
    await new Promise<void>((resolve) => sdk.once("connected", () => resolve()));
    await waitFor(async () => (await status()).nodes[0]!.connections.ws === 1, { timeoutMs: 5000, what: "the SDK connection to be counted" });
    const now = await status();
    expect(now.nodes[0]!.connections).toEqual({ ws: 1, mqtt: 2, "mqtt-ws": 1 });
    const table = render(now, Date.now()).split("\n");
    expect(table[0]).toMatch(/WS\s+MQTT\s+MQTT\/WS/);
    expect(table[1]).toMatch(/\s1\s+2\s+1\s/);
    await endClient(mqttClients.pop()!);
    await waitFor(async () => (await status()).nodes[0]!.connections["mqtt-ws"] === 0, { timeoutMs: 5000, what: "the closed MQTT/WS connection to be uncounted" });
    expect((await status()).nodes[0]!.connections).toEqual({ ws: 1, mqtt: 2, "mqtt-ws": 0 });
  });
});
