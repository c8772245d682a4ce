/**
 * `npm run bench -- <name> [args]`: runs one benchmark (or all, in order) and prints its
 * figures beside the ceiling or baseline it is compared with, measured in the same run.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const BENCHES: Record<string, string> = {
  log: "FileLogEngine appends (acks=1, acks=all group commit) and reads vs the disk (fio)",
  ws: "WebSocket fan-out 1 → N subscribers vs a bare uWebSockets.js server",
  mqtt: "MQTT QoS 0/1 fan-out vs Mosquitto 2.0 and Aedes",
  redis: "RedisLogEngine produce vs raw pipelined XADD; cross-node delivery latency p50/p99",
  groups: "consumer-group rebalance time and group throughput",
  connections: "idle WS + MQTT connections one node holds: RSS per connection, delivery p99 among them, vs Mosquitto",
  auth: "MQTT connects/s with JWT and argon2 vs anonymous; MQTT/WS publish with permission checks vs open mode",
  startup: "node start-up, compiled vs tsx sources: exec → listening line, idle RSS, --help",
  dashboards: "the README's monitoring pictures: a real workload scraped by Prometheus, every dashboard panel drawn from query_range to docs/img/*.png",
  compaction: "log compaction: 1M writes over 1000 keys (file, and Redis at 200k), node restart with 100k retained 1 KB messages compacted vs not",
  connect: "PostgreSQL sink rows/s (topic → table through tributary connect, exactly-once upserts) vs COPY of the same rows",
  streams: "streams records/s, one instance: map + filter and a windowed aggregate (outputs, changelog and outbox acknowledged, offsets committed) vs a plain group consumer",
};

function usage(): string {
  const lines = Object.entries(BENCHES).map(([name, what]) => `  ${name.padEnd(8)} ${what}`);
  return `usage: npm run bench -- <name|all> [args]\n\nbenchmarks:\n${lines.join("\n")}\n`;
}

const [name, ...args] = process.argv.slice(2);
if (!name || name === "--help" || name === "-h") {
  process.stdout.write(usage());
  process.exit(name ? 0 : 2);
}
const names = name === "all" ? Object.keys(BENCHES) : [name];
for (const bench of names) {
  if (!(bench in BENCHES)) {
    process.stderr.write(`unknown benchmark "${bench}"\n\n${usage()}`);
    process.exit(2);
  }
  const file = fileURLToPath(new URL(`./${bench}.ts`, import.meta.url));
  if (!existsSync(file)) {
    process.stderr.write(`benchmark "${bench}" is not written yet (${file})\n`);
    if (name !== "all") process.exit(2);
    continue;
  }
  process.stdout.write(`\n== bench ${bench}: ${BENCHES[bench]} ==\n`);
  const mod = (await import(file)) as { run(args: string[]): Promise<void> };
  await mod.run(args);
}
process.exit(0);
