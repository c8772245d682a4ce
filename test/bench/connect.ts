/**
 * `npm run bench -- connect [--records 200000] [--batch 4000] [--reps 3]`: the PostgreSQL sink's rows/s
 * (records already in a topic → table, through `tributary connect`: the SDK consumer group,
 * a COPY transaction per batch, group commits after it) against `COPY` of the same rows into
 * the same server (psql \copy from a CSV file, one transaction into an identical table with
 * the same primary key), alternating, `--reps` times; the median ratio is the figure.
 * Target: the sink at ≥ 50% of COPY.
 *
 * The sink's end is seen by probing, on one connection kept open, every 20 ms: for the last
 * record of each partition (cheap index lookups), then, once they are all there, the row
 * count until it is complete (the sink may have two transactions in flight, so an earlier
 * batch can commit just after the last one). A `count(*)` on a fresh connection every 20 ms,
 * as before, cost PostgreSQL a backend start and a scan of the growing table each time, on
 * the cores the sink needs. The rows themselves are checked against COPY's after.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { startPostgres } from "../helpers/postgres.ts";
import { cpuSeconds, startTributary, waitForLine } from "./bench-process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const run = promisify(execFile);

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

function csvField(s: string | null): string {
  return s === null ? "" : `"${s.replace(/"/g, '""')}"`;
}

export async function run_(args: string[]): Promise<void> {
  const N = arg(args, "--records", 200_000);
  const batch = arg(args, "--batch", 4000);
  const reps = arg(args, "--reps", 3);
  const dir = mkdtempSync(join(tmpdir(), "bench-connect-"));
  const [node, db] = await Promise.all([startTributary(), startPostgres()]);
  try {
    const base = `http://127.0.0.1:${node.httpPort}`;
    await fetch(`${base}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "bench", partitions: 4 }) });
    // Produce N records; keep where each landed for the COPY baseline's identical rows.
    const rows: string[] = [];
    const lastOffset = new Map<number, number>();
    for (let start = 0; start < N; start += 5000) {
      const records: Array<{ key: string; value: unknown }> = [];
      for (let i = start; i < Math.min(N, start + 5000); i++) records.push({ key: `device-${i % 1000}`, value: { n: i, temp: (i % 300) / 10, site: "bench", ok: i % 2 === 0 } });
      const at = new Date().toISOString();
      const res = await fetch(`${base}/topics/bench/records`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ records }) });
      const { offsets } = (await res.json()) as { offsets: Array<{ partition: number; offset: number }> };
      for (const o of offsets) lastOffset.set(o.partition, Math.max(o.offset, lastOffset.get(o.partition) ?? -1));
      offsets.forEach((o, j) => rows.push([csvField("bench"), o.partition, o.offset, csvField(records[j]!.key), at, csvField(JSON.stringify(records[j]!.value))].join(",")));
    }
    const csv = join(dir, "rows.csv");
    writeFileSync(csv, rows.join("\n") + "\n");
    const schema = (t: string) => `CREATE TABLE ${t} (src_topic text NOT NULL, src_partition integer NOT NULL, src_offset bigint NOT NULL, src_key text, src_timestamp timestamptz NOT NULL, value jsonb, PRIMARY KEY (src_topic, src_partition, src_offset))`;
    process.stdout.write(`records            ${N} (4 partitions, ~70-byte JSON values, jsonb column, primary key (topic, partition, offset)); batch ${batch}; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs\n`);
    const ratios: number[] = [];
    const probe = new pg.Client({ connectionString: db.url, application_name: "bench-probe" });
    await probe.connect();
    const lasts = [...lastOffset].map(([p, o]) => `('bench', ${p}, ${o})`).join(", ");
    for (let rep = 1; rep <= reps; rep++) {
      await db.query(schema(`copy_rows_${rep}`));
      await db.query(schema(`sink_rows_${rep}`));

      // Baseline: COPY of the same rows (client-side \copy: the rows travel over a connection like the sink's).
      const t0 = performance.now();
      await run("/usr/lib/postgresql/15/bin/psql", [db.url, "-v", "ON_ERROR_STOP=1", "-c", `\\copy copy_rows_${rep} FROM '${csv}' WITH (FORMAT csv)`]);
      const copyMs = performance.now() - t0;
      const copied = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM copy_rows_${rep}`))[0]!.n);
      if (copied !== N) throw new Error(`COPY wrote ${copied} rows, expected ${N}`);

      // The sink (a new connector, so a new group from the earliest offset): from its start to the last row in the table.
      const name = `bench-pg-${rep}`;
      const config = join(dir, `connectors-${rep}.yaml`);
      writeFileSync(config, `connectors:\n  - name: ${name}\n    type: postgres-sink\n    topics: [bench]\n    connection: ${db.url}\n    table: sink_rows_${rep}\n    createTable: false\n    batchSize: ${batch}\n`);
      const t1 = performance.now();
      const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []), join(ROOT, "server/bin/tributary.mjs"), "connect", "--config", config, "--url", base, "--listen", "127.0.0.1:0", "--log-level", "warn"], { stdio: ["ignore", "pipe", "inherit"] });
      const exited = new Promise((r) => child.once("exit", r));
      let sinkMs: number, startupMs: number, connectCpu: number, nodeCpu: number, pgCpu: number, writes: number, writeSeconds: number;
      try {
        const apiUrl = (await waitForLine(child, /tributary connect listening (\S+)/, "tributary connect"))[1]!;
        startupMs = performance.now() - t1;
        const t2 = performance.now();
        const cpu0 = cpuSeconds(child.pid!);
        const nodeCpu0 = cpuSeconds(node.pid);
        const deadline = Date.now() + 300_000;
        const within = () => {
          if (Date.now() > deadline) throw new Error(`the sink did not write all ${N} rows in 300 s`);
          // A poll, not an event: PostgreSQL has none for "rows arrived" short of a trigger, which would slow the sink being measured.
          return new Promise((r) => setTimeout(r, 20));
        };
        // Every partition's last record, then (writes may commit out of order: two transactions at once) the count.
        while (Number((await probe.query<{ n: string }>(`SELECT count(*) AS n FROM sink_rows_${rep} WHERE (src_topic, src_partition, src_offset) IN (${lasts})`)).rows[0]!.n) < lastOffset.size) await within();
        while (Number((await probe.query<{ n: string }>(`SELECT count(*) AS n FROM sink_rows_${rep}`)).rows[0]!.n) < N) await within();
        sinkMs = performance.now() - t2;
        connectCpu = cpuSeconds(child.pid!) - cpu0;
        nodeCpu = cpuSeconds(node.pid) - nodeCpu0;
        // The sink's PostgreSQL backends (its pool keeps its connections for its life): their CPU since they started.
        const backends = (await probe.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [`tributary-connect:${name}`])).rows;
        pgCpu = backends.length === 0 ? Number.NaN : backends.reduce((sum, b) => sum + cpuSeconds(b.pid), 0);
        const metrics = await (await fetch(`${apiUrl}/metrics`)).text();
        const metric = (m: string) => Number(new RegExp(`^${m}\\{connector="${name}"\\} (\\S+)`, "m").exec(metrics)?.[1] ?? NaN);
        writes = metric("tributary_connect_batch_seconds_count");
        writeSeconds = metric("tributary_connect_batch_seconds_sum");
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        await exited;
      }
      const count = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM sink_rows_${rep}`))[0]!.n);
      if (count !== N) throw new Error(`the sink wrote ${count} rows, expected ${N}`);
      const same = await db.query<{ n: string }>(`SELECT count(*) AS n FROM sink_rows_${rep} s JOIN copy_rows_${rep} c USING (src_topic, src_partition, src_offset) WHERE s.value = c.value AND s.src_key = c.src_key`);
      if (Number(same[0]!.n) !== N) throw new Error(`the sink's rows differ from COPY's: ${same[0]!.n} of ${N} match`);

      const copyRate = N / (copyMs / 1000);
      const sinkRate = N / (sinkMs / 1000);
      ratios.push(sinkRate / copyRate);
      process.stdout.write(`rep ${rep}: COPY ${Math.round(copyRate).toLocaleString("en")} rows/s (${copyMs.toFixed(0)} ms) | postgres-sink ${Math.round(sinkRate).toLocaleString("en")} rows/s (${sinkMs.toFixed(0)} ms from the connector's start; start-up ${startupMs.toFixed(0)} ms before; CPU: connect ${connectCpu.toFixed(1)} s, node ${nodeCpu.toFixed(1)} s, its postgres backends ${pgCpu.toFixed(1)} s; ${writes} writes of ${(N / writes).toFixed(0)} rows, ${((writeSeconds / writes) * 1000).toFixed(0)} ms each) | ${((sinkRate / copyRate) * 100).toFixed(0)}%\n`);
    }
    await probe.end();
    ratios.sort((a, b) => a - b);
    process.stdout.write(`ratio              median ${(ratios[Math.floor(ratios.length / 2)]! * 100).toFixed(0)}% of COPY over ${reps} reps (min ${(ratios[0]! * 100).toFixed(0)}%, max ${(ratios.at(-1)! * 100).toFixed(0)}%; target >= 50%)\n`);
  } finally {
    await node.stop();
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export { run_ as run };
