/**
 * Topic and partition quotas, and topic creation that fails leaving nothing behind
 * (issue 11: 100,000 topic creations exhausted the node's file descriptors and left
 * orphan directories).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, endClient, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { BIN } from "./helpers/node-process.ts";
import { within } from "./helpers/wait.ts";

async function createTopic(port: number, name: string, partitions: number): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  const res = await fetch(`http://127.0.0.1:${port}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, partitions }) });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

describe("topic and partition quotas", () => {
  let node: MqttTestNode;
  beforeAll(async () => {
    node = await startMqttTestNode({}, {}, { maxTopics: 4, maxPartitionsPerTopic: 8, maxPartitions: 12 });
  });
  afterAll(async () => {
    await node?.close();
  });

  it("refuses a topic with more partitions than limits.maxPartitionsPerTopic, naming the limit", async () => {
    const r = await createTopic(node.httpPort, "too-wide", 9);
    expect(r.body.error).toMatchObject({ code: "POLICY_VIOLATION" });
    expect(r.body.error!.message).toContain("limits.maxPartitionsPerTopic");
  });

  it("counts partitions over all topics against limits.maxPartitions, and topics against limits.maxTopics, MQTT auto-creation included", async () => {
    const before = (await (await fetch(`http://127.0.0.1:${node.httpPort}/topics?internal=true`)).json()) as { topics: unknown[] };
    const used = before.topics.length; // internal topics of the MQTT gateway count too
    expect((await createTopic(node.httpPort, "wide-a", 8)).status).toBe(201);
    const r = await createTopic(node.httpPort, "wide-b", 8);
    expect(r.body.error).toMatchObject({ code: "POLICY_VIOLATION" });
    expect(r.body.error!.message).toContain("limits.maxPartitions");
    // fill the topic count with 1-partition topics, then an MQTT publish to a new topic is refused (PUBACK 0x97 / 0x80)
    for (let i = used + 1; i < 4; i++) expect((await createTopic(node.httpPort, `narrow-${i}`, 1)).status).toBe(201);
    const last = await createTopic(node.httpPort, "one-too-many", 1);
    expect(last.body.error!.message).toContain("limits.maxTopics");
    const client = await connectClient(node.tcpUrl, { protocolVersion: 5 });
    await expect(client.publishAsync("brand-new/x", "v", { qos: 1 })).rejects.toThrow(/Publish error/);
    await endClient(client);
    // deleting frees room
    expect((await fetch(`http://127.0.0.1:${node.httpPort}/topics/wide-a`, { method: "DELETE" })).status).toBe(204);
    expect((await createTopic(node.httpPort, "wide-b", 8)).status).toBe(201);
  });
});

describe("a topic creation that fails leaves nothing behind", () => {
  it("with too few file descriptors for its partitions, the node answers STORAGE_ERROR, keeps no directory and no open files, and creates the next topic", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tributary-fds-"));
    const child = spawn("/bin/sh", ["-c", `ulimit -n 256 && exec "${process.execPath}" "${BIN}" start --port 0 --mqtt-port 0 --data-dir "${dataDir}" --log-level warn`]);
    let stdout = "";
    const port = await within(
      new Promise<number>((resolve) =>
        child.stdout.on("data", (d: Buffer) => {
          stdout += d.toString();
          const m = /http=[^:\s]+:(\d+)/.exec(stdout);
          if (m) resolve(Number(m[1]));
        }),
      ),
      20_000,
      "the node to listen",
    );
    try {
      const big = await createTopic(port, "big", 400);
      expect(big.body.error).toMatchObject({ code: "STORAGE_ERROR" });
      expect(existsSync(join(dataDir, "topics", "big"))).toBe(false);
      for (let i = 0; i < 3; i++) expect((await createTopic(port, `after-${i}`, 20)).status).toBe(201);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
