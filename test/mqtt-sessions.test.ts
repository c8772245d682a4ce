import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import { closeAndWait, collect, connectClient, endClient, flushLog, roundTrip, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor } from "./helpers/wait.ts";
import { SESSIONS_TOPIC } from "../server/src/gateway/mqtt/session/session-store.ts";

let node: MqttTestNode;
const clients: MqttClient[] = [];
async function client(url: string, options: Parameters<typeof connectClient>[1] = {}, before?: (c: MqttClient) => void): Promise<MqttClient> {
  const c = await connectClient(url, options, before);
  clients.push(c);
  return c;
}
/** Kills the client's socket without DISCONNECT (an abrupt network loss). */
function cutSocket(c: MqttClient): void {
  (c.stream as unknown as { destroy(): void }).destroy();
}

beforeAll(async () => {
  node = await startMqttTestNode({}, { defaultPartitions: 3 });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => endClient(c, true)));
  await node?.close();
});

describe("will messages", () => {
  it("publishes the will when the socket dies without DISCONNECT, and not after a normal DISCONNECT", async () => {
    const watcher = await client(node.tcpUrl);
    const got = collect(watcher);
    await watcher.subscribeAsync("wills/#", { qos: 1 });
    const polite = await client(node.tcpUrl, { clientId: "polite", will: { topic: "wills/polite", payload: Buffer.from("should not appear"), qos: 1, retain: false } });
    await closeAndWait(node, () => endClient(polite));
    const rude = await client(node.wsUrl, { clientId: "rude", will: { topic: "wills/rude", payload: Buffer.from("rude went away"), qos: 1, retain: true } });
    await closeAndWait(node, () => cutSocket(rude));
    const msgs = await got.waitFor(1);
    expect(msgs[0]).toMatchObject({ topic: "wills/rude", payload: "rude went away", qos: 1 });
    // both closes were handled (wills published then): markers after them in every partition of `wills`
    await flushLog(node, "wills/marker", [got]);
    expect(got.messages).toHaveLength(1);
    // retained will: a later subscriber sees it
    const late = await client(node.tcpUrl);
    const gotLate = collect(late);
    await late.subscribeAsync("wills/rude", { qos: 1 });
    expect((await gotLate.waitFor(1))[0]).toMatchObject({ payload: "rude went away", retain: true });
  });

  it("MQTT 5: delays the will by the Will Delay Interval, cancels it when the session resumes in time, and sends it at once with session expiry 0", async () => {
    const watcher = await client(node.tcpUrl, { protocolVersion: 5 });
    const got = collect(watcher);
    await watcher.subscribeAsync("wd/#", { qos: 1 });
    const will = (topic: string, delay: number) => ({ topic, payload: Buffer.from(topic), qos: 1 as const, retain: false, properties: { willDelayInterval: delay } });
    const resumer = await client(node.tcpUrl, { protocolVersion: 5, clientId: "wd-resumer", clean: false, properties: { sessionExpiryInterval: 30 }, will: will("wd/resumer", 1) });
    const delayed = await client(node.tcpUrl, { protocolVersion: 5, clientId: "wd-delayed", clean: false, properties: { sessionExpiryInterval: 30 }, will: will("wd/delayed", 1) });
    const instant = await client(node.tcpUrl, { protocolVersion: 5, clientId: "wd-instant", properties: { sessionExpiryInterval: 0 }, will: will("wd/instant", 5) });
    // the positive marker for "the resumer's will never comes": a will due a second after the resumer's would have been
    const later = await client(node.tcpUrl, { protocolVersion: 5, clientId: "wd-later", clean: false, properties: { sessionExpiryInterval: 30 }, will: will("wd/later", 2) });
    const t0 = Date.now();
    await closeAndWait(
      node,
      () => {
        cutSocket(resumer);
        cutSocket(delayed);
        cutSocket(instant);
        cutSocket(later);
      },
      4,
    );
    expect((await got.waitFor(1))[0]!.topic).toBe("wd/instant");
    expect(Date.now() - t0).toBeLessThan(900);
    // the gateway has seen the resumer's socket close: this CONNECT resumes a disconnected session
    await client(node.tcpUrl, { protocolVersion: 5, clientId: "wd-resumer", clean: false, properties: { sessionExpiryInterval: 30 } });
    const msgs = await got.waitFor(2, 4000);
    expect(msgs[1]!.topic).toBe("wd/delayed");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    await got.waitFor(3, 4000);
    await flushLog(node, "wd/marker", [got]); // a will published before wd/later is in by now
    expect(got.messages.map((m) => m.topic)).toEqual(["wd/instant", "wd/delayed", "wd/later"]);
  });
});

