/**
 * The PostgreSQL sink against a real `postgres` (Debian's postgresql 15, started here on a
 * free port in a temp dir), through the compiled `tributary connect` process and a node
 * process: 100,000 records, the connect process SIGKILLed twice while it writes (on row
 * counts), the group rewound to the start once in between (every row written comes again),
 * and the table ends with each record exactly once.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnConnect, type ConnectChild, nodeApi } from "./helpers/connect-process.ts";
import { spawnFileNode, type NodeChild } from "./helpers/node-process.ts";
import { startPostgres, type PgServer } from "./helpers/postgres.ts";
import { retryUntilOk, waitFor } from "./helpers/wait.ts";

const TOTAL = 100_000;
let node: NodeChild;
let pgServer: PgServer;
let dir: string;
const children: ConnectChild[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "connect-pg-"));
  [node, pgServer] = await Promise.all([spawnFileNode(), startPostgres()]);
});
afterAll(async () => {
  for (const c of children) await c.kill();
  await node?.stop();
  await pgServer?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function http(method: string, path: string, body?: unknown): Promise<any> {
  return nodeApi(node.httpPort, method, path, body);
}

async function produce(topic: string, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += 5000) {
    const records = [];
    for (let i = start; i < Math.min(to, start + 5000); i++) {
      // Every 1000th record carries what COPY's text format must escape (tab, newline, backslash) and non-ASCII text.
      if (i % 1000 === 7) records.push({ key: `odd\tkey\\${i}`, value: { n: i, note: "tab\there\nnew line \\ back \u00e9\u2713" } });
      else records.push({ key: `device-${i % 500}`, value: { n: i, temp: (i % 300) / 10 } });
    }
    await http("POST", `/topics/${topic}/records`, { records });
  }
}

async function rowCount(table: string): Promise<number> {
  const rows = await pgServer.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`).catch((err: { code?: string }) => {
    if (err.code === "42P01") return [{ n: "0" }]; // the sink has not created the table yet
    throw err;
  });
  return Number(rows[0]!.n);
}

function yaml(name: string, topic: string, table: string): string {
  return [
    "connectors:",
    `  - name: ${name}`,
    "    type: postgres-sink",
    `    topics: [${topic}]`,
    `    connection: ${pgServer.url}`,
    `    table: ${table}`,
    "    batchSize: 2000",
    "",
  ].join("\n");
}

describe("PostgreSQL sink, exactly-once by (topic, partition, offset)", () => {
  for (const run of [1, 2, 3]) {
    it(`writes 100,000 records exactly once although the connect process is SIGKILLed twice mid-way (run ${run})`, async () => {
      const topic = `orders-${run}`;
      const table = `orders_${run}`;
      await http("POST", "/topics", { name: topic, partitions: 4 });
      await produce(topic, 0, TOTAL);
      const config = join(dir, `pg-${run}.yaml`);

      const first = await spawnConnect(config, yaml(`pg-${run}`, topic, table), `http://127.0.0.1:${node.httpPort}`);
      children.push(first);
      await waitFor(async () => (await rowCount(table)) >= 20_000, { timeoutMs: 40_000, intervalMs: 20, what: "20,000 rows" });
      await first.kill();
      const afterFirst = await rowCount(table);
      expect(afterFirst).toBeLessThan(TOTAL); // killed mid-way
      // The sink commits right after each write, so a kill leaves few written-but-uncommitted rows,
      // often none: rewind the group (as lost commits would) so that every row written comes again.
      const rewound = await retryUntilOk(() => http("POST", `/groups/connect.pg-${run}/reset-offsets`, { topic, to: "earliest" }), {
        timeoutMs: 20_000,
        what: "the killed member to leave the group (session timeout) and the rewind",
        retryIf: (err) => String(err).includes("GROUP_NOT_EMPTY"),
      });
      expect(rewound.partitions.reduce((n: number, p: { previous: number | null }) => n + (p.previous ?? 0), 0)).toBeLessThanOrEqual(afterFirst); // nothing committed past a row

      const second = await spawnConnect(config, yaml(`pg-${run}`, topic, table), `http://127.0.0.1:${node.httpPort}`);
      children.push(second);
      await waitFor(async () => (await rowCount(table)) >= afterFirst + 25_000, { timeoutMs: 40_000, intervalMs: 20, what: `${afterFirst + 25_000} rows` });
      await second.kill();
      // The rows the first process wrote came again, and were skipped.
      expect(second.stderr()).toContain("connect.postgres.redelivered_batch");
      const afterSecond = await rowCount(table);
      expect(afterSecond).toBeLessThan(TOTAL);

      const third = await spawnConnect(config, yaml(`pg-${run}`, topic, table), `http://127.0.0.1:${node.httpPort}`);
      children.push(third);
      await waitFor(async () => (await rowCount(table)) >= TOTAL, { timeoutMs: 50_000, intervalMs: 50, what: "100,000 rows" });
      // Everything consumed and committed: the group's lag drops to 0 (no record left behind).
      await waitFor(async () => (await http("GET", `/groups/connect.pg-${run}`)).totalLag === 0, { timeoutMs: 20_000, what: "the connector group's lag to reach 0" });
      expect(await third.stop()).toBe(0);

      const [stats] = await pgServer.query<{ rows: string; positions: string; values: string; min: string; max: string }>(
        `SELECT count(*) AS rows, count(DISTINCT (src_partition, src_offset)) AS positions, count(DISTINCT (value->>'n')) AS values,
                min((value->>'n')::int) AS min, max((value->>'n')::int) AS max FROM ${table}`,
      );
      expect(stats).toEqual({ rows: String(TOTAL), positions: String(TOTAL), values: String(TOTAL), min: 0, max: TOTAL - 1 });
      // Rows carry the record: key and topic as produced.
      const [row] = await pgServer.query(`SELECT src_topic, src_key, value FROM ${table} WHERE value->>'n' = '777'`);
      expect(row).toEqual({ src_topic: topic, src_key: "device-277", value: { n: 777, temp: 17.7 } });
      const odd = await pgServer.query(`SELECT src_key, value FROM ${table} WHERE value->>'n' = '99007'`);
      expect(odd).toEqual([{ src_key: "odd\tkey\\99007", value: { n: 99007, note: "tab\there\nnew line \\ back \u00e9\u2713" } }]);
    }, 150_000);
  }

  for (const run of [1, 2, 3]) {
    it(`waits out a PostgreSQL outage without dead-lettering, maps JSON fields to typed columns, and dead-letters the value that is not JSON at once (run ${run})`, async () => {
      const topic = `readings-${run}`;
      const table = `readings_${run}`;
      const name = `pg-columns-${run}`;
      await pgServer.query(`CREATE TABLE ${table} (src_topic text NOT NULL, src_partition integer NOT NULL, src_offset bigint NOT NULL, src_key text, src_timestamp timestamptz NOT NULL,
        device text, temp numeric, seen boolean, PRIMARY KEY (src_topic, src_partition, src_offset))`);
      await http("POST", "/topics", { name: topic, partitions: 2 });
      const N = 10_000;
      const records: Array<{ key: string; value: unknown }> = [];
      for (let i = 0; i < N; i++) records.push({ key: `d${i % 20}`, value: { device: `d${i % 20}`, temp: i / 100, seen: i % 2 === 0, extra: "ignored" } });
      records.splice(4321, 0, { key: "bad", value: "not json at all" });
      for (let i = 0; i < records.length; i += 2000) await http("POST", `/topics/${topic}/records`, { records: records.slice(i, i + 2000) });
      const connect = await spawnConnect(
        join(dir, `${name}.yaml`),
        `connectors:
  - name: ${name}
    type: postgres-sink
    topics: [${topic}]
    connection: ${pgServer.url}
    mode: columns
    table: ${table}
    columns: { device: device, temp: temp, seen: seen }
    batchSize: 500
    retryBackoffMs: 20
    maxRetryBackoffMs: 300
`,
        `http://127.0.0.1:${node.httpPort}`,
      );
      children.push(connect);
      await waitFor(async () => (await rowCount(table)) >= 1500, { timeoutMs: 30_000, intervalMs: 10, what: "1500 rows" });
      await pgServer.down();
      const status = async () => (await (await fetch(`${connect.apiUrl}/connectors/${name}`)).json()) as { state: string; error: string | null };
      await waitFor(async () => /PostgreSQL/.test((await status()).error ?? ""), { timeoutMs: 20_000, what: "the sink to report the outage" });
      expect((await status()).state).toBe("running");
      await pgServer.up();
      await waitFor(async () => (await rowCount(table)) >= N, { timeoutMs: 40_000, intervalMs: 50, what: `${N} rows after the outage` });
      await waitFor(async () => (await http("GET", `/groups/connect.${name}`)).totalLag === 0, { timeoutMs: 20_000, what: "lag 0" });

      const [stats] = await pgServer.query<{ rows: string; devices: string; temps: string; seen: string }>(
        `SELECT count(*) AS rows, count(DISTINCT device) AS devices, count(DISTINCT temp) AS temps, count(*) FILTER (WHERE seen) AS seen FROM ${table}`,
      );
      expect(stats).toEqual({ rows: String(N), devices: "20", temps: String(N), seen: String(N / 2) });
      const [one] = await pgServer.query(`SELECT device, temp::text AS temp, seen FROM ${table} WHERE temp = 12.34`);
      expect(one).toEqual({ device: "d14", temp: "12.34", seen: true });
      // Only the value that is not JSON is in the DLQ, after one attempt (retrying cannot fix it).
      const dlq = await http("GET", `/topics/${name}.dlq/partitions/0/records?offset=earliest`);
      expect(dlq.records).toHaveLength(1);
      expect(dlq.records[0]).toMatchObject({ key: "bad", value: "not json at all", headers: { "connect.attempts": "1", "connect.topic": topic } });
      expect(dlq.records[0].headers["connect.error"]).toContain("is not JSON");
      const metrics = await (await fetch(`${connect.apiUrl}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`tributary_connect_failures_total\\{connector="${name}",kind="target"\\} [1-9]`));
      expect(metrics).toContain(`tributary_connect_dlq_records_total{connector="${name}"} 1`);
      expect(await connect.stop()).toBe(0);
    }, 90_000);
  }
});
