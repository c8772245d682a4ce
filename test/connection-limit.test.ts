/**
 * One connection budget for the node, shared by WebSocket and MQTT, and never above what
 * the open-file limit allows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import mqtt from "mqtt";
import { SUBPROTOCOL_CBOR, WS_PATH } from "@tributary/client/protocol";
import { connectClient, endClient, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN } from "./helpers/node-process.ts";
import { within } from "./helpers/wait.ts";

function openWs(port: number): Promise<{ ws: WebSocket; status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${WS_PATH}`, [SUBPROTOCOL_CBOR]);
    ws.once("open", () => resolve({ ws, status: 101 }));
    ws.once("unexpected-response", (_req, res) => resolve({ ws, status: res.statusCode ?? 0 }));
    ws.once("error", reject);
  });
}

describe("limits.maxConnections counts WebSocket and MQTT together", () => {
  let node: MqttTestNode;
  beforeAll(async () => {
    node = await startMqttTestNode({}, {}, { maxConnections: 3 });
  });
  afterAll(async () => {
    await node?.close();
  });

  it("2 WebSocket + 1 MQTT fill a budget of 3: the next WebSocket gets 503 and the next MQTT client CONNACK 0x97", async () => {
    const a = await openWs(node.httpPort);
    const b = await openWs(node.httpPort);
    expect([a.status, b.status]).toEqual([101, 101]);
    const m = await connectClient(node.tcpUrl, { protocolVersion: 5 });
    const c = await openWs(node.httpPort);
    expect(c.status).toBe(503);
    const refused = mqtt.connect(node.tcpUrl, { protocolVersion: 5, reconnectPeriod: 0 });
    const connack = await within(
      new Promise<number>((resolve) => {
        refused.on("error", (err) => resolve((err as { code?: number }).code ?? -1));
        refused.on("connect", () => resolve(0));
      }),
      5000,
      "the refused CONNACK",
    );
    expect(connack).toBe(0x97);
    refused.end(true);
    a.ws.close();
    await within(new Promise((r) => a.ws.once("close", r)), 5000, "a WebSocket to close");
    await endClient(m);
    // room again once connections closed
    const d = await openWs(node.httpPort);
    expect(d.status).toBe(101);
    b.ws.close();
    d.ws.close();
  });
});

describe("maxConnections and the open-file limit", () => {
  it("a node whose open-file limit is 2048 takes at most 1024 connections and says so at start", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tributary-fd-"));
    const child = spawn("/bin/sh", ["-c", `ulimit -n 2048 && exec "${process.execPath}" "${BIN}" start --port 0 --mqtt-port 0 --data-dir "${dataDir}" --log-level info`]);
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    await within(
      new Promise<void>((resolve) =>
        child.stdout.on("data", (d: Buffer) => {
          stdout += d.toString();
          if (stdout.includes("tributary listening")) resolve();
        }),
      ),
      20_000,
      "the node to listen",
    );
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    rmSync(dataDir, { recursive: true, force: true });
    expect(stderr).toMatch(/"event":"node\.limits","openFileLimit":2048,"maxConnections":1024/);
    expect(stderr).toContain("node.max_connections_lowered");
  });
});