describe("persistent sessions", () => {
  it("clean sessions write nothing to __mqtt.sessions; a persistent session is written once and deleted by a clean start", async () => {
    const sessionsEnd = async () => (await node.node.broker.offsets(SESSIONS_TOPIC, 0)).endOffset;
    const before = await sessionsEnd();
    const clean = await Promise.all(
      Array.from({ length: 10 }, (_, i) => connectClient(node.tcpUrl, { clientId: `clean-${i}`, protocolVersion: i % 2 ? 5 : 4, clean: true })),
    );
    await Promise.all(clean.map((c) => c.subscribeAsync(`clean-topic/${c.options.clientId}`, { qos: 1 })));
    await closeAndWait(node, async () => void (await Promise.all(clean.map((c) => endClient(c)))), clean.length);
    // One persistent session: its CONNACK follows its record's write, which lands after any earlier write.
    const persistent = await connectClient(node.tcpUrl, { clientId: "written-once", clean: false, protocolVersion: 4 });
    expect(await sessionsEnd()).toBe(before + 1);
    await closeAndWait(node, () => endClient(persistent));
    const again = await client(node.tcpUrl, { clientId: "written-once", clean: true, protocolVersion: 4 });
    expect(again.connected).toBe(true);
    const tombstone = (await node.node.broker.read(SESSIONS_TOPIC, 0, before + 1, { maxRecords: 10 })).at(-1)!;
    expect(new TextDecoder().decode(tombstone.key!)).toBe("written-once");
    expect(tombstone.value === null || tombstone.value.length === 0).toBe(true);
  });

  it("MQTT 3.1.1 clean session = false: keeps subscriptions and delivers from the log what was published while offline", async () => {
    const opts = { clientId: "persist-v3", clean: false, protocolVersion: 4 as const };
    const first = await client(node.tcpUrl, opts);
    const got1 = collect(first);
    await first.subscribeAsync("offline3/#", { qos: 1 });
    const pub = await client(node.tcpUrl);
    await pub.publishAsync("offline3/a", "online", { qos: 1 });
    await got1.waitFor(1);
    await endClient(first);
    for (let i = 0; i < 10; i++) await pub.publishAsync(`offline3/d${i % 4}`, `off-${i}`, { qos: 1 });
    let got2!: ReturnType<typeof collect>;
    const second = await client(node.wsUrl, opts, (c) => (got2 = collect(c)));
    expect(second.connected).toBe(true);
    const msgs = await got2.waitFor(10);
    expect(msgs.map((m) => m.payload).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `off-${i}`).sort());
    // per MQTT topic, publish order is kept
    expect(msgs.filter((m) => m.topic === "offline3/d1").map((m) => m.payload)).toEqual(["off-1", "off-5", "off-9"]);
    await flushLog(node, "offline3/marker", [got2]); // no replay of "online", no duplicate
    expect(got2.messages).toHaveLength(10);
  });

  it("MQTT 5 clean start discards the previous session", async () => {
    const first = await client(node.tcpUrl, { protocolVersion: 5, clientId: "clean5", clean: false, properties: { sessionExpiryInterval: 60 } });
    await first.subscribeAsync("clean5/#", { qos: 1 });
    await endClient(first);
    const pub = await client(node.tcpUrl);
    await pub.publishAsync("clean5/x", "lost", { qos: 1 });
    let got!: ReturnType<typeof collect>;
    const second = await client(node.tcpUrl, { protocolVersion: 5, clientId: "clean5", clean: true }, (c) => (got = collect(c)));
    // A kept session would read `clean5` from its old position (before "lost"); a new subscription starts at the end.
    // A session has one reader per partition, so the markers come after "lost" if the old session survived.
    await second.subscribeAsync("clean5/#", { qos: 1 });
    await flushLog(node, "clean5/marker", [got]);
    expect(got.messages).toHaveLength(0);
  });

  it("survives a gateway + file engine restart: subscriptions, positions and retained messages persist, offline messages come from the log", async () => {
    const local = await startMqttTestNode({}, { defaultPartitions: 2 });
    try {
      const opts = { protocolVersion: 5 as const, clientId: "restart-me", clean: false, properties: { sessionExpiryInterval: 300 } };
      const first = await connectClient(local.tcpUrl, opts);
      const got1 = collect(first);
      await first.subscribeAsync(["rs/+/t", "rs-other/#"], { qos: 1 });
      const pub = await connectClient(local.tcpUrl);
      await pub.publishAsync("rs/a/t", "before-1", { qos: 1 });
      await pub.publishAsync("rs/b/t", "before-2", { qos: 1 });
      await got1.waitFor(2);
      // MQTT.js sends each PUBACK right after the message event, so both precede DISCONNECT, which the gateway handles after them
      await endClient(first);
      await pub.publishAsync("rs/a/t", "offline-1", { qos: 1 });
      await pub.publishAsync("rs-other/z", "offline-2", { qos: 1 });
      await pub.publishAsync("rs-ret/x", "retained-before-restart", { qos: 1, retain: true });
      await endClient(pub, true);
      await local.restart();
      const pub2 = await connectClient(local.tcpUrl);
      await pub2.publishAsync("rs/c/t", "after-restart", { qos: 1 });
      await pub2.publishAsync("rs/c/ignored", "not matching", { qos: 1 });
      let got2!: ReturnType<typeof collect>;
      const second = await connectClient(local.tcpUrl, opts, (c) => (got2 = collect(c)));
      const msgs = await got2.waitFor(3);
      expect(msgs.map((m) => m.payload).sort()).toEqual(["after-restart", "offline-1", "offline-2"]);
      // live delivery continues on the restored subscriptions
      await pub2.publishAsync("rs/d/t", "live", { qos: 1 });
      await got2.waitFor(4);
      await flushLog(local, "rs/marker/t", [got2]);
      await flushLog(local, "rs-other/marker", [got2]);
      expect(got2.messages.map((m) => m.payload)).not.toContain("before-1");
      expect(got2.messages).toHaveLength(4);
      // the retained index is rebuilt from the log
      const late = await connectClient(local.wsUrl);
      const gotLate = collect(late);
      await late.subscribeAsync("rs-ret/#", { qos: 1 });
      expect((await gotLate.waitFor(1))[0]).toMatchObject({ topic: "rs-ret/x", payload: "retained-before-restart", retain: true });
      await endClient(late, true);
      await endClient(second, true);
      await endClient(pub2, true);
    } finally {
      await local.close();
    }
  });

  it("a client connected during a restart is told 0x8B and resumes after it without replaying what it acknowledged", async () => {
    const local = await startMqttTestNode();
    try {
      const opts = { protocolVersion: 5 as const, clientId: "through-restart", clean: false, properties: { sessionExpiryInterval: 300 } };
      const first = await connectClient(local.tcpUrl, opts);
      const got1 = collect(first);
      await first.subscribeAsync("thr/#", { qos: 1 });
      const reason = new Promise<number | undefined>((resolve) => first.once("disconnect", (p) => resolve(p.reasonCode)));
      const pub = await connectClient(local.tcpUrl);
      for (let i = 0; i < 3; i++) await pub.publishAsync("thr/x", `acked-${i}`, { qos: 1 });
      await got1.waitFor(3);
      await roundTrip(first); // its PUBACKs (sent before) have been handled by the gateway
      await endClient(pub, true);
      await local.restart();
      expect(await reason).toBe(0x8b);
      await endClient(first, true);
      const pub2 = await connectClient(local.tcpUrl);
      await pub2.publishAsync("thr/x", "new-1", { qos: 1 });
      await pub2.publishAsync("thr/y", "new-2", { qos: 1 });
      let got2!: ReturnType<typeof collect>;
      const second = await connectClient(local.tcpUrl, opts, (c) => (got2 = collect(c)));
      await got2.waitFor(2);
      await flushLog(local, "thr/marker", [got2]); // no replay of acked-*, no duplicate
      expect(got2.messages.map((m) => m.payload)).toEqual(["new-1", "new-2"]);
      await endClient(second, true);
      await endClient(pub2, true);
    } finally {
      await local.close();
    }
  });

  it("hands the session over to a new connection with the same client id (old one closed)", async () => {
    const first = await client(node.tcpUrl, { protocolVersion: 5, clientId: "takeover", clean: false, properties: { sessionExpiryInterval: 60 } });
    await first.subscribeAsync("takeover/#", { qos: 1 });
    const disconnected = new Promise<number | undefined>((resolve) => first.once("disconnect", (p) => resolve(p.reasonCode)));
    const second = await client(node.tcpUrl, { protocolVersion: 5, clientId: "takeover", clean: false, properties: { sessionExpiryInterval: 60 } });
    expect(await disconnected).toBe(0x8e);
    const got = collect(second);
    const pub = await client(node.tcpUrl);
    await pub.publishAsync("takeover/x", "to the new owner", { qos: 1 });
    expect((await got.waitFor(1))[0]!.payload).toBe("to the new owner");
  });
});

