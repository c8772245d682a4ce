/**
 * Internal topics (`__mqtt.sessions`, `__mqtt.retained`, ...) are reserved for the node
 * (server/src/broker/internal-topics.ts): no client produces to, creates, deletes, reads or
 * subscribes to one through HTTP, the CLI, WebSocket or MQTT; `GET /topics` lists them only
 * when asked. And the node starts whatever they hold: malformed records an admin wrote
 * there are skipped at start with a warning and a count, good ones keep working.
 */
import { testNodeConfig } from "./helpers/node-config.ts";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isInternalTopic } from "../server/src/broker/internal-topics.ts";
import { RETAINED_TOPIC } from "../server/src/gateway/mqtt/retained-store.ts";
import { SESSIONS_TOPIC } from "../server/src/gateway/mqtt/session/session-store.ts";
import { levelForLogTopic, logTopicFor, logTopicForLevel } from "../server/src/gateway/mqtt/topic-mapping.ts";
import { createLogger } from "../server/src/logger.ts";
import { startNode, type TributaryNode } from "../server/src/node.ts";
import { collect, connectClient, endClient, roundTrip } from "./helpers/mqtt-node.ts";
import { waitFor, within } from "./helpers/wait.ts";
import { WsTestClient } from "./helpers/ws-test-client.ts";

const BIN = fileURLToPath(new URL("../server/bin/tributary.mjs", import.meta.url));
const enc = new TextEncoder();

/** A node on a temp data dir whose log lines the test reads; `restart()` reopens the same dir (on new free ports). */
interface TestNode {
  node: TributaryNode;
  lines: string[];
  restart(): Promise<void>;
  close(): Promise<void>;
}

