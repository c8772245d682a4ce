/**
 * NDJSON file source and sink, round trip through a topic: a file read line by line comes
 * out line for line; appended lines follow; after a clean stop the source resumes at the
 * position it saved in the compacted `connect-offsets` topic (nothing read twice).
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnConnect, type ConnectChild, nodeApi } from "./helpers/connect-process.ts";
import { spawnFileNode, type NodeChild } from "./helpers/node-process.ts";
import { waitFor } from "./helpers/wait.ts";

let node: NodeChild;
let dir: string;
const children: ConnectChild[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "connect-ndjson-"));
  node = await spawnFileNode();
});
afterAll(async () => {
  for (const c of children) await c.kill();
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function http(method: string, path: string, body?: unknown): Promise<any> {
  return nodeApi(node.httpPort, method, path, body);
}

function lines(from: number, to: number): string {
  let out = "";
  for (let i = from; i < to; i++) out += JSON.stringify({ id: `sensor-${i % 7}`, i, reading: { t: i / 10, ok: i % 3 === 0 }, note: i % 11 === 0 ? "ünïcödé \u2713" : null }) + "\n";
  return out;
}

function outputLines(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split("\n").filter(Boolean);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

describe("NDJSON file source and sink", () => {
  for (const run of [1, 2, 3]) {
    it(`round-trips a file through a topic line for line, follows appends, and resumes at the saved position after a restart (run ${run})`, async () => {
      const input = join(dir, `in-${run}.ndjson`);
      const output = join(dir, `out-${run}.ndjson`);
      const topic = `files-${run}`;
      writeFileSync(input, lines(0, 2000) + "\n"); // a blank line is skipped
      await http("POST", "/topics", { name: topic, partitions: 1 });
      const yaml = `connectors:
  - name: file-in-${run}
    type: ndjson-source
    path: ${input}
    topic: ${topic}
    keyField: id
    batchSize: 300
  - name: file-out-${run}
    type: ndjson-sink
    topics: [${topic}]
    path: ${output}
    format: value
`;
      const config = join(dir, `ndjson-${run}.yaml`);
      const first = await spawnConnect(config, yaml, `http://127.0.0.1:${node.httpPort}`);
      children.push(first);
      await waitFor(() => outputLines(output).length >= 2000, { timeoutMs: 30_000, what: "2000 lines in the output" });
      appendFileSync(input, lines(2000, 2100));
      await waitFor(() => outputLines(output).length >= 2100, { timeoutMs: 30_000, what: "the appended lines" });
      await waitFor(async () => (await http("GET", `/groups/connect.file-out-${run}`)).totalLag === 0, { timeoutMs: 20_000, what: "the sink's lag to reach 0" });
      expect(await first.stop()).toBe(0);

      // Written while the connect process is down: read from the saved position, not from the start.
      appendFileSync(input, lines(2100, 2500));
      const second = await spawnConnect(config, yaml, `http://127.0.0.1:${node.httpPort}`);
      children.push(second);
      await waitFor(() => outputLines(output).length >= 2500, { timeoutMs: 30_000, what: "2500 lines in the output" });
      await waitFor(async () => (await http("GET", `/groups/connect.file-out-${run}`)).totalLag === 0, { timeoutMs: 20_000, what: "the sink's lag to reach 0" });
      expect(await second.stop()).toBe(0);
      expect(outputLines(output)).toEqual(lines(0, 2500).split("\n").filter(Boolean));

      // Keys from keyField; the source's position is in the compacted offsets topic.
      const first10 = await http("GET", `/topics/${topic}/partitions/0/records?offset=0&max=10`);
      expect(first10.records.map((r: { key: string }) => r.key)).toEqual(Array.from({ length: 10 }, (_, i) => `sensor-${i % 7}`));
      expect(first10.records[0].headers["content-type"]).toBe("application/json");
      const offsetsTopic = await http("GET", "/topics/connect-offsets");
      expect(offsetsTopic.cleanupPolicy).toBe("compact");
      const saved = await http("GET", `/topics/connect-offsets/partitions/0/records?offset=0&max=10000`);
      const mine = saved.records.filter((r: { key: string }) => r.key === `file-in-${run}`);
      expect(JSON.parse(mine.at(-1).value).position).toMatchObject({ line: 2501, offset: Buffer.byteLength(lines(0, 2500)) + 1 });
    }, 90_000);
  }

  for (const run of [1, 2, 3]) {
    it(`without follow, a source that read its file to the end is stopped, and resume finds nothing new to send (run ${run})`, async () => {
      const input = join(dir, `once-${run}.ndjson`);
      const topic = `once-${run}`;
      const name = `once-${run}`;
      writeFileSync(input, lines(0, 50));
      await http("POST", "/topics", { name: topic, partitions: 1 });
      const connect = await spawnConnect(
        join(dir, `once-${run}.yaml`),
        `connectors:\n  - name: ${name}\n    type: ndjson-source\n    path: ${input}\n    topic: ${topic}\n    follow: false\n`,
        `http://127.0.0.1:${node.httpPort}`,
      );
      children.push(connect);
      const status = async () => (await (await fetch(`${connect.apiUrl}/connectors/${name}`)).json()) as { state: string };
      await waitFor(async () => (await status()).state === "stopped", { timeoutMs: 20_000, what: "the source to stop at the end of its file" });
      expect((await http("GET", `/topics/${topic}`)).partitionInfo[0].endOffset).toBe(50);
      const resumed = await (await fetch(`${connect.apiUrl}/connectors/${name}/resume`, { method: "POST" })).json();
      expect(resumed.state).toMatch(/running|stopped/);
      await waitFor(async () => (await status()).state === "stopped", { timeoutMs: 20_000, what: "the resumed source to stop again" });
      expect((await http("GET", `/topics/${topic}`)).partitionInfo[0].endOffset).toBe(50); // resumed at its saved position
      expect(await connect.stop()).toBe(0);
    }, 60_000);
  }
});
