/**
 * `npm run bench -- groups [--members 10,50,200] [--records 300000]`
 *
 * Consumer groups on one node (file engine, fsync never), loopback:
 *
 * 1. Rebalance time: N SDK members (one process, one WebSocket each) join one group on a
 *    240-partition topic at once; time from the first `subscribe` to every partition owned
 *    and every member holding its assignment (join to all-assigned), with the number of
 *    generations it took. Then one more member joins the stable group: time to its
 *    assignment (an incremental cooperative rebalance).
 * 2. Throughput: a 6-partition topic, `--records` records produced as fast as the broker
 *    takes them, consumed by a group of 1 vs a group of 3 members, each member a separate
 *    process (test/fixtures/group-consumer.ts, which prints every record as a JSON line:
 *    that is the "processing"). Time from the first produce to the last record processed.
 *
 * Bounded: well under 2 minutes with the defaults.
 */
import { performance } from "node:perf_hooks";
import { connect, type TributaryClient } from "@tributary/client";
import { ConsumerProcess, waitFor } from "../helpers/group-consumer-proc.ts";
import { KeyedProducer, describeGroup } from "../helpers/groups.ts";
import { startSdkTestNode, type SdkTestNode } from "../helpers/sdk-node.ts";

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
  };
  const sizes = opt("members", "10,50,200").split(",").map(Number);
  const records = Number(opt("records", "300000"));
  const node = await startSdkTestNode();
  try {
    await rebalance(node, 3); // warm-up (JIT, WebSocket module), not reported
    process.stdout.write(`\nrebalance (240 partitions, cooperative-sticky)\n${"members".padStart(8)} ${"join→all-assigned".padStart(18)} ${"generations".padStart(12)} ${"+1 member".padStart(10)}\n`);
    for (const n of sizes) {
      const r = await rebalance(node, n);
      process.stdout.write(`${String(n).padStart(8)} ${`${r.allAssignedMs.toFixed(0)} ms`.padStart(18)} ${String(r.generations).padStart(12)} ${`${r.plusOneMs.toFixed(0)} ms`.padStart(10)}\n`);
    }
    process.stdout.write(`\nthroughput (6 partitions, ${records} records, members in separate processes)\n`);
    const single = await throughput(node, 1, records);
    const three = await throughput(node, 3, records);
    for (const [label, r] of [
      ["group of 1", single],
      ["group of 3", three],
    ] as const) {
      process.stdout.write(`${label.padEnd(12)} ${`${Math.round(r.perSecond)} records/s`.padStart(18)}  (${r.seconds.toFixed(2)} s, ${r.processed} processed)\n`);
    }
    process.stdout.write(`group of 3 / group of 1: ${(three.perSecond / single.perSecond).toFixed(2)}x (this machine: ${(await import("node:os")).cpus().length} cores shared by node, producer and consumers)\n`);
  } finally {
    await node.close();
  }
}

async function rebalance(node: SdkTestNode, n: number): Promise<{ allAssignedMs: number; generations: number; plusOneMs: number }> {
  const topic = `rb-${n}`;
  const group = `rb-${n}`;
  await node.node.broker.createTopic(topic, { partitions: 240 });
  const clients: TributaryClient[] = [];
  const owned = new Map<number, number>(); // member index → partitions held
  try {
    const started = performance.now();
    for (let i = 0; i < n; i++) {
      const client = connect(node.url, { clientId: `m${i}` });
      clients.push(client);
      const sub = client.subscribe(topic, () => undefined, { group, autoCommit: false, presence: false });
      sub.on("assigned", (e) => owned.set(i, e.partitions.length));
    }
    const settled = async () => {
      if ([...owned.values()].reduce((a, b) => a + b, 0) !== 240 || owned.size < n) return false;
      const d = await describeGroup(node.node, group);
      return d.state === "Stable" && d.members.length === n && d.partitions.every((p) => p.owner !== null);
    };
    await waitFor(settled, `${n} members assigned`, 90_000);
    const allAssignedMs = performance.now() - started;
    const generations = (await describeGroup(node.node, group)).generation;
    const t = performance.now();
    const extra = connect(node.url, { clientId: `m${n}` });
    clients.push(extra);
    let extraOwns = 0;
    extra.subscribe(topic, () => undefined, { group, autoCommit: false, presence: false }).on("assigned", (e) => (extraOwns = e.partitions.length));
    await waitFor(() => extraOwns > 0, "the extra member assigned", 30_000);
    const plusOneMs = performance.now() - t;
    return { allAssignedMs, generations, plusOneMs };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

async function throughput(node: SdkTestNode, members: number, records: number): Promise<{ perSecond: number; seconds: number; processed: number }> {
  const topic = `tp-${members}`;
  await node.node.broker.createTopic(topic, { partitions: 6 });
  const procs = Array.from({ length: members }, (_, i) => new ConsumerProcess({ url: node.url, topic, group: `tp-${members}`, clientId: `t${members}-${i}`, autoCommitIntervalMs: 1000, reset: "earliest" }));
  try {
    await waitFor(() => procs.reduce((n, p) => n + p.partitions.length, 0) === 6 && procs.every((p) => p.partitions.length > 0), "assigned", 60_000);
    const producer = new KeyedProducer(node.node, topic, 600);
    const started = performance.now();
    await producer.produce(records, 2000);
    await waitFor(() => procs.reduce((n, p) => n + p.records.length, 0) >= records, "all processed", 90_000);
    const seconds = (performance.now() - started) / 1000;
    return { perSecond: records / seconds, seconds, processed: procs.reduce((n, p) => n + p.records.length, 0) };
  } finally {
    for (const p of procs) p.kill();
    await Promise.all(procs.map((p) => p.exited));
  }
}
