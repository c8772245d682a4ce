/**
 * `npm run bench -- redis [--seconds N] [--batch B] [--concurrency C] [--size BYTES]`
 *
 * RedisLogEngine produce throughput (acks=1 and acks=all) against raw ioredis pipelined XADD
 * to the same servers in the same run, on a standalone primary (+1 replica, for WAIT) and on
 * a 3-primary/3-replica Redis Cluster. Same batch size, record size and concurrency on both
 * sides; raw acks=all is XADD × batch + WAIT 1 in one pipeline. Target: engine ≥ 60 % of raw.
 *
 * Then cross-node delivery latency: two `tributary start --engine redis` processes on one
 * standalone Redis; an SDK client publishes on node A at `--rate` records/s for `--seconds`,
 * SDK subscribers on node B (cross-node) and on node A (same node, for comparison) time
 * publish call → handler. `--latency-only 1` runs just this section.
 */
import { randomBytes } from "node:crypto";
import { Cluster, Redis } from "ioredis";
import { RedisLogEngine } from "../../server/src/log/redis/redis-log-engine.ts";
import { connect, State } from "@tributary/client";
import { percentile, spawnRedisNode, type NodeProcess } from "../helpers/cluster-nodes.ts";
import { startRedis, startRedisCluster, type RedisServer } from "../helpers/redis-harness.ts";

interface Params {
  seconds: number;
  batch: number;
  concurrency: number;
  size: number;
  partitions: number;
  rate: number;
  latencyOnly: number;
}

function parseArgs(args: string[]): Params {
  const p: Params = { seconds: 2, batch: 100, concurrency: 8, size: 100, partitions: 6, rate: 1000, latencyOnly: 0 };
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i]?.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof Params;
    if (k in p) p[k] = Number(args[i + 1]);
  }
  return p;
}

/** Runs `concurrency` loops of `op` for `seconds`; returns records per second. */
async function measure(p: Params, op: (worker: number, i: number) => Promise<void>): Promise<number> {
  const deadline = Date.now() + p.seconds * 1000;
  let batches = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: p.concurrency }, async (_, w) => {
      for (let i = 0; Date.now() < deadline; i++) {
        await op(w, i);
        batches++;
      }
    }),
  );
  return (batches * p.batch) / ((Date.now() - started) / 1000);
}

function row(label: string, engine: number, raw: number): string {
  const ratio = raw > 0 ? (100 * engine) / raw : 0;
  return `${label.padEnd(28)} engine ${Math.round(engine).toLocaleString("en").padStart(10)} rec/s   raw XADD ${Math.round(raw).toLocaleString("en").padStart(10)} rec/s   ${ratio.toFixed(0).padStart(4)} % ${ratio >= 60 ? "ok" : "BELOW 60 %"}`;
}

async function benchTarget(
  label: string,
  p: Params,
  engine: RedisLogEngine,
  raw: Redis | Cluster,
  rawKey: (partition: number) => string,
): Promise<string[]> {
  const value = randomBytes(p.size);
  const records = Array.from({ length: p.batch }, () => ({ key: null, value }));
  const topic = `bench-${Date.now().toString(36)}`;
  await engine.createTopic(topic, { partitions: p.partitions, retentionMs: null });
  const lines: string[] = [];
  for (const acks of [1, "all"] as const) {
    const eng = await measure(p, (w, i) => engine.append(topic, (w + i) % p.partitions, records, { acks }).then(() => undefined));
    const rawRate = await measure(p, async (w, i) => {
      const key = rawKey((w + i) % p.partitions);
      const pipe = raw.pipeline();
      for (let j = 0; j < p.batch; j++) pipe.xadd(key, "*", "t", "0", "v", value);
      if (acks === "all") pipe.call("WAIT", 1, 1000);
      await pipe.exec();
    });
    lines.push(row(`${label} acks=${acks}`, eng, rawRate));
  }
  return lines;
}

