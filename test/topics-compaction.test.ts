/**
 * Compacted topics through the admin surfaces of a real node process: `POST /topics` and
 * `tributary topics create|describe` accept cleanupPolicy "compact" (+ deleteRetentionMs,
 * minCleanableDirtyRatio) and show them; bad values are refused with INVALID_CONFIG; a
 * keyless record to a compacted topic is refused with POLICY_VIOLATION.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, spawnFileNode, type NodeChild } from "./helpers/node-process.ts";

let node: NodeChild;
let url: string;

beforeAll(async () => {
  node = await spawnFileNode();
  url = `http://127.0.0.1:${node.httpPort}`;
});
afterAll(async () => {
  await node?.stop();
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url + path, { method, headers: body === undefined ? {} : { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args, "--url", url], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("compacted topics over HTTP and the CLI", () => {
  it("POST /topics creates a compacted topic, GET shows its settings, bad values are INVALID_CONFIG", async () => {
    const created = await call("POST", "/topics", { name: "kv", cleanupPolicy: "compact", deleteRetentionMs: "2h", minCleanableDirtyRatio: 0.3 });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: "kv", cleanupPolicy: "compact", deleteRetentionMs: 7_200_000, minCleanableDirtyRatio: 0.3 });
    expect((await call("GET", "/topics/kv")).json).toMatchObject({ cleanupPolicy: "compact", deleteRetentionMs: 7_200_000 });
    const both = await call("POST", "/topics", { name: "kv-both", cleanupPolicy: "delete,compact" });
    expect(both.json).toMatchObject({ cleanupPolicy: "compact,delete", deleteRetentionMs: 86_400_000, minCleanableDirtyRatio: 0.5 });

    for (const bad of [{ cleanupPolicy: "shrink" }, { cleanupPolicy: ["compact"] }, { deleteRetentionMs: -5 }, { minCleanableDirtyRatio: 2 }]) {
      const refused = await call("POST", "/topics", { name: "kv-bad", ...bad });
      expect(refused.status, JSON.stringify(bad)).toBe(400);
      expect(refused.json).toMatchObject({ error: { code: "INVALID_CONFIG" } });
    }
    const keyless = await call("POST", "/topics/kv/records", { value: "no key" });
    expect(keyless.status).toBe(400);
    expect(keyless.json).toMatchObject({ error: { code: "POLICY_VIOLATION", message: expect.stringMatching(/compacted.*key/) } });
    expect((await call("POST", "/topics/kv/records", { key: "a", value: "keyed" })).status).toBe(200);
  });

  it("tributary topics create --cleanup-policy compact --delete-retention 1h, and describe shows them", async () => {
    const created = await cli(["topics", "create", "kv-cli", "--cleanup-policy", "compact", "--delete-retention", "1h", "--min-cleanable-dirty-ratio", "0.2"]);
    expect(created.code, created.stderr).toBe(0);
    const described = await cli(["topics", "describe", "kv-cli"]);
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(/cleanup policy\s+compact\n/);
    expect(described.stdout).toMatch(/delete retention\s+1h\n/);
    expect(described.stdout).toMatch(/min dirty ratio\s+0\.2\n/);
    const bad = await cli(["topics", "create", "kv-cli2", "--cleanup-policy", "sometimes"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/expected delete, compact or compact,delete/);
  });
});
