/**
 * One owner per data dir and per port: a second node on the same `--data-dir`, `--port`
 * or `--mqtt-port` exits 1 and says why (the holder's pid, the flag to change), and the
 * first node keeps every record. A lock left by a crashed node does not stop the next one.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { spawnFileNode, spawnTributary, type NodeChild } from "./helpers/node-process.ts";
import { freePort } from "./helpers/redis-harness.ts";
import { within } from "./helpers/wait.ts";

const running: NodeChild[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function produce(node: NodeChild, values: string[]): Promise<void> {
  const body = values.map((value) => JSON.stringify({ key: null, value })).join("\n");
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/topics/owned/records`, { method: "POST", headers: { "content-type": "application/x-ndjson" }, body });
  expect(res.status).toBeLessThan(300);
}

async function count(node: NodeChild): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/topics/owned`);
  const topic = (await res.json()) as { partitions: Array<{ endOffset: number }> } & { partitionInfo?: Array<{ endOffset: number }> };
  const parts = topic.partitionInfo ?? topic.partitions;
  return parts.reduce((n, p) => n + p.endOffset, 0);
}

describe("one owner per data dir and per port", () => {
  it("a second node on the same data dir exits 1 naming the first node's pid, and the first keeps every record", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tributary-owned-"));
    dirs.push(dataDir);
    const first = await spawnFileNode({ dataDir });
    running.push(first);
    await produce(first, ["a", "b", "c"]);
    const second = spawnTributary(["start", "--port", "0", "--mqtt-port", "0"], { dataDir });
    expect(await within(second.exited, 20_000, "the second node to exit")).toBe(1);
    expect(second.stderr()).toContain(`pid ${first.pid}`);
    expect(second.stderr()).toContain("--data-dir");
    await produce(first, ["d"]);
    await first.stop({ keepDataDir: true });
    running.splice(0);
    const again = await spawnFileNode({ dataDir });
    running.push(again);
    expect(await count(again)).toBe(4);
  });

  it("a lock left by a node that no longer runs (SIGKILL) does not stop the next node", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "tributary-owned-"));
    dirs.push(dataDir);
    const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    writeFileSync(join(dataDir, "tributary.lock"), `${gone.stdout}\n`);
    const node = await spawnFileNode({ dataDir });
    running.push(node);
    expect(node.pid).toBeGreaterThan(0);
  });

  it("a second node on the same HTTP port exits 1 with a hint naming --port; requests keep reaching the first", async () => {
    // A port given explicitly, as an operator would (a port-0 listener is never shared anyway).
    const first = await spawnFileNode({ args: ["--port", String(await freePort())] });
    running.push(first);
    const second = spawnTributary(["start", "--port", String(first.httpPort), "--mqtt-port", "0"]);
    dirs.push(second.dataDir);
    expect(await within(second.exited, 20_000, "the second node to exit")).toBe(1);
    expect(second.stderr()).toContain("--port");
    for (let i = 0; i < 20; i++) {
      const health = (await (await fetch(`http://127.0.0.1:${first.httpPort}/healthz`)).json()) as { nodeId?: string };
      expect(health).toBeTruthy();
    }
  });

  it("a second node on the same MQTT port exits 1 with a hint naming --mqtt-port", async () => {
    const first = await spawnFileNode();
    running.push(first);
    const second = spawnTributary(["start", "--port", "0", "--mqtt-port", String(first.mqttPort)]);
    dirs.push(second.dataDir);
    expect(await within(second.exited, 20_000, "the second node to exit")).toBe(1);
    expect(second.stderr()).toContain("--mqtt-port");
  });
});
