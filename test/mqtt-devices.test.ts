import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";

let node: MqttTestNode;
const ROOT = fileURLToPath(new URL("../", import.meta.url));

beforeAll(async () => {
  node = await startMqttTestNode();
});
afterAll(async () => {
  await node?.close();
});

function devices(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--conditions=tributary-source", "--import", "tsx", "devices/src/cli.ts", ...args], { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("device simulator CLI", () => {
  it("runs a QoS 1 fleet whose readings land in the sensor-data log keyed by MQTT topic, and prints a summary", async () => {
    const r = await devices(["simulate", "--count", "20", "--rate", "5", "--qos", "1", "--duration", "2s", "--url", node.tcpUrl]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const sent = Number(/sent\s+([\d,]+)/.exec(r.stdout)![1]!.replace(/,/g, ""));
    const acked = Number(/acked\s+([\d,]+)/.exec(r.stdout)![1]!.replace(/,/g, ""));
    expect(sent).toBeGreaterThan(100);
    expect(acked).toBe(sent);
    expect(r.stdout).toMatch(/errors\s+0/);
    const engine = node.node.engine;
    const info = await engine.offsets("sensor-data", 0);
    expect(info.endOffset).toBe(sent);
    const [first] = await engine.read("sensor-data", 0, 0, { maxRecords: 1 });
    const key = new TextDecoder().decode(first!.key!);
    expect(key).toMatch(/^sensor-data\/dev-000\d\d\/(temperature|humidity|battery)$/);
    const reading = JSON.parse(new TextDecoder().decode(first!.value!)) as { device: string; metric: string; value: number };
    expect(key).toBe(`sensor-data/${reading.device}/${reading.metric}`);
    expect(typeof reading.value).toBe("number");
  });

  it("with MQTT 5, readings carry Content Type application/json: the record's content-type header; with 3.1.1 none", async () => {
    const r = await devices(["simulate", "--count", "2", "--rate", "5", "--qos", "1", "--duration", "1s", "--mqtt-version", "5", "--prefix", "typed-readings", "--url", node.tcpUrl]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [v5] = await node.node.engine.read("typed-readings", 0, 0, { maxRecords: 1 });
    expect(new TextDecoder().decode(v5!.headers["content-type"])).toBe("application/json");
    const [v311] = await node.node.engine.read("sensor-data", 0, 0, { maxRecords: 1 });
    expect(v311!.headers["content-type"]).toBeUndefined();
  });

  it("prints help and rejects bad options with exit code 2", async () => {
    const help = await devices(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("simulate");
    const bad = await devices(["simulate", "--qos", "3"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--qos must be 0, 1 or 2");
  });
});
