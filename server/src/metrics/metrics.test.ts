import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { testNodeConfig } from "../../../test/helpers/node-config.ts";
import { startNode } from "../node.ts";
import { DeliveryBatch } from "../broker/delivery/delivery-batch.ts";
import { Metrics } from "./metrics.ts";

describe("Metrics", () => {
  it("topics-past-maxTopicLabels-are-summed-as-other", async () => {
    const metrics = new Metrics({ defaultMetrics: false, maxTopicLabels: 2 });
    metrics.traffic.produced("ws", "a", 1, 10);
    metrics.traffic.produced("mqtt", "b", 2, 20);
    metrics.traffic.produced("ws", "c", 3, 30);
    metrics.traffic.produced("ws", "d", 4, 40);
    metrics.traffic.produced("ws", "a", 5, 50);
    const text = await metrics.expose();
    expect(text).toMatch(/^tributary_records_in_total\{protocol="ws",topic="a"\} 6$/m);
    expect(text).toMatch(/^tributary_records_in_total\{protocol="mqtt",topic="b"\} 2$/m);
    expect(text).toMatch(/^tributary_records_in_total\{protocol="ws",topic="_other"\} 7$/m);
    expect(text).toMatch(/^tributary_bytes_in_total\{protocol="ws",topic="_other"\} 70$/m);
    expect(text).not.toMatch(/topic="[cd]"/);
  });

  it("counts-deliveries-and-samples-their-latency", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const now = Date.now();
    const records = Array.from({ length: 4 }, (_, i) => ({ offset: i, key: null, value: new Uint8Array(i + 1), timestamp: now - 5, headers: {} }));
    const batch = new DeliveryBatch("t", 0, "e", records, 1);
    for (let i = 0; i < 8; i++) metrics.traffic.delivered("mqtt", "t", 3, batch.payloadBytesOf(1, 3), records[1]!);
    const text = await metrics.expose();
    expect(text).toMatch(/^tributary_records_out_total\{protocol="mqtt",topic="t"\} 24$/m);
    expect(text).toMatch(/^tributary_bytes_out_total\{protocol="mqtt",topic="t"\} 72$/m); // (2 + 3 + 4) × 8
    expect(text).toMatch(/^tributary_publish_deliver_latency_seconds_count\{protocol="mqtt"\} 1$/m); // one take in 8
  });

  it("disabled-metrics-do-no-per-message-counting", async () => {
    const metrics = new Metrics({ enabled: false });
    metrics.traffic.produced("ws", "a", 1, 10);
    metrics.traffic.delivered("ws", "a", 1, 10, { timestamp: Date.now() });
    const text = await metrics.expose();
    expect(text).not.toMatch(/^tributary_records_(in|out)_total\{/m);
    expect(text).not.toMatch(/^process_cpu_seconds_total/m);
  });

  it("labelled-error-counters-are-exported-from-zero", async () => {
    const text = await new Metrics({ defaultMetrics: false }).expose();
    expect(text).toMatch(/^tributary_produce_requests_total\{code="UNAVAILABLE"\} 0$/m);
    expect(text).toMatch(/^tributary_protocol_errors_total\{gateway="ws",code="FORBIDDEN"\} 0$/m);
    expect(text).toMatch(/^tributary_slow_consumer_disconnects_total\{gateway="mqtt"\} 0$/m);
    expect(text).toMatch(/^tributary_backpressure_pauses_total\{gateway="ws"\} 0$/m);
    expect(text).toMatch(/^tributary_redis_command_errors_total\{component="log-engine"\} 0$/m);
    expect(text).toMatch(/^tributary_background_errors_total\{task="compaction"\} 0$/m);
  });

  it("a-scrape-whose-groups-or-partitions-cannot-be-read-still-answers-and-counts-the-failure", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const failures: string[] = [];
    metrics.onCollectError = (err, what) => failures.push(`${what}: ${(err as Error).message}`);
    const down = () => Promise.reject(new Error("storage unreachable"));
    metrics.groups.setSource({ listGroups: down, describeGroup: down });
    metrics.storage.setSource({ kind: "redis", listTopics: down, describeTopic: down });
    metrics.traffic.produced("ws", "a", 1, 1);
    const text = await metrics.expose();
    expect(text).toMatch(/^tributary_records_in_total\{protocol="ws",topic="a"\} 1$/m);
    expect(text).not.toMatch(/^tributary_(consumer_group_lag|partition_end_offset)\{/m);
    expect(failures).toEqual(["consumer-groups: storage unreachable", "partitions: storage unreachable"]);
  });

  it("a-node-with-metrics-disabled-serves-no-metrics-endpoint", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tributary-metrics-off-"));
    const config = testNodeConfig(dataDir);
    const off = await startNode({ ...config, metrics: { ...config.metrics, enabled: false } });
    const on = await startNode(testNodeConfig(join(dataDir, "on")));
    try {
      expect((await fetch(`http://127.0.0.1:${off.httpPort}/metrics`)).status).toBe(404);
      const res = await fetch(`http://127.0.0.1:${on.httpPort}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/^tributary_node_ready 1$/m);
    } finally {
      await off.close();
      await on.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
