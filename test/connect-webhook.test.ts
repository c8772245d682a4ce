/**
 * The webhook sink against a real HTTP server that fails 20% of requests (seeded, so a run
 * is reproducible) and verifies every request's HMAC-SHA256 signature: every record is
 * delivered, one that the server always refuses lands in the DLQ after the retry limit with
 * headers saying why, and the CLI pauses, resumes and restarts the connector.
 */
import { spawn } from "node:child_process";
import { createHmac, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnConnect, type ConnectChild, nodeApi } from "./helpers/connect-process.ts";
import { BIN, spawnFileNode, type NodeChild } from "./helpers/node-process.ts";
import { waitFor, within } from "./helpers/wait.ts";

const SECRET = "webhook-test-secret";
const MAX_RETRIES = 6;
let node: NodeChild;
let dir: string;
const children: ConnectChild[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "connect-webhook-"));
  node = await spawnFileNode();
});
afterAll(async () => {
  for (const c of children) await c.kill();
  for (const s of servers) await new Promise((r) => s.close(r));
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function http(method: string, path: string, body?: unknown): Promise<any> {
  return nodeApi(node.httpPort, method, path, body);
}

/** mulberry32: a small seeded PRNG, so the failing requests are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Receiver {
  url: string;
  delivered: Map<string, unknown>;
  requests: number;
  failed: number;
  badSignatures: number;
}

/** The receiver: checks the signature (401 when wrong), fails 20% of requests with 500, and always fails a batch holding a `poison` value. */
async function startReceiver(seed: number): Promise<Receiver> {
  const random = seeded(seed);
  const state: Receiver = { url: "", delivered: new Map(), requests: 0, failed: 0, badSignatures: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      state.requests++;
      const body = Buffer.concat(chunks).toString("utf8");
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers["x-tributary-signature"] ?? ""));
      const expected = m ? createHmac("sha256", SECRET).update(`${m[1]}.${body}`).digest() : null;
      if (!m || !timingSafeEqual(expected!, Buffer.from(m[2]!, "hex"))) {
        state.badSignatures++;
        res.writeHead(401).end("bad signature");
        return;
      }
      const records = JSON.parse(body) as Array<{ topic: string; partition: number; offset: number; value: { n?: number; poison?: boolean } }>;
      if (random() < 0.2 || records.some((r) => r.value.poison)) {
        state.failed++;
        res.writeHead(500).end("try again");
        return;
      }
      for (const r of records) state.delivered.set(`${r.topic}/${r.partition}@${r.offset}`, r.value);
      res.writeHead(204).end();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  return state;
}

function yaml(name: string, topic: string, url: string): string {
  return `connectors:
  - name: ${name}
    type: webhook-sink
    topics: [${topic}]
    url: ${url}
    secret: ${SECRET}
    batchSize: 50
    maxRetries: ${MAX_RETRIES}
    retryBackoffMs: 2
    maxRetryBackoffMs: 20
`;
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return within(new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr }))), 20_000, `tributary ${args.join(" ")}`);
}