async function startTestNode(): Promise<TestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-internal-"));
  const config = testNodeConfig(dataDir, { mqtt: { enabled: true }, log: { level: "warn" } });
  const lines: string[] = [];
  const logger = createLogger("warn", (line) => lines.push(line));
  let node = await startNode(config, { logger });
  return {
    get node() {
      return node;
    },
    lines,
    async restart() {
      await node.close();
      lines.length = 0;
      node = await startNode(config, { logger });
    },
    async close() {
      await node.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let t: TestNode;
const clients: MqttClient[] = [];
const wsClients: WsTestClient[] = [];

beforeAll(async () => {
  t = await startTestNode();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => endClient(c, true)));
  for (const c of wsClients) c.ws.terminate();
  await t?.close();
});

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(t.node.url + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

function expectForbidden(reply: { status: number; json: any }, topic: string): void {
  expect(reply.status, JSON.stringify(reply.json)).toBe(403);
  expect(reply.json.error.code).toBe("FORBIDDEN");
  expect(reply.json.error.message).toContain(`internal topic "${topic}" is reserved for the node`);
}

async function endOffset(topic: string): Promise<number> {
  return (await t.node.broker.offsets(topic, 0)).endOffset;
}

async function mqttClient(options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  const c = await connectClient(`mqtt://127.0.0.1:${t.node.mqttPort}`, options);
  clients.push(c);
  return c;
}

describe("internal topics are reserved for the node", () => {
  it("HTTP refuses produce, read, create, delete and group offset resets on internal topics with 403 FORBIDDEN, and the topics are untouched", async () => {
    const sessionsEnd = await endOffset(SESSIONS_TOPIC);
    const retainedEnd = await endOffset(RETAINED_TOPIC);

    // the attack: one record that made every later start fail
    expectForbidden(await http("POST", `/topics/${SESSIONS_TOPIC}/records`, { key: "evil", value: "null" }), SESSIONS_TOPIC);
    expectForbidden(await http("POST", `/topics/${RETAINED_TOPIC}/records`, { records: [{ key: "a/b", value: "x" }] }), RETAINED_TOPIC);
    expectForbidden(await http("GET", `/topics/${SESSIONS_TOPIC}/partitions/0/records?offset=earliest`), SESSIONS_TOPIC);
    expectForbidden(await http("DELETE", `/topics/${SESSIONS_TOPIC}`), SESSIONS_TOPIC);
    expectForbidden(await http("DELETE", `/topics/${RETAINED_TOPIC}`), RETAINED_TOPIC);
    expectForbidden(await http("POST", "/topics", { name: "__connect.offsets", partitions: 1 }), "__connect.offsets");
    expectForbidden(await http("POST", "/groups/g/reset-offsets", { topic: SESSIONS_TOPIC, to: "earliest" }), SESSIONS_TOPIC);

    const topics = await t.node.broker.listTopics();
    expect(topics).toEqual(expect.arrayContaining([SESSIONS_TOPIC, RETAINED_TOPIC]));
    expect(topics).not.toContain("__connect.offsets");
    expect(await endOffset(SESSIONS_TOPIC)).toBe(sessionsEnd);
    expect(await endOffset(RETAINED_TOPIC)).toBe(retainedEnd);
    // describing (partitions and offsets, no records) stays allowed
    expect((await http("GET", `/topics/${SESSIONS_TOPIC}`)).status).toBe(200);
  });

  it("GET /topics lists internal topics only with ?internal=true; escaped MQTT topics like __24SYS are ordinary topics", async () => {
    const sys = await mqttClient();
    await sys.publishAsync("$SYS/load", "1", { qos: 1 }); // → log topic __24SYS
    const plain = await http("GET", "/topics");
    expect(plain.json.topics).toContain("__24SYS");
    expect(plain.json.topics.filter((name: string) => name.startsWith("__mqtt"))).toEqual([]);
    const all = await http("GET", "/topics?internal=true");
    expect(all.json.topics).toEqual(expect.arrayContaining([SESSIONS_TOPIC, RETAINED_TOPIC, "__24SYS"]));
    // an escaped MQTT topic is readable and writable like any other
    expect((await http("GET", "/topics/__24SYS/partitions/0/records?offset=earliest")).json.records[0]).toMatchObject({ key: "$SYS/load", value: "1" });
    expect((await http("POST", "/topics/__24SYS/records", { key: "$SYS/other", value: "2" })).status).toBe(200);
  });

  it("the CLI gets the refusal with exit code 2", async () => {
    const child = spawn(process.execPath, [BIN, "topics", "delete", SESSIONS_TOPIC, "--url", t.node.url], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await within(new Promise<number | null>((resolve) => child.on("close", resolve)), 30_000, "tributary topics delete to exit");
    expect(code, stderr).toBe(2);
    expect(stderr).toContain("reserved for the node");
    expect(stderr).toContain("[FORBIDDEN]");
    expect(await t.node.broker.listTopics()).toContain(SESSIONS_TOPIC);
  });

  it("WebSocket publish and subscribe (plain, filtered, group) to internal topics are refused with FORBIDDEN; the connection keeps working", async () => {
    const ws = await WsTestClient.connect(`ws://127.0.0.1:${t.node.httpPort}/ws`);
    wsClients.push(ws);
    const sessionsEnd = await endOffset(SESSIONS_TOPIC);

    const published = await ws.publish(SESSIONS_TOPIC, "null", { key: enc.encode("evil") });
    expect(published).toMatchObject({ op: "error", code: "FORBIDDEN" });
    expect(String(published.message)).toContain("reserved for the node");
    expect(await ws.publish("__streams.new-changelog", "x")).toMatchObject({ op: "error", code: "FORBIDDEN" }); // no auto-create either

    expect(await ws.subscribe({ sub: 1, topic: SESSIONS_TOPIC, from: "earliest" })).toMatchObject({ op: "error", code: "FORBIDDEN", sub: 1 });
    expect(await ws.subscribe({ sub: 2, topic: `${RETAINED_TOPIC}/#`, from: "earliest" })).toMatchObject({ op: "error", code: "FORBIDDEN", sub: 2 });
    const group = await ws.request({ op: "subscribe", sub: 3, topic: SESSIONS_TOPIC, group: "spies", from: "earliest" });
    expect(group).toMatchObject({ op: "error", code: "FORBIDDEN", sub: 3 });

    expect(await endOffset(SESSIONS_TOPIC)).toBe(sessionsEnd);
    expect(await t.node.broker.listTopics()).not.toContain("__streams.new-changelog");
    // the same connection still publishes to ordinary topics
    expect(await ws.publish("after-refusal", "ok")).toMatchObject({ op: "ack" });
  });

  it("MQTT cannot name an internal topic: the mapping never yields one, publishes land in escaped topics, and `#` does not read them", async () => {
    for (const level of [SESSIONS_TOPIC, RETAINED_TOPIC, "__", "_", "$SYS", "_x", "__connect.offsets"]) {
      const logTopic = logTopicForLevel(level);
      expect(logTopic === null || !isInternalTopic(logTopic), `${level} → ${logTopic}`).toBe(true);
    }
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (level) => {
        const logTopic = logTopicForLevel(level);
        return logTopic === null || !isInternalTopic(logTopic);
      }),
      { numRuns: 2000 },
    );
    expect(levelForLogTopic(SESSIONS_TOPIC)).toBeNull();
    expect(levelForLogTopic(RETAINED_TOPIC)).toBeNull();

    // a persistent session writes to __mqtt.sessions while a `#` subscriber watches
    const watcher = await mqttClient({ clientId: "hash-watcher" });
    const got = collect(watcher);
    await watcher.subscribeAsync("#", { qos: 1 });
    const sessionsEnd = await endOffset(SESSIONS_TOPIC);
    const persistent = await mqttClient({ clientId: "internal-writer", clean: false });
    await persistent.subscribeAsync("mqtt-internal/#", { qos: 1 });
    await waitFor(async () => (await endOffset(SESSIONS_TOPIC)) > sessionsEnd, { what: "the persistent session to be saved" });

    const attacker = await mqttClient({ clientId: "attacker" });
    await attacker.publishAsync(`${SESSIONS_TOPIC}/evil`, "null", { qos: 1 });
    expect(logTopicFor(`${SESSIONS_TOPIC}/evil`)).toBe("__5F_5Fmqtt.sessions");

    await attacker.publishAsync("mqtt-internal/marker", "marker", { qos: 1 });
    // what the attacker published reaches `#` under its own MQTT topic (an ordinary log topic)
    const arrived = (topic: string) => got.messages.some((m) => m.topic === topic);
    await got.until(() => arrived("mqtt-internal/marker") && arrived(`${SESSIONS_TOPIC}/evil`), 10_000, "the marker and the attacker's message at the # subscriber");
    await roundTrip(watcher);
    // nothing of the internal topics (the session records name their client ids) reached it
    expect(got.messages.filter((m) => m.payload.includes("internal-writer"))).toEqual([]);
    const sessions = await t.node.broker.read(SESSIONS_TOPIC, 0, 0, { maxRecords: 10_000 });
    expect(sessions.every((r) => new TextDecoder().decode(r.key!) !== "evil")).toBe(true);
  });
});

