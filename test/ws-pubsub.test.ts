import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { openTempFileEngine, startWsTestServer, type WsTestServer } from "./helpers/ws-harness.ts";
import { beforeMarks, publishMarks, text, WsTestClient } from "./helpers/ws-test-client.ts";
import { waitFor } from "./helpers/wait.ts";

let server: WsTestServer;
const clients: WsTestClient[] = [];
async function connect(format: "cbor" | "json" = "cbor"): Promise<WsTestClient> {
  const c = await WsTestClient.connect(server.url, { format });
  clients.push(c);
  return c;
}

beforeEach(async () => {
  server = await startWsTestServer();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server.close();
});

describe("WebSocket gateway: publish and subscribe", () => {
  for (const format of ["cbor", "json"] as const) {
    it(`round-trips publish to subscribe with real offsets over ${format}`, async () => {
      const sub = await connect(format);
      const pub = await connect(format);
      await server.broker.createTopic("orders", { partitions: 1 });
      const subscribed = await sub.subscribeOk({ sub: 1, topic: "orders", from: "latest" });
      expect(subscribed.partitions).toEqual([{ partition: 0, offset: 0, epoch: expect.any(String) }]);

      const acks = [];
      for (let i = 0; i < 5; i++) {
        acks.push(await pub.publish("orders", `v${i}`, { key: new TextEncoder().encode(`k${i}`), headers: { h: new Uint8Array([i]) } }));
      }
      expect(acks.map((a) => [a.op, a.partition, a.offset])).toEqual([0, 1, 2, 3, 4].map((i) => ["ack", 0, i]));

      const msgs = await sub.waitForMessages(1, 5);
      expect(msgs.map((m) => [m.sub, m.topic, m.partition, m.offset, text(m.key), text(m.value)])).toEqual(
        [0, 1, 2, 3, 4].map((i) => [1, "orders", 0, i, `k${i}`, `v${i}`]),
      );
      expect(msgs[3]!.headers).toEqual({ h: new Uint8Array([3]) });
      expect(typeof msgs[0]!.timestamp).toBe("number");
    });
  }

  it("delivers bytes published over CBOR to a JSON subscriber as base64, live and from the log", async () => {
    const json = await connect("json");
    const cbor = await connect("cbor");
    await json.subscribeOk({ sub: 1, topic: "mixed", from: "earliest" });
    await cbor.publish("mixed", "from cbor", { key: new TextEncoder().encode("k"), headers: { h: new Uint8Array([1, 2]) } });
    const [live] = await json.waitForMessages(1, 1);
    expect([text(live!.key), text(live!.value), [...live!.headers!.h!]]).toEqual(["k", "from cbor", [1, 2]]);
    await json.subscribeOk({ sub: 2, topic: "mixed", from: "earliest", credit: 1 });
    const [caught] = await json.waitForMessages(2, 1);
    expect([text(caught!.key), text(caught!.value)]).toEqual(["k", "from cbor"]);
  });

  it("welcomes with the session, node id and limits", async () => {
    const c = await WsTestClient.open(server.url);
    clients.push(c);
    const welcome = await c.hello("tab-7");
    expect(welcome).toMatchObject({ op: "welcome", clientId: "tab-7", node: "test-node", limits: { maxFrameBytes: server.config.limits.maxFrameBytes, defaultCredit: 1000 } });
    expect(welcome.sessionId).toMatch(/[0-9a-f-]{36}/);
  });

  it("keeps per-partition order for concurrent publishers on several connections", async () => {
    await server.broker.createTopic("events", { partitions: 3 });
    const sub = await connect();
    await sub.subscribeOk({ sub: 9, topic: "events", from: "earliest" });
    const publishers = await Promise.all([connect(), connect(), connect(), connect()]);
    const perPublisher = 250;
    await Promise.all(
      publishers.map(async (p, pi) => {
        const acks = [];
        for (let i = 0; i < perPublisher; i++) {
          acks.push(p.publish("events", `${pi}:${i}`, { key: new TextEncoder().encode(`producer-${pi}`) }));
          if (i % 50 === 49) await Promise.all(acks.splice(0));
        }
        await Promise.all(acks);
      }),
    );
    const msgs = await sub.waitForMessages(9, publishers.length * perPublisher);
    const byPartition = new Map<number, number[]>();
    const byPublisher = new Map<string, number[]>();
    for (const m of msgs) {
      byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m.offset]);
      const [pi, i] = text(m.value)!.split(":");
      byPublisher.set(pi!, [...(byPublisher.get(pi!) ?? []), Number(i)]);
    }
    for (const offsets of byPartition.values()) expect(offsets).toEqual(offsets.map((_, i) => i));
    // One key per publisher: one partition each, in publish order.
    for (const seq of byPublisher.values()) expect(seq).toEqual(Array.from({ length: perPublisher }, (_, i) => i));
  });

  it("starts from earliest, latest, an offset or a timestamp", async () => {
    await server.broker.createTopic("pos", { partitions: 1 });
    const pub = await connect();
    for (let i = 0; i < 10; i++) await pub.publish("pos", `old${i}`);
    // t: just after the newest old record; the new ones are appended once the clock has reached it
    const [lastOld] = await server.engine.read("pos", 0, 9, { maxRecords: 1 });
    const t = lastOld!.timestamp + 1;
    await waitFor(() => Date.now() >= t, { timeoutMs: 1000, what: "the clock to pass the last old record" });
    for (let i = 0; i < 3; i++) await pub.publish("pos", `new${i}`);

    const c = await connect();
    const earliest = await c.subscribeOk({ sub: 1, topic: "pos", from: "earliest" });
    const latest = await c.subscribeOk({ sub: 2, topic: "pos", from: "latest" });
    const offset = await c.subscribeOk({ sub: 3, topic: "pos", from: { offsets: { 0: 7 } } });
    const ts = await c.subscribeOk({ sub: 4, topic: "pos", from: { timestamp: t } });
    expect([earliest, latest, offset, ts].map((s) => s.partitions[0]!.offset)).toEqual([0, 13, 7, 10]);
    await pub.publish("pos", "live");
    expect((await c.waitForMessages(1, 14)).map((m) => m.offset)).toEqual(Array.from({ length: 14 }, (_, i) => i));
    expect((await c.waitForMessages(2, 1)).map((m) => text(m.value))).toEqual(["live"]);
    expect((await c.waitForMessages(3, 7)).map((m) => m.offset)).toEqual([7, 8, 9, 10, 11, 12, 13]);
    expect((await c.waitForMessages(4, 4)).map((m) => text(m.value))).toEqual(["new0", "new1", "new2", "live"]);
  });

  it("filters by record key with MQTT-style + and # wildcards", async () => {
    await server.broker.createTopic("sensor-data", { partitions: 2 });
    const c = await connect();
    await c.subscribeOk({ sub: 1, topic: "sensor-data/+/temp", from: "earliest" });
    await c.subscribeOk({ sub: 2, topic: "sensor-data/d1/#", from: "earliest" });
    const pub = await connect();
    const keys = ["sensor-data/d1/temp", "sensor-data/d2/temp", "sensor-data/d1/hum", "sensor-data/d1/temp/x", "sensor-data/d1", "other", null];
    for (const k of keys) await pub.publish("sensor-data", `on ${k}`, { key: k === null ? null : new TextEncoder().encode(k) });
    await pub.publish("sensor-data", "end", { key: new TextEncoder().encode("sensor-data/d3/temp") });
    const temps = await c.waitForMessages(1, 3);
    await c.waitForMessages(2, 4);
    // markers (keyed to match both filters) after everything in both partitions
    const marks = await publishMarks(pub, "sensor-data", [0, 1], "sensor-data/d1/temp");
    await c.waitForMarks(1, marks);
    await c.waitForMarks(2, marks);
    expect(new Set(beforeMarks(c.messagesOf(1), marks).map((m) => text(m.key)))).toEqual(new Set(["sensor-data/d1/temp", "sensor-data/d2/temp", "sensor-data/d3/temp"]));
    expect(beforeMarks(temps, marks)).toHaveLength(3); // temps is the live list of sub 1
    expect(new Set(beforeMarks(c.messagesOf(2), marks).map((m) => text(m.key)))).toEqual(new Set(["sensor-data/d1/temp", "sensor-data/d1/hum", "sensor-data/d1/temp/x", "sensor-data/d1"]));
    expect(beforeMarks(c.messagesOf(2), marks)).toHaveLength(4);
  });

  it("auto-creates a subscribed topic, or answers UNKNOWN_TOPIC when auto-create is off", async () => {
    const c = await connect();
    const ok = await c.subscribeOk({ sub: 1, topic: "fresh-topic" });
    expect(ok.partitions).toHaveLength(1);
    await server.close();
    server = await startWsTestServer({ topics: { autoCreate: false } });
    const d = await connect();
    const reply = await d.subscribe({ sub: 1, topic: "nope" });
    expect(reply).toMatchObject({ op: "error", code: "UNKNOWN_TOPIC", sub: 1 });
    const pubReply = await d.publish("nope", "x");
    expect(pubReply).toMatchObject({ op: "error", code: "UNKNOWN_TOPIC" });
  });

  it("stops delivery after unsubscribe and answers ping with pong", async () => {
    const c = await connect();
    await c.subscribeOk({ sub: 5, topic: "u" });
    // a witness on the same connection and partition: once it has "two", "two" was offered to every subscriber of `u`
    await c.subscribeOk({ sub: 6, topic: "u" });
    await c.publish("u", "one");
    await c.waitForMessages(5, 1);
    expect(await c.request({ op: "unsubscribe", sub: 5 })).toMatchObject({ op: "unsubscribed", sub: 5 });
    await c.publish("u", "two");
    await c.waitForMessages(6, 2);
    expect(await c.request({ op: "ping" })).toMatchObject({ op: "pong" });
    expect(c.messagesOf(5)).toHaveLength(1);
  });

  it("resets an out-of-range or stale-epoch position by the subscription's policy", async () => {
    // Real retention: 2-record segments, keep only the newest 3 segments' bytes.
    const { engine, cleanup } = await openTempFileEngine({ segmentBytes: 1, retentionCheckMs: 0 });
    onTestFinished(cleanup);
    await server.close();
    server = await startWsTestServer({ engine });
    await server.broker.createTopic("r", { partitions: 1, retentionBytes: 1 });
    const c = await connect();
    for (let i = 0; i < 10; i++) await c.publish("r", `m${i}`);
    await engine.enforceRetention();
    const earliest = (await engine.offsets("r", 0)).earliestOffset;
    expect(earliest).toBeGreaterThan(2);

    const early = await c.subscribeOk({ sub: 1, topic: "r", from: { offsets: { 0: 2 } }, reset: "earliest" });
    expect(early.partitions[0]!.offset).toBe(earliest);
    expect(await c.waitFor((f) => f.op === "reset" && f.sub === 1)).toMatchObject({ reason: "OFFSET_OUT_OF_RANGE", requested: 2, offset: earliest });
    const kept = Array.from({ length: 10 - earliest }, (_, i) => earliest + i);
    expect((await c.waitForMessages(1, kept.length)).map((m) => m.offset)).toEqual(kept);

    const late = await c.subscribeOk({ sub: 2, topic: "r", from: { offsets: { 0: 99 } }, reset: "latest" });
    expect(late.partitions[0]!.offset).toBe(10);

    const stale = await c.subscribeOk({ sub: 3, topic: "r", from: { offsets: { 0: 5 }, epochs: { 0: "old-epoch" } }, reset: "earliest" });
    expect(stale.partitions[0]).toMatchObject({ offset: earliest, epoch: early.partitions[0]!.epoch });
    expect(await c.waitFor((f) => f.op === "reset" && f.sub === 3)).toMatchObject({ reason: "STALE_EPOCH", requested: 5 });

    expect(await c.subscribe({ sub: 4, topic: "r", from: { offsets: { 0: 1 } }, reset: "error" })).toMatchObject({ op: "error", code: "OFFSET_OUT_OF_RANGE", sub: 4 });
    expect(await c.subscribe({ sub: 5, topic: "r", from: { offsets: { 0: 6 }, epochs: { 0: "x" } }, reset: "error" })).toMatchObject({ op: "error", code: "STALE_EPOCH", sub: 5 });
  });
});