describe("webhook sink", () => {
  for (const run of [1, 2, 3]) {
    it(`delivers every record through 20% failed requests with verified signatures, and dead-letters the one that always fails (run ${run})`, async () => {
      const topic = `hooks-${run}`;
      const name = `hook-${run}`;
      await http("POST", "/topics", { name: topic, partitions: 3 });
      const records = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i % 37}`, value: i === 500 ? { poison: true } : { n: i } }));
      const { offsets } = await http("POST", `/topics/${topic}/records`, { records, acks: "all" });
      const poison = offsets[500] as { partition: number; offset: number };
      const receiver = await startReceiver(1000 + run);

      const connect = await spawnConnect(join(dir, `${name}.yaml`), yaml(name, topic, receiver.url), `http://127.0.0.1:${node.httpPort}`);
      children.push(connect);
      await waitFor(() => receiver.delivered.size >= 999, { timeoutMs: 40_000, what: "999 records delivered" });
      // The poison record is dead-lettered once it failed 1 + maxRetries times.
      let dlq: any;
      await waitFor(
        async () => {
          dlq = await http("GET", `/topics/${name}.dlq/partitions/0/records?offset=earliest`);
          return dlq.records.length > 0;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: "the DLQ record" },
      );
      expect(dlq.records).toHaveLength(1);
      const dead = dlq.records[0];
      expect(JSON.parse(dead.value)).toEqual({ poison: true });
      expect(dead.headers).toMatchObject({
        "connect.connector": name,
        "connect.topic": topic,
        "connect.partition": String(poison.partition),
        "connect.offset": String(poison.offset),
        "connect.attempts": String(MAX_RETRIES + 1),
        "content-type": "application/json",
      });
      expect(dead.headers["connect.error"]).toContain("answered 500");

      // Every other record arrived (at least once), with the value produced; no request had a bad signature.
      const values = new Set([...receiver.delivered.values()].map((v) => (v as { n: number }).n));
      expect(values.size).toBe(999);
      for (let i = 0; i < 1000; i++) if (i !== 500) expect(values.has(i), `record ${i}`).toBe(true);
      expect(receiver.badSignatures).toBe(0);
      expect(receiver.failed).toBeGreaterThan(0.1 * receiver.requests);

      await waitFor(async () => (await http("GET", `/groups/connect.${name}`)).totalLag === 0, { timeoutMs: 20_000, what: "lag 0" });
      const metrics = await (await fetch(`${connect.apiUrl}/metrics`)).text();
      expect(metrics).toContain(`tributary_connect_dlq_records_total{connector="${name}"} 1`);
      expect(metrics).toMatch(new RegExp(`tributary_connect_failures_total\\{connector="${name}",kind="records"\\} [1-9]`));
      expect(metrics).toContain(`tributary_connect_state{connector="${name}",state="running"} 1`);
      expect(await connect.stop()).toBe(0);
    }, 90_000);
  }

  it("the CLI shows the status and pauses, resumes and restarts a connector; a request with a wrong signature is refused by the receiver", async () => {
    const topic = "hooks-cli";
    await http("POST", "/topics", { name: topic, partitions: 1 });
    const receiver = await startReceiver(7);
    const connect = await spawnConnect(join(dir, "cli.yaml"), yaml("hook-cli", topic, receiver.url), `http://127.0.0.1:${node.httpPort}`);
    children.push(connect);
    const at = ["--connect-url", connect.apiUrl];

    const status = await cli(["connect", "status", ...at]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/hook-cli\s+webhook-sink\s+running\s+hooks-cli/);

    const paused = await cli(["connect", "pause", "hook-cli", "--json", ...at]);
    expect(paused.code, paused.stderr).toBe(0);
    expect(JSON.parse(paused.stdout)).toMatchObject({ name: "hook-cli", state: "paused" });
    await http("POST", `/topics/${topic}/records`, { records: [{ value: { n: 1 } }, { value: { n: 2 } }] });
    const resumed = await cli(["connect", "resume", "hook-cli", "--json", ...at]);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ state: "running" });
    await waitFor(() => receiver.delivered.size === 2, { timeoutMs: 20_000, what: "the records produced while paused" });

    const restarted = await cli(["connect", "restart", "hook-cli", "--json", ...at]);
    expect(JSON.parse(restarted.stdout)).toMatchObject({ state: "running" });
    await http("POST", `/topics/${topic}/records`, { value: { n: 3 } });
    await waitFor(() => receiver.delivered.size === 3, { timeoutMs: 20_000, what: "a record after the restart" });

    const unknown = await cli(["connect", "pause", "nope", ...at]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('no connector named "nope"');
    // A config mistake is a usage error naming the connector, the field and what to write.
    writeFileSync(join(dir, "bad.yaml"), "connectors:\n  - name: typo\n    type: webhook-sink\n    topics: [a]\n    url: http://127.0.0.1:1/x\n    batchsize: 10\n");
    const bad = await cli(["connect", "--config", join(dir, "bad.yaml"), "--url", `http://127.0.0.1:${node.httpPort}`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('connector "typo" (webhook-sink): "batchsize": unknown field (known: ');
    expect(bad.stderr).toContain("[INVALID_CONFIG]");
    const unreachable = await cli(["connect", "status", "--connect-url", "http://127.0.0.1:1"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("cannot reach the connect process");

    // The receiver really checks: a request signed with another secret is refused.
    const body = "[]";
    const t = Date.now();
    const forged = await fetch(receiver.url, { method: "POST", body, headers: { "x-tributary-signature": `t=${t},v1=${createHmac("sha256", "other").update(`${t}.${body}`).digest("hex")}` } });
    expect(forged.status).toBe(401);
    expect(await connect.stop()).toBe(0);
  }, 60_000);
});