describe("the node starts whatever its internal topics hold", () => {
  it("skips malformed __mqtt.sessions and __mqtt.retained records at start with a warning and a count; good sessions and retained messages still work", async () => {
    // good state, written by the node itself
    const good = await mqttClient({ clientId: "good-session", clean: false });
    await good.subscribeAsync("restart-good/#", { qos: 1 });
    const retainer = await mqttClient();
    await retainer.publishAsync("restart-retained/a", "kept", { qos: 1, retain: true });
    await endClient(good); // saved as disconnected, at the latest when the node closes for the restart below

    // malformed records written straight into the internal topics, server-side, as an admin would
    const session = (clientId: string, value: string | Uint8Array) => ({ key: enc.encode(clientId), value: typeof value === "string" ? enc.encode(value) : value, partition: 0 });
    const valid = (clientId: string, extra: Record<string, unknown> = {}) => JSON.stringify({ clientId, expiry: 3600, subscriptions: [{ filter: "x/#", qos: 1 }], disconnectedAt: Date.now(), ...extra });
    const badSessions = [
      session("evil", "null"),
      session("wrong-types", JSON.stringify({ clientId: "wrong-types", expiry: "forever", subscriptions: {}, disconnectedAt: "yesterday" })),
      session("not-json", "{oops"),
      session("not-utf8", new Uint8Array([0xff, 0xfe, 0x7b])),
      session("array", "[1,2,3]"),
      session("other-key", valid("someone-else")),
      session("bad-filter", valid("bad-filter", { subscriptions: [{ filter: "a/#/b", qos: 1 }] })),
      session("bad-qos", valid("bad-qos", { subscriptions: [{ filter: "a/b", qos: 3 }] })),
      session("huge", valid("huge", { subscriptions: [{ filter: "h/".repeat(40_000), qos: 0 }] })),
    ];
    await t.node.broker.produce(SESSIONS_TOPIC, badSessions, { acks: "all" });
    const retained = (topic: string, headers: Record<string, string> = {}) => ({
      key: enc.encode(topic),
      value: enc.encode("should not be retained"),
      headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, enc.encode(v)])),
      partition: 0,
    });
    const badRetained = [
      retained("restart-retained/#"),
      retained(""),
      retained("restart-retained/expiry", { "mqtt.message-expiry": "soon" }),
      retained("restart-retained/qos", { "mqtt.qos": "7" }),
      retained(`restart-retained/${"x".repeat(70_000)}`),
    ];
    await t.node.broker.produce(RETAINED_TOPIC, badRetained, { acks: "all" });

    await t.restart();

    const errors = await t.node.broker.metrics.backgroundErrors.get();
    const count = (task: string) => errors.values.find((v) => v.labels.task === task)?.value;
    expect(count("mqtt-session-load")).toBe(badSessions.length);
    expect(count("mqtt-retained-load")).toBe(badRetained.length);
    const warnings = t.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === "mqtt.session.unreadable");
    expect(warnings.map((w) => w.key)).toEqual(expect.arrayContaining(["evil", "wrong-types", "not-json", "other-key", "bad-filter"]));
    expect(warnings.find((w) => w.key === "evil")?.reason).toContain("expected a JSON object");

    // the good session was restored with its subscription
    const back = await connectClient(`mqtt://127.0.0.1:${t.node.mqttPort}`, { clientId: "good-session", clean: false });
    clients.push(back);
    const got = collect(back);
    const publisher = await mqttClient();
    await publisher.publishAsync("restart-good/x", "after restart", { qos: 1 });
    expect((await got.waitFor(1))[0]).toMatchObject({ topic: "restart-good/x", payload: "after restart" });

    // the good retained message is delivered, none of the malformed ones
    const late = await mqttClient();
    const gotRetained = collect(late);
    await late.subscribeAsync("restart-retained/#", { qos: 1 });
    await gotRetained.waitFor(1);
    await roundTrip(late);
    expect(gotRetained.messages.map((m) => [m.topic, m.payload])).toEqual([["restart-retained/a", "kept"]]);
  });
});