describe("shared subscriptions", () => {
  it("gives each message to exactly one member of $share/<group>/<filter>, one member per partition (a topic's messages stay with one member), while normal subscribers get all", async () => {
    const members = await Promise.all([0, 1, 2].map((i) => client(i === 1 ? node.wsUrl : node.tcpUrl, { protocolVersion: 5, clientId: `member-${i}` })));
    const gots = members.map((m) => collect(m));
    for (const m of members) await m.subscribeAsync("$share/workers/jobs/#", { qos: 1 });
    const all = await client(node.tcpUrl);
    const gotAll = collect(all);
    await all.subscribeAsync("jobs/#", { qos: 1 });
    const pub = await client(node.tcpUrl);
    for (let i = 0; i < 30; i++) await pub.publishAsync(`jobs/j${i % 5}`, `job-${i}`, { qos: 1 });
    await gotAll.waitFor(30);
    await waitFor(() => gots.reduce((n, g) => n + g.messages.length, 0) >= 30, { timeoutMs: 5000, what: "30 jobs at the members" });
    // each partition's marker reached a member: the group has handed out everything before it; and each member's
    // connection has delivered what was sent to it before
    await flushLog(node, "jobs/marker", gots, { any: true });
    await Promise.all(members.map((m) => roundTrip(m)));
    const received = gots.flatMap((g) => g.messages.map((m) => m.payload));
    expect(received.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `job-${i}`).sort());
    // a consumer group: each partition (so each MQTT topic, the record key) has one owner
    const ownerOf = new Map<string, number>();
    gots.forEach((g, i) => {
      for (const m of g.messages) {
        expect(ownerOf.get(m.topic) ?? i).toBe(i);
        ownerOf.set(m.topic, i);
      }
    });
  });
});

