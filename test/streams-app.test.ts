/**
 * @tributary/streams against a real node (in-process): windowed averages whose windows span
 * a clean restart (state restored from the changelog, nothing emitted twice), and a stream
 * joined with a compacted table, re-keyed and counted through a repartition topic.
 */
import { connect } from "@tributary/client";
import { StreamsBuilder, TributaryStreams } from "@tributary/streams";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startSdkTestNode, type SdkTestNode } from "./helpers/sdk-node.ts";
import { createTopic, produceTimed, readTopic, type TimedRecord } from "./helpers/streams-process.ts";
import { averagesTopology, type WindowAverage } from "./helpers/streams-runner.ts";
import { waitFor } from "./helpers/wait.ts";

let node: SdkTestNode;
let http: string;

beforeEach(async () => {
  node = await startSdkTestNode();
  http = `http://127.0.0.1:${node.port}`;
});

afterEach(async () => {
  await node.close();
});

const PARTITIONS = 3;

describe("streams", () => {
  it("windowed averages across a restart: the state comes back from the changelog and every window is emitted once", async () => {
    await createTopic(http, "readings", PARTITIONS);
    await createTopic(http, "averages", PARTITIONS);
    const devices = ["d1", "d2", "d3", "d4", "d5", "d6"];
    const rows = (from: number, to: number): TimedRecord[] => {
      const out: TimedRecord[] = [];
      for (let t = from; t < to; t += 250) for (const [i, d] of devices.entries()) out.push({ key: d, value: { temp: (t / 250 + i) % 17 }, timestamp: t - ((t / 250 + i) % 3) * 100 });
      return out;
    };
    const first = rows(100_000, 104_600); // windows 100-101 s ... 104 s; 104 s is still open at the restart
    const second = rows(104_600, 108_000);
    const options = { input: "readings", output: "averages", windowMs: 1000, graceMs: 500 };
    const end = (t: number): TimedRecord[] => Array.from({ length: PARTITIONS }, (_, p) => ({ key: `end-${p}`, value: { temp: 0 }, timestamp: t, partition: p }));

    await produceTimed(http, "readings", first);
    const a = new TributaryStreams(averagesTopology(options), { url: node.url, applicationId: "avg", sessionTimeoutMs: 1000, maxBatchMs: 20 });
    await a.start();
    // Windows up to 103 s close once the stream time passes 104.5 s in every partition.
    await waitFor(async () => (await readTopic(http, "averages")).length >= devices.length * 3, { what: "first windows", timeoutMs: 20_000 });
    await waitFor(() => a.metrics().processed === first.length, { what: "all of the first part processed", timeoutMs: 20_000 });
    await a.close();

    await produceTimed(http, "readings", [...second, ...end(200_000)]);
    const b = new TributaryStreams(averagesTopology(options), { url: node.url, applicationId: "avg", sessionTimeoutMs: 1000, maxBatchMs: 20 });
    await b.start();
    const expected = oracle([...first, ...second], 1000);
    await waitFor(async () => (await readTopic(http, "averages")).length >= expected.size, { what: "every window", timeoutMs: 20_000 });
    await b.close();
    expect(b.metrics().restores).toBe(PARTITIONS);
    expect(b.metrics().restoredRecords).toBeGreaterThan(0);
    expect(byWindow(await readTopic(http, "averages"))).toEqual(expected);
  });

  it("joins with a compacted table, re-keys and counts through a repartition topic", async () => {
    await createTopic(http, "clicks", PARTITIONS);
    await createTopic(http, "users", PARTITIONS, "compact");
    await createTopic(http, "enriched", PARTITIONS);
    await createTopic(http, "per-country", PARTITIONS);
    await produceTimed(http, "users", [
      { key: "u1", value: { country: "fr" }, timestamp: 1 },
      { key: "u2", value: { country: "de" }, timestamp: 1 },
      { key: "u3", value: { country: "fr" }, timestamp: 1 },
    ]);
    const builder = new StreamsBuilder();
    const users = builder.table<{ country: string }>("users");
    const joined = builder.from<{ page: string }>("clicks").join(users, (click, user) => ({ ...click, country: user.country }));
    joined.to("enriched");
    joined.groupBy((v) => v.country).count({ name: "by-country" }).toStream().to("per-country");
    const clicks: TimedRecord[] = [];
    for (let i = 0; i < 60; i++) clicks.push({ key: `u${(i % 4) + 1}`, value: { page: `/p${i}` }, timestamp: 1000 + i }); // u4 has no user: dropped
    await produceTimed(http, "clicks", clicks);
    const app = new TributaryStreams(builder, { url: node.url, applicationId: "clicks", sessionTimeoutMs: 1000, maxBatchMs: 20 });
    await app.start();
    const latest = new Map<string, number>();
    const client = connect(node.url);
    client.subscribe("per-country", (m) => void latest.set(m.key!, m.value as number), { from: "earliest" });
    await waitFor(() => latest.get("fr") === 30 && latest.get("de") === 15, { what: "counts per country", timeoutMs: 20_000 });
    await app.close();
    await client.close();
    const enriched = await readTopic(http, "enriched");
    expect(enriched).toHaveLength(45);
    expect(new Set(enriched.map((r) => JSON.parse(r.value!).country))).toEqual(new Set(["fr", "de"]));
    expect(enriched.every((r) => r.key !== "u4")).toBe(true);
  });
});

function oracle(records: TimedRecord[], windowMs: number): Map<string, { count: number; sum: number }> {
  const out = new Map<string, { count: number; sum: number }>();
  for (const r of records) {
    const start = Math.floor(r.timestamp / windowMs) * windowMs;
    const k = `${r.key}@${start}`;
    const agg = out.get(k) ?? { count: 0, sum: 0 };
    agg.count++;
    agg.sum += (r.value as { temp: number }).temp;
    out.set(k, agg);
  }
  return out;
}

function byWindow(records: Array<{ value: string | null }>): Map<string, { count: number; sum: number }> {
  const out = new Map<string, { count: number; sum: number }>();
  for (const r of records) {
    const v = JSON.parse(r.value!) as WindowAverage;
    const k = `${v.device}@${v.start}`;
    if (out.has(k)) throw new Error(`window ${k} emitted twice`);
    out.set(k, { count: v.count, sum: v.sum });
  }
  return out;
}
