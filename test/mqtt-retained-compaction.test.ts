/**
 * MQTT retained messages and sessions live in compacted internal topics (`__mqtt.retained`,
 * `__mqtt.sessions`): a cleared retained message is a tombstone, compaction keeps the last
 * record per MQTT topic, and a restarted node loads exactly the live state from the
 * compacted log. A data dir whose internal topics were created with cleanupPolicy "delete"
 * is switched to "compact" at start.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import type { TributaryConfig } from "../server/src/config/config.ts";
import { FileLogEngine } from "../server/src/log/file/file-log-engine.ts";
import { createLogger } from "../server/src/logger.ts";
import { startNode, type TributaryNode } from "../server/src/node.ts";
import { readAllGapSafe } from "./contract/log-engine-compaction-contract.ts";
import { collect, connectClient, endClient, roundTrip } from "./helpers/mqtt-node.ts";
import { testNodeConfig } from "./helpers/node-config.ts";
import { redisNodeConfig } from "./helpers/cluster-nodes.ts";
import { startRedis } from "./helpers/redis-harness.ts";
import { retryUntilOk } from "./helpers/wait.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const RETAINED = "__mqtt.retained";
const SESSIONS = "__mqtt.sessions";

function config(dataDir: string): TributaryConfig {
  const c = testNodeConfig(dataDir, { mqtt: { enabled: true } });
  return c;
}

async function start(cfg: TributaryConfig): Promise<TributaryNode> {
  const node = await retryUntilOk(() => startNode(cfg, { logger: createLogger("error") }), { timeoutMs: 5000, what: "the node to start on its ports" });
  return node;
}

async function client(node: TributaryNode, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  const c = await connectClient(`mqtt://127.0.0.1:${node.mqttPort}`, { protocolVersion: 5, ...options });
  cleanups.push(() => endClient(c));
  return c;
}

async function retainedSeen(node: TributaryNode, filter: string): Promise<string[]> {
  const c = await client(node);
  const got = collect(c);
  await c.subscribeAsync(filter, { qos: 1 });
  await roundTrip(c); // retained messages come right after SUBACK, before this answer
  await endClient(c);
  return got.messages.filter((m) => m.retain).map((m) => `${m.topic}=${m.payload}`).sort();
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tributary-retained-compaction-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe("MQTT state in compacted internal topics", () => {
  it("retained-messages-and-sessions-survive-compaction-and-restart-with-only-live-state-loaded", async () => {
    const dataDir = tempDir();
    const cfg = config(dataDir);
    let node = await start(cfg);
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await node.close();
    });
    expect(await node.broker.describeTopic(RETAINED)).toMatchObject({ cleanupPolicy: "compact", segmentBytes: 4 << 20, retentionMs: null });
    expect(await node.broker.describeTopic(SESSIONS)).toMatchObject({ cleanupPolicy: "compact", segmentBytes: 4 << 20 });
    // Smaller segments than the keyed topics' 4 MiB, so this test's few hundred KB leave sealed segments to compact.
    await node.broker.alterTopicConfig(RETAINED, { segmentBytes: 8 << 10 });

    // A persistent session with a subscription, then 40 retained topics written 25 times each, 10 of them cleared.
    const sub = await client(node, { clientId: "keeper", clean: false, properties: { sessionExpiryInterval: 3600 } });
    await sub.subscribeAsync("ret/#", { qos: 1 });
    await endClient(sub);
    const pub = await client(node);
    for (let round = 0; round < 25; round++) {
      await Promise.all(Array.from({ length: 40 }, (_, t) => pub.publishAsync(`ret/t${t}`, `v${round}-${"x".repeat(100)}`, { qos: 1, retain: true })));
    }
    for (let t = 30; t < 40; t++) await pub.publishAsync(`ret/t${t}`, "", { qos: 1, retain: true }); // clear: a tombstone
    // Other retained topics after the clears, so the tombstones leave the active segment (which is never compacted).
    for (let p = 0; p < 100; p++) await pub.publishAsync(`pad/p${p}`, "p".repeat(120), { qos: 1, retain: true });
    await pub.publishAsync("ret/flush", "end", { qos: 1 }); // not retained: rolls nothing, just a barrier
    const expected = Array.from({ length: 30 }, (_, t) => `ret/t${t}=v24-${"x".repeat(100)}`).sort();
    expect(await retainedSeen(node, "ret/#")).toEqual(expected);

    const engine = node.engine as FileLogEngine;
    await engine.compact(RETAINED, { force: true }); // the node's own cleaner may have run a pass already: either way the log is compacted now
    const after = await readAllGapSafe(engine, RETAINED, 0);
    const written = 25 * 40 + 10 + 100;
    expect((await engine.offsets(RETAINED, 0)).endOffset).toBe(written);
    expect(after.length).toBeLessThan(written / 3);
    // Tombstones stay (deleteRetentionMs, 24 h by default): readers behind still see the clears.
    const keys = new Map(after.map((r) => [new TextDecoder().decode(r.key!), r.value]));
    for (let t = 30; t < 40; t++) expect(keys.get(`ret/t${t}`), `ret/t${t}`).toBeNull();
    expect(await retainedSeen(node, "ret/#")).toEqual(expected);

    // Restart: the node loads the compacted state.
    await node.close();
    node = await start({ ...cfg, port: node.httpPort, mqtt: { ...cfg.mqtt, port: node.mqttPort } });
    expect(await retainedSeen(node, "ret/#")).toEqual(expected);
    let sessionPresent: boolean | undefined;
    const back = await connectClient(`mqtt://127.0.0.1:${node.mqttPort}`, { protocolVersion: 5, clientId: "keeper", clean: false, properties: { sessionExpiryInterval: 3600 } }, (c) =>
      c.once("connect", (packet) => (sessionPresent = packet.sessionPresent)),
    );
    await endClient(back);
    expect(sessionPresent).toBe(true); // the session came back from the compacted __mqtt.sessions
    await node.close();
    stopped = true;

    // The tombstones go once deleteRetentionMs passed (a pass run "later" by its clock), and a restart still loads the same state.
    const offline = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0, compactionCheckMs: 0, segmentBytes: 8 << 10, onWarning: () => undefined });
    const later = await offline.compact(RETAINED, { force: true, now: Date.now() + 25 * 3600_000 });
    expect(later.tombstonesRemoved).toBe(10);
    expect((await readAllGapSafe(offline, SESSIONS, 0)).length).toBeGreaterThan(0);
    await offline.close();
    node = await start(cfg);
    stopped = false;
    expect(await retainedSeen(node, "ret/#")).toEqual(expected);
  });

  it("on-the-redis-engine-retained-messages-survive-compaction-and-a-node-restart", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.destroy());
    const base = redisNodeConfig(redis.url);
    const cfg: TributaryConfig = { ...base, mqtt: { ...base.mqtt, enabled: true } };
    let node = await start(cfg);
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await node.close();
    });
    expect((await node.broker.describeTopic(RETAINED)).cleanupPolicy).toBe("compact");
    const pub = await client(node);
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 20 }, (_, t) => pub.publishAsync(`r/t${t}`, `v${round}`, { qos: 1, retain: true })));
    }
    for (let t = 15; t < 20; t++) await pub.publishAsync(`r/t${t}`, "", { qos: 1, retain: true });
    await pub.publishAsync("r/last", "x", { qos: 1, retain: true }); // the stream's last record is never deleted: not a cleared one
    await endClient(pub);
    await node.engine.compact(RETAINED, { force: true }); // the node's own pass may have done part of it already: either way it is compacted now
    expect((await node.engine.offsets(RETAINED, 0)).endOffset).toBe(20 * 10 + 5 + 1);
    const after = await readAllGapSafe(node.engine, RETAINED, 0);
    expect(after.length).toBe(21); // 15 values, 5 tombstones (kept deleteRetentionMs), r/last
    const expected = [...Array.from({ length: 15 }, (_, t) => `r/t${t}=v9`), "r/last=x"].sort();
    expect(await retainedSeen(node, "r/#")).toEqual(expected);

    await node.close();
    stopped = true;
    node = await start(cfg);
    stopped = false;
    expect(await retainedSeen(node, "r/#")).toEqual(expected);
  });

  it("internal-topics-created-with-the-delete-policy-are-switched-to-compact-at-start", async () => {
    const dataDir = tempDir();
    const old = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0, compactionCheckMs: 0, onWarning: () => undefined });
    await old.createTopic(RETAINED, { partitions: 1, retentionMs: null, retentionBytes: null, cleanupPolicy: "delete" });
    const enc = new TextEncoder();
    await old.append(RETAINED, 0, [
      { key: enc.encode("old/a"), value: enc.encode("1") },
      { key: enc.encode("old/a"), value: enc.encode("2") },
      { key: enc.encode("old/b"), value: enc.encode("3") },
      { key: enc.encode("old/b"), value: new Uint8Array(0) }, // a clear from before tombstones: an empty value
    ]);
    await old.close();

    const node = await start(config(dataDir));
    cleanups.push(() => node.close());
    expect(await retainedSeen(node, "old/#")).toEqual(["old/a=2"]);
    // KeyedTopic.ensure ran while the node started (the retained store loads before it listens).
    expect(await node.broker.describeTopic(RETAINED)).toMatchObject({ cleanupPolicy: "compact", segmentBytes: 4 << 20 });
    await expect(node.broker.produce(RETAINED, [{ key: null, value: enc.encode("x"), partition: 0 }])).rejects.toMatchObject({ code: "POLICY_VIOLATION" });
  });
});
