/**
 * `npm run bench -- streams [--records 200000]`
 *
 * @tributary/streams throughput, one instance (this process) against a `tributary start`
 * node (another process, file engine, fsync never), loopback. The input (`--records`
 * keyed JSON readings over 4 partitions, 1000 keys) is produced before the clock starts;
 * the clock runs from `start()` to the flush that committed the last input record, so
 * every output, changelog and outbox record of the run is acknowledged in it.
 *
 * 1. map + filter: `mapValues` (°C → °F) + `filter` (keeps about half) → output topic.
 * 2. windowed aggregate: per key, tumbling 1-minute windows with 10 s grace, count/sum/avg
 *    → output topic (one result per closed window).
 * Baseline beside them: the same records consumed by a plain SDK consumer group (handler
 * does nothing, commit at the end): the ceiling of what any processing reads.
 */
import { performance } from "node:perf_hooks";
import { connect } from "@tributary/client";
import { StreamsBuilder, TributaryStreams, tumbling } from "@tributary/streams";
import { cpuSeconds, startTributary, type TributaryProc } from "./bench-process.ts";

const PARTITIONS = 4;
const KEYS = 1000;
/** `--batch n`: maxBatchRecords and credit of the instance (default the library's). */
let BATCH = 0;

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
  };
  const records = Number(opt("records", "200000"));
  BATCH = Number(opt("batch", "0"));
  const node = await startTributary();
  const http = `http://127.0.0.1:${node.httpPort}`;
  const url = `ws://127.0.0.1:${node.httpPort}`;
  try {
    await createTopic(http, "bench-in", PARTITIONS);
    await produce(http, records);
    process.stdout.write(`\n${records} records in "bench-in" (${PARTITIONS} partitions, ${KEYS} keys); one streams instance in this process, the node in another\n`);
    const baseline = await consumeOnly(node, url, records);
    line("group consume only (baseline)", records, baseline);

    const mf = new StreamsBuilder();
    mf.from<{ c: number }>("bench-in")
      .mapValues((r) => ({ f: r.c * 1.8 + 32 }))
      .filter((r) => r.f > 68)
      .to("bench-mapped");
    line("map + filter", records, await runStreams(node, url, http, mf, "bench-mf", records, "bench-mapped"));

    const wa = new StreamsBuilder();
    wa.from<{ c: number }>("bench-in")
      .groupByKey()
      .windowedBy(tumbling(60_000, { grace: 10_000 }))
      .aggregate(() => ({ n: 0, sum: 0 }), (_k, r, a) => ({ n: a.n + 1, sum: a.sum + r.c }))
      .toStream()
      .mapValues((a) => ({ n: a.n, avg: a.sum / a.n }))
      .to("bench-averages");
    line("windowed aggregate", records, await runStreams(node, url, http, wa, "bench-wa", records, "bench-averages"));
    process.stdout.write(`(this machine: ${(await import("node:os")).cpus().length} cores, shared by the node, this process and whatever else runs)\n`);
  } finally {
    await node.stop();
  }
}

interface Result {
  seconds: number;
  cpu: number;
  nodeCpu: number;
  outputs: number;
}

function line(label: string, records: number, r: Result): void {
  process.stdout.write(
    `${label.padEnd(32)} ${`${Math.round(records / r.seconds)} records/s`.padStart(18)}  (${r.seconds.toFixed(2)} s; ${r.outputs} outputs; CPU s: this process ${r.cpu.toFixed(1)}, node ${r.nodeCpu.toFixed(1)})\n`,
  );
}

async function runStreams(node: TributaryProc, url: string, http: string, builder: StreamsBuilder, applicationId: string, records: number, output: string): Promise<Result> {
  await createTopic(http, output, PARTITIONS);
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const app: TributaryStreams = new TributaryStreams(builder, {
    url,
    applicationId,
    ...(BATCH ? { maxBatchRecords: BATCH, credit: BATCH } : {}),
    onFlushStep: (step) => {
      const now = performance.now();
      steps[step] = (steps[step] ?? 0) + (now - last);
      last = now;
      if (step === "committed" && app.metrics().flushed >= records) done();
    },
  });
  const node0 = cpuSeconds(node.pid);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await app.start();
  // Time by flush step, each from the previous step's end ("start": the processing of the batch, from the last commit).
  const steps: Record<string, number> = {};
  let last = performance.now();
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const nodeCpu = cpuSeconds(node.pid) - node0;
  const outputs = app.metrics().emitted;
  const flushes = app.metrics().flushes;
  process.stdout.write(`  ${flushes} flushes; per flush, ms: processing ${((steps.start ?? 0) / flushes).toFixed(1)}, changelog ${((steps.changelog ?? 0) / flushes).toFixed(1)}, outbox ${((steps.outbox ?? 0) / flushes).toFixed(1)}, outputs ${((steps.outputs ?? 0) / flushes).toFixed(1)}, commit ${((steps.committed ?? 0) / flushes).toFixed(1)}\n`);
  await app.close();
  return { seconds, cpu: (cpu.user + cpu.system) / 1e6, nodeCpu, outputs };
}

async function consumeOnly(node: TributaryProc, url: string, records: number): Promise<Result> {
  const client = connect(url, { codec: "json" });
  let n = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const node0 = cpuSeconds(node.pid);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const sub = client.subscribe("bench-in", () => {
    if (++n === records) done();
  }, { group: "bench-baseline", reset: "earliest", autoCommit: false, credit: 2000 });
  await finished;
  await sub.commit();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const nodeCpu = cpuSeconds(node.pid) - node0;
  await client.close();
  return { seconds, cpu: (cpu.user + cpu.system) / 1e6, nodeCpu, outputs: 0 };
}

async function createTopic(http: string, name: string, partitions: number): Promise<void> {
  const res = await fetch(`${http}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, partitions }) });
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${await res.text()}`);
}

async function produce(http: string, records: number): Promise<void> {
  const t0 = 1_764_000_000_000;
  for (let i = 0; i < records; i += 5000) {
    const batch = [];
    for (let j = i; j < Math.min(records, i + 5000); j++) batch.push({ key: `k${j % KEYS}`, value: { c: (j * 7919) % 40 }, timestamp: t0 + j * 20 - ((j * 31) % 5000) });
    const res = await fetch(`${http}/topics/bench-in/records`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ records: batch }) });
    if (res.status !== 200) throw new Error(`produce: ${res.status} ${await res.text()}`);
  }
}
