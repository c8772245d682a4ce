/**
 * The streams guarantee under a crash: 200,000 keyed readings with out-of-order timestamps
 * (disorder bounded below the grace) → per-device one-minute averages, computed by two
 * instances (child processes) of one application; one is SIGKILLed mid-way: A starts alone
 * on the first half of the input, B joins (half the partitions move to it: a revoke), an
 * eighth more is produced, A is killed once both have flushed work since B joined
 * (synchronised on their output counts, never on sleeps), and the rest of the input arrives
 * after the kill, so A's partitions must be taken over and restored by B. The output must equal the oracle computed
 * here: every window exactly once, none missing, none twice.
 *
 * STREAMS_CRASH_RECORDS overrides the record count (default 200,000).
 */
import { connect } from "@tributary/client";
import { afterEach, describe, expect, it } from "vitest";
import { startSdkTestNode, type SdkTestNode } from "./helpers/sdk-node.ts";
import { createTopic, produceTimed, readTopic, spawnStreams, type StreamsChild, type TimedRecord } from "./helpers/streams-process.ts";
import type { FlushStep } from "@tributary/streams";
import type { WindowAverage } from "./helpers/streams-runner.ts";
import { waitFor, within } from "./helpers/wait.ts";

const RECORDS = Number(process.env.STREAMS_CRASH_RECORDS ?? 200_000);
const DEVICES = 200;
const PARTITIONS = 4;
const WINDOW_MS = 60_000;
const GRACE_MS = 10_000;
const DISORDER_MS = 5_000;
const STEP_MS = 30;
const T0 = 1_764_000_000_000;

let node: SdkTestNode | undefined;
const children: StreamsChild[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.child.exitCode === null && c.child.signalCode === null) await c.kill();
  await node?.close();
});

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("streams crash", () => {
  it(`windowed averages over ${RECORDS} out-of-order records, two instances, one SIGKILLed mid-way: output equals the oracle, no window twice`, { timeout: 180_000 }, async () => {
    const { survivor, atKill, windows } = await crashRun(RECORDS, undefined);
    expect(atKill).toBeLessThan(windows);
    // B restored its share when it joined and A's partitions after the kill.
    expect(survivor.restores).toBe(PARTITIONS);
    expect(survivor.processed).toBeGreaterThan(0);
  });

  it("an instance dying after its outbox, before its outputs: the next owner produces that flush's outputs, once", { timeout: 120_000 }, async () => {
    const { survivor } = await crashRun(40_000, "outbox");
    expect(survivor.reemitted).toBeGreaterThan(0);
  });

  it("an instance dying after its outputs, before its commit: the next owner finds them and skips the flushed input", { timeout: 120_000 }, async () => {
    const { survivor } = await crashRun(40_000, "outputs");
    expect(survivor.reemitted).toBe(0);
    expect(survivor.skipped).toBeGreaterThan(0);
  });
});

/**
 * Produces `count` readings (+ one closer per partition), runs two instances, kills one
 * (the test's SIGKILL mid-way, or its own at `dieAt` of a flush), waits for
 * every window, stops the survivor and compares the whole output topic with the oracle.
 */
