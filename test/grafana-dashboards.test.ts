/**
 * Every query in grafana/dashboards uses only metrics that a real node's /metrics exports,
 * and the core panels have data once a node has seen real traffic (SDK over WebSocket,
 * MQTT, HTTP).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@tributary/client";
import { startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor } from "./helpers/wait.ts";

const DASHBOARD_DIR = join(import.meta.dirname, "..", "grafana", "dashboards");

interface Panel {
  title: string;
  targets?: Array<{ expr: string }>;
  panels?: Panel[];
}

function dashboardQueries(): Array<{ file: string; panel: string; expr: string }> {
  const out: Array<{ file: string; panel: string; expr: string }> = [];
  for (const file of readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith(".json"))) {
    const dashboard = JSON.parse(readFileSync(join(DASHBOARD_DIR, file), "utf8")) as { panels: Panel[] };
    const walk = (panels: Panel[]) => {
      for (const panel of panels) {
        for (const target of panel.targets ?? []) out.push({ file, panel: panel.title, expr: target.expr });
        if (panel.panels) walk(panel.panels);
      }
    };
    walk(dashboard.panels);
  }
  return out;
}

/** Metric names a PromQL expression reads (tributary_* identifiers not followed by "("). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(tributary_[a-zA-Z0-9_]+)\b(?!\s*\()/g)].map((m) => m[1]!);
}

/** Families exported, and families with at least one sample. `_bucket`/`_sum`/`_count` map to their histogram. */
function parseExposition(text: string): { families: Set<string>; sampled: Set<string> } {
  const families = new Set<string>();
  const sampled = new Set<string>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) families.add(type[1]!);
    else if (line && !line.startsWith("#")) {
      const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)![1]!;
      sampled.add(name);
      sampled.add(name.replace(/_(bucket|sum|count)$/, ""));
    }
  }
  return { families, sampled };
}

describe("grafana dashboards", () => {
  let node: MqttTestNode;
  let exposition: string;

  beforeAll(async () => {
    node = await startMqttTestNode();
    // Real traffic: an SDK subscriber and publisher, an MQTT client, an HTTP produce.
    const client = connect(`ws://127.0.0.1:${node.httpPort}`);
    const received: unknown[] = [];
    client.subscribe("dash", (msg) => void received.push(msg.value), { from: "earliest" });
    await client.publish("dash", { n: 1 });
    const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${node.mqttPort}`, { clientId: "dash-device" });
    await device.publishAsync("dash/d1/temp", "21", { qos: 1 });
    await fetch(`http://127.0.0.1:${node.httpPort}/topics/dash/records`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value: "x" }),
    });
    await waitFor(() => received.length >= 3, { timeoutMs: 5000, what: "the SDK, MQTT and HTTP records at the subscriber" });
    expect(received.length).toBe(3);
    exposition = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    await device.endAsync();
    client.close();
  });

  afterAll(async () => {
    await node?.close();
  });

  it("uses-only-metrics-that-metrics-endpoint-exports", () => {
    const { families } = parseExposition(exposition);
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(5);
    const missing = queries.flatMap((q) =>
      metricNames(q.expr)
        .filter((name) => !families.has(name.replace(/_(bucket|sum|count)$/, "")) && !families.has(name))
        .map((name) => `${q.file} "${q.panel}": ${name}`),
    );
    expect(missing).toEqual([]);
  });

  it("has-data-for-the-core-panels-after-real-traffic", () => {
    const { sampled } = parseExposition(exposition);
    for (const name of [
      "tributary_produced_records_total",
      "tributary_produce_duration_seconds",
      "tributary_produce_requests_total",
      "tributary_connections",
      "tributary_subscriptions",
      "tributary_delivered_messages_total",
      "tributary_topics",
      "process_resident_memory_bytes",
      "process_cpu_seconds_total",
    ]) {
      expect(sampled.has(name), name).toBe(true);
    }
    expect(exposition).toMatch(/tributary_delivered_messages_total\{gateway="ws"\} [1-9]/);
    expect(exposition).toMatch(/tributary_produced_records_total\{acks="1"\} [3-9]/);
    expect(exposition).toMatch(/tributary_connections\{gateway="mqtt"\} 1/);
    expect(exposition).toMatch(/tributary_connections\{gateway="ws"\} 1/);
  });
});