describe("MQTT 5 properties", () => {
  it("round-trips user properties, content type, response topic and correlation data", async () => {
    const sub = await client(node.tcpUrl, { protocolVersion: 5 });
    const got = collect(sub);
    await sub.subscribeAsync("props/#", { qos: 1 });
    const pub = await client(node.wsUrl, { protocolVersion: 5 });
    await pub.publishAsync("props/x", '{"a":1}', {
      qos: 1,
      properties: {
        contentType: "application/json",
        responseTopic: "props/reply",
        correlationData: Buffer.from([1, 2, 3]),
        payloadFormatIndicator: true,
        userProperties: { device: "d42", tag: ["a", "b"] },
      },
    });
    const m = (await got.waitFor(1))[0]!;
    expect(m.properties).toMatchObject({
      contentType: "application/json",
      responseTopic: "props/reply",
      payloadFormatIndicator: true,
      userProperties: { device: "d42", tag: ["a", "b"] },
    });
    expect([...(m.properties!.correlationData as Buffer)]).toEqual([1, 2, 3]);
  });

  it("drops messages whose expiry passed while the session was offline and sends the remaining interval otherwise", async () => {
    const opts = { protocolVersion: 5 as const, clientId: "expiry", clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await client(node.tcpUrl, opts);
    await first.subscribeAsync("exp/#", { qos: 1 });
    await endClient(first);
    const pub = await client(node.tcpUrl, { protocolVersion: 5 });
    await pub.publishAsync("exp/short", "expires", { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync("exp/long", "stays", { qos: 1, properties: { messageExpiryInterval: 100 } });
    const storedBy = Date.now(); // expiry counts from each record's timestamp, at or before this
    // the subject is time itself: the clock must pass 1 s after both (exp/short expired, exp/long has at most 99 s left)
    await waitFor(() => Date.now() > storedBy + 1000, { timeoutMs: 3000, what: "a second to pass offline" });
    let got!: ReturnType<typeof collect>;
    await client(node.tcpUrl, opts, (c) => (got = collect(c)));
    const msgs = await got.waitFor(1);
    await flushLog(node, "exp/marker", [got]);
    expect(got.messages.map((m) => m.payload)).toEqual(["stays"]);
    const left = msgs[0]!.properties!.messageExpiryInterval as number;
    expect(left).toBeGreaterThan(95);
    expect(left).toBeLessThanOrEqual(99);
  });

  it("accepts topic aliases from clients and uses them towards clients that allow them", async () => {
    const sub = await client(node.tcpUrl, { protocolVersion: 5, properties: { topicAliasMaximum: 5 } });
    const got = collect(sub);
    const aliased: number[] = [];
    sub.on("packetreceive", (p) => {
      if (p.cmd === "publish" && p.properties?.topicAlias) aliased.push(p.properties.topicAlias);
    });
    await sub.subscribeAsync("alias/#", { qos: 1 });
    const pub = await client(node.tcpUrl, { protocolVersion: 5 });
    await pub.publishAsync("alias/long/topic/name", "1", { qos: 1, properties: { topicAlias: 3 } });
    await pub.publishAsync("", "2", { qos: 1, properties: { topicAlias: 3 } });
    const msgs = await got.waitFor(2);
    expect(msgs.map((m) => [m.topic, m.payload])).toEqual([
      ["alias/long/topic/name", "1"],
      ["alias/long/topic/name", "2"],
    ]);
    expect(aliased).toEqual([1, 1]);
  });

  it("does not send a message larger than the client's Maximum Packet Size", async () => {
    const sub = await client(node.tcpUrl, { protocolVersion: 5, properties: { maximumPacketSize: 200 } });
    const got = collect(sub);
    await sub.subscribeAsync("maxp/#", { qos: 1 });
    const pub = await client(node.tcpUrl, { protocolVersion: 5 });
    await pub.publishAsync("maxp/big", "x".repeat(500), { qos: 1 });
    await pub.publishAsync("maxp/small", "fits", { qos: 1 });
    expect((await got.waitFor(1))[0]!.payload).toBe("fits");
    await flushLog(node, "maxp/marker", [got]);
    expect(got.messages).toHaveLength(1);
  });

  it("No Local: a client does not get back what it published on a no-local subscription", async () => {
    const c = await client(node.tcpUrl, { protocolVersion: 5, clientId: "nolocal" });
    const got = collect(c);
    await c.subscribeAsync("nl/#", { qos: 1, nl: true });
    const other = await client(node.tcpUrl);
    await c.publishAsync("nl/self", "mine", { qos: 1 });
    await other.publishAsync("nl/other", "theirs", { qos: 1 });
    expect((await got.waitFor(1))[0]!.payload).toBe("theirs");
    await flushLog(node, "nl/marker", [got]);
    expect(got.messages).toHaveLength(1);
  });
});