async function crashRun(count: number, dieAt: FlushStep | undefined): Promise<{ survivor: Record<string, number>; atKill: number; windows: number }> {
  node = await startSdkTestNode();
  const http = `http://127.0.0.1:${node.port}`;
  await createTopic(http, "sensor-data", PARTITIONS);
  await createTopic(http, "sensor-averages", PARTITIONS);

  const rand = random(14);
  const records: TimedRecord[] = [];
  for (let i = 0; i < count; i++) {
    const device = `dev-${Math.floor(rand() * DEVICES)}`;
    records.push({ key: device, value: { temp: Math.round(rand() * 400) / 10 }, timestamp: T0 + i * STEP_MS - Math.floor(rand() * DISORDER_MS) });
  }
  const expected = new Map<string, { count: number; sum: number }>();
  for (const r of records) {
    const k = `${r.key}@${Math.floor(r.timestamp / WINDOW_MS) * WINDOW_MS}`;
    const agg = expected.get(k) ?? { count: 0, sum: 0 };
    agg.count++;
    agg.sum += (r.value as { temp: number }).temp;
    expected.set(k, agg);
  }
  for (const agg of expected.values()) agg.sum = Math.round(agg.sum * 10) / 10;
  // One record per partition far ahead closes every window of the data (its own stays open).
  const closers: TimedRecord[] = Array.from({ length: PARTITIONS }, (_, p) => ({ key: `closer-${p}`, value: { temp: 0 }, timestamp: T0 + count * STEP_MS + WINDOW_MS * 10, partition: p }));
  // The mid-way kill: half the input first, the rest around the kill.
  const half = dieAt ? records.length : Math.floor(records.length / 2);
  await produceTimed(http, "sensor-data", dieAt ? [...records, ...closers] : records.slice(0, half));

  // Outputs as they arrive: the kill is synchronised on their count.
  const seen = new Map<string, number>();
  let received = 0;
  const watcher = connect(node.url);
  watcher.subscribe(
    "sensor-averages",
    (m) => {
      const v = m.value as WindowAverage;
      const k = `${v.device}@${v.start}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
      received++;
    },
    { from: "earliest" },
  );

  const options = { url: node.url, applicationId: "crash-averages", input: "sensor-data", output: "sensor-averages", windowMs: WINDOW_MS, graceMs: GRACE_MS, sessionTimeoutMs: 1500 };
  let a: StreamsChild;
  let b: StreamsChild;
  let atKill: number;
  if (dieAt) {
    [a, b] = await Promise.all([spawnStreams({ ...options, dieAt: { step: dieAt, minEmitted: Math.floor(expected.size * 0.1) } }), spawnStreams(options)]);
    children.push(a, b);
    await within(a.exited, 90_000, `instance A to die at "${dieAt}"`);
    atKill = received;
    expect(a.output()).toContain(`dying at ${dieAt}`);
  } else {
    // A alone first (all partitions), then B joins (half of them move: a revoke), then A dies
    // once both flushed work since B joined.
    a = await spawnStreams(options);
    children.push(a);
    await waitFor(() => a.progress().emitted >= expected.size * 0.1, { what: "A's first 10% of the windows", timeoutMs: 90_000 });
    b = await spawnStreams(options);
    children.push(b);
    const second = [...records.slice(half), ...closers];
    const quarter = Math.ceil(second.length / 4);
    const before = a.progress().flushed;
    await produceTimed(http, "sensor-data", second.slice(0, quarter));
    await waitFor(() => b.progress().emitted > 0 && a.progress().flushed > before, { what: "B's first windows and A's progress after B joined", timeoutMs: 90_000 });
    atKill = received;
    await a.kill();
    // The rest arrives after the kill: A's partitions have work only B can now do.
    await produceTimed(http, "sensor-data", second.slice(quarter));
  }
  await waitFor(() => received >= expected.size, { what: `all ${expected.size} windows after the kill (got ${received}); survivor:\n${b.output()}`, timeoutMs: 90_000 });
  const survivor = await b.stop();
  await watcher.close();

  const got = new Map<string, { count: number; sum: number }>();
  const twice: string[] = [];
  for (const r of await readTopic(http, "sensor-averages")) {
    const v = JSON.parse(r.value!) as WindowAverage;
    const k = `${v.device}@${v.start}`;
    if (got.has(k)) twice.push(k);
    got.set(k, { count: v.count, sum: Math.round(v.sum * 10) / 10 });
  }
  process.stdout.write(`streams crash${dieAt ? ` (dies at ${dieAt})` : ""}: ${count} records, ${expected.size} windows, killed at ${atKill} outputs; survivor: ${JSON.stringify(survivor)}\n`);
  expect(twice).toEqual([]);
  expect([...seen].filter(([, n]) => n > 1)).toEqual([]);
  expect(got).toEqual(expected);
  return { survivor, atKill, windows: expected.size };
}