/** Publish on node A → deliver on node B (and on A), p50/p99 over `seconds` at `rate` records/s. */
async function benchCrossNodeLatency(p: Params): Promise<string[]> {
  const redis = await startRedis();
  const nodes: NodeProcess[] = [];
  const clients: ReturnType<typeof connect>[] = [];
  try {
    nodes.push(...(await Promise.all([0, 1].map(() => spawnRedisNode(redis.url, { defaultPartitions: 1 })))));
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const publisher = connect(a.wsUrl);
    const remote = connect(b.wsUrl);
    const local = connect(a.wsUrl);
    clients.push(publisher, remote, local);
    const sentAt = new Map<number, number>();
    const latency = { remote: [] as number[], local: [] as number[] };
    const topic = "latency";
    remote.subscribe<number>(topic, (m) => void latency.remote.push(performance.now() - sentAt.get(m.value)!), { from: "latest" });
    local.subscribe<number>(topic, (m) => void latency.local.push(performance.now() - sentAt.get(m.value)!), { from: "latest" });
    const deadline = Date.now() + 10_000;
    while (![publisher, remote, local].every((c) => c.state === State.Connected)) {
      if (Date.now() > deadline) throw new Error("SDK clients did not connect");
      await new Promise((r) => setTimeout(r, 10));
    }
    await publisher.publish(topic, -1); // topic created, tails at the live edge
    await new Promise((r) => setTimeout(r, 300));
    latency.remote.length = 0;
    latency.local.length = 0;
    const total = Math.round(p.rate * p.seconds);
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / p.rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      sentAt.set(i, performance.now());
      void publisher.publish(topic, i);
    }
    const drain = Date.now() + 5000;
    while ((latency.remote.length < total || latency.local.length < total) && Date.now() < drain) await new Promise((r) => setTimeout(r, 20));
    const fmt = (label: string, xs: number[]) => {
      const sorted = [...xs].sort((x, y) => x - y);
      return `${label.padEnd(36)} p50 ${percentile(sorted, 50).toFixed(2).padStart(7)} ms   p99 ${percentile(sorted, 99).toFixed(2).padStart(7)} ms   (${sorted.length}/${total} delivered)`;
    };
    return [
      `delivery latency, ${p.rate} rec/s for ${p.seconds} s, 2 node processes on one Redis (publish call → subscriber handler):`,
      fmt("  cross-node (publish on A, sub on B)", latency.remote),
      fmt("  same node (publish on A, sub on A)", latency.local),
    ];
  } finally {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.kill("SIGTERM")));
    await redis.destroy();
  }
}

export async function run(args: string[]): Promise<void> {
  const p = parseArgs(args);
  if (p.latencyOnly) {
    process.stdout.write(`${(await benchCrossNodeLatency(p)).join("\n")}\n`);
    return;
  }
  process.stdout.write(
    `batch ${p.batch} records of ${p.size} B, ${p.concurrency} concurrent producers, ${p.partitions} partitions, ${p.seconds} s per figure\n`,
  );
  const out: string[] = [];
  const servers: RedisServer[] = [];
  try {
    const primary = await startRedis();
    servers.push(primary);
    servers.push(await startRedis({ replicaOf: primary.port }));
    await new Promise((r) => setTimeout(r, 500)); // initial sync of an empty primary
    const engine = await RedisLogEngine.connect({ url: primary.url, keyPrefix: "bench", replicas: 1 });
    const raw = new Redis(primary.port, "127.0.0.1");
    out.push(...(await benchTarget("standalone (+1 replica)", p, engine, raw, (n) => `raw:{${n}}`)));
    raw.disconnect();
    await engine.close();
  } finally {
    await Promise.all(servers.map((s) => s.destroy()));
  }
  process.stdout.write(`${out.join("\n")}\n`);
  const cluster = await startRedisCluster();
  try {
    const engine = await RedisLogEngine.connect({ cluster: cluster.startupNodes, keyPrefix: "bench", replicas: 1 });
    const raw = new Cluster(cluster.startupNodes);
    await new Promise<void>((resolve) => raw.once("ready", () => resolve()));
    const lines = await benchTarget("cluster 3x(1+1)", p, engine, raw, (n) => `{bench:raw:${n}}:log`);
    process.stdout.write(`${lines.join("\n")}\n`);
    raw.disconnect();
    await engine.close();
  } finally {
    await cluster.destroy();
  }
  process.stdout.write(`${(await benchCrossNodeLatency(p)).join("\n")}\n`);
}
