/**
 * The compiled node replaces `debug` (mqtt-packet's and ioredis's tracing) by a no-op unless
 * DEBUG is set at start (server/build.mjs, quietDebugPlugin): with DEBUG it still traces.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connectClient, endClient } from "./helpers/mqtt-node.ts";
import { spawnFileNode, type NodeChild } from "./helpers/node-process.ts";
import { waitFor } from "./helpers/wait.ts";

let node: NodeChild | null = null;
afterEach(async () => {
  await node?.stop();
  node = null;
});

async function mqttRoundTrip(port: number): Promise<void> {
  const client = await connectClient(`mqtt://127.0.0.1:${port}`);
  await client.publishAsync("debug-switch/a", "x", { qos: 1 });
  await endClient(client);
}

describe("the compiled node's debug switch", () => {
  it("traces mqtt-packet with DEBUG=mqtt-packet:*", async () => {
    node = await spawnFileNode({ env: { DEBUG: "mqtt-packet:*" } });
    await mqttRoundTrip(node.mqttPort);
    await waitFor(() => /mqtt-packet:parser/.test(node!.stderr()), { what: "mqtt-packet's trace on stderr", timeoutMs: 5000 });
  });

  it("writes no trace without DEBUG", async () => {
    const env: Record<string, string> = { DEBUG: "" };
    node = await spawnFileNode({ env });
    await mqttRoundTrip(node.mqttPort);
    await node.stop({ keepDataDir: false });
    expect(node.stderr()).toContain(`"level"`); // the node's own log lines are there
    expect(node.stderr()).not.toMatch(/mqtt-packet:/);
  });
});
