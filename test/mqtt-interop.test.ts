import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import { collect, connectClient, endClient, flushLog, roundTrip, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { within } from "./helpers/wait.ts";

let node: MqttTestNode;
const clients: MqttClient[] = [];
async function client(url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  const c = await connectClient(url, options);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  node = await startMqttTestNode({}, { defaultPartitions: 2 });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => endClient(c, true)));
  await node?.close();
});

const transports = [
  ["TCP", () => node.tcpUrl],
  ["WebSocket", () => node.wsUrl],
] as const;

describe.each(transports)("MQTT.js over %s", (_name, url) => {
  for (const protocolVersion of [4, 5] as const) {
    it(`round-trips QoS 0, 1 and 2 with MQTT ${protocolVersion === 4 ? "3.1.1" : "5"} at min(published, granted) QoS`, async () => {
      const tag = `rt${protocolVersion}${_name}`;
      const sub = await client(url(), { protocolVersion });
      const got = collect(sub);
      const granted = await sub.subscribeAsync(`${tag}/+/temp`, { qos: 2 });
      expect(granted[0]!.qos).toBe(2);
      const pub = await client(url(), { protocolVersion });
      for (const qos of [0, 1, 2] as const) await pub.publishAsync(`${tag}/d${qos}/temp`, `v${qos}`, { qos });
      await pub.publishAsync(`${tag}/d9/humidity`, "filtered out", { qos: 1 });
      const msgs = await got.waitFor(3);
      expect(msgs.map((m) => [m.topic, m.payload, m.qos]).sort()).toEqual([
        [`${tag}/d0/temp`, "v0", 0],
        [`${tag}/d1/temp`, "v1", 1],
        [`${tag}/d2/temp`, "v2", 2],
      ]);
      await flushLog(node, `${tag}/marker/temp`, [got]); // humidity filtered out, nothing twice
      expect(got.messages).toHaveLength(3);
      const sub1 = await client(url(), { protocolVersion });
      const got1 = collect(sub1);
      await sub1.subscribeAsync(`${tag}/#`, { qos: 1 });
      await pub.publishAsync(`${tag}/d2/temp`, "downgraded", { qos: 2 });
      expect((await got1.waitFor(1))[0]).toMatchObject({ topic: `${tag}/d2/temp`, qos: 1 });
    });
  }
});

describe("topics and wildcards", () => {
  it("matches + and # across levels, # includes the parent, and keeps per-device order", async () => {
    const sub = await client(node.tcpUrl);
    const got = collect(sub);
    await sub.subscribeAsync(["wild/+/a", "wild/x/#"], { qos: 1 });
    const pub = await client(node.tcpUrl);
    for (let i = 0; i < 20; i++) await pub.publishAsync("wild/d1/a", String(i), { qos: 1 });
    await pub.publishAsync("wild/x", "parent", { qos: 1 });
    await pub.publishAsync("wild/x/y/z", "deep", { qos: 1 });
    await pub.publishAsync("wild/d1/a/b", "too deep for +", { qos: 1 });
    const msgs = await got.waitFor(22);
    expect(msgs.filter((m) => m.topic === "wild/d1/a").map((m) => m.payload)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect(msgs.filter((m) => m.topic !== "wild/d1/a").map((m) => m.topic).sort()).toEqual(["wild/x", "wild/x/y/z"]);
    await flushLog(node, "wild/x/marker", [got]); // "too deep for +" not delivered
    expect(got.messages).toHaveLength(22);
  });

  it("maps first levels that are not log topic names ($SYS, empty, spaces, unicode) and # does not match $-topics", async () => {
    const hash = await client(node.tcpUrl);
    const gotHash = collect(hash);
    // "$SYS/marker" gives this session a reader on the $SYS log topic: the markers below then prove that
    // $SYS/broker/load was offered to it, and only "#" could have taken it
    await hash.subscribeAsync(["#", "$SYS/marker"], { qos: 1 });
    const plusFirst = await client(node.tcpUrl);
    const gotPlus = collect(plusFirst);
    await plusFirst.subscribeAsync("+/odd", { qos: 1 });
    const sys = await client(node.tcpUrl);
    const gotSys = collect(sys);
    await sys.subscribeAsync(["$SYS/#", "/lead/#", "ünï côde/#"], { qos: 1 });
    const pub = await client(node.tcpUrl);
    await pub.publishAsync("$SYS/broker/load", "sys", { qos: 1 });
    await pub.publishAsync("/lead/x", "empty-first", { qos: 1 });
    await pub.publishAsync("ünï côde/y", "unicode", { qos: 1 });
    await pub.publishAsync("plain/odd", "plain", { qos: 1 });
    const sysMsgs = await gotSys.waitFor(3);
    expect(sysMsgs.map((m) => m.topic).sort()).toEqual(["$SYS/broker/load", "/lead/x", "ünï côde/y"].sort());
    const hashMsgs = await gotHash.waitFor(3);
    await flushLog(node, "$SYS/marker", [gotHash]);
    expect(gotHash.messages.map((m) => m.topic)).not.toContain("$SYS/broker/load");
    expect(hashMsgs.map((m) => m.topic)).toEqual(expect.arrayContaining(["/lead/x", "ünï côde/y", "plain/odd"]));
    expect((await gotPlus.waitFor(1)).map((m) => m.topic)).toEqual(["plain/odd"]);
    const topics = await node.node.engine.listTopics();
    expect(topics).toEqual(expect.arrayContaining(["__24SYS", "_", "__C3_BCn_C3_AF_20c_C3_B4de", "plain"]));
  });

  it("delivers a message matching overlapping subscriptions once, at the highest granted QoS", async () => {
    const sub = await client(node.tcpUrl, { protocolVersion: 5 });
    const got = collect(sub);
    await sub.subscribeAsync("overlap/a/#", { qos: 0 });
    await sub.subscribeAsync("overlap/+/b", { qos: 2 });
    const pub = await client(node.tcpUrl);
    await pub.publishAsync("overlap/a/b", "once", { qos: 2 });
    const msgs = await got.waitFor(1);
    await flushLog(node, "overlap/a/marker", [got]);
    expect(got.messages).toHaveLength(1);
    expect(msgs[0]).toMatchObject({ topic: "overlap/a/b", qos: 2 });
  });

  it("stops delivering after UNSUBSCRIBE", async () => {
    const sub = await client(node.tcpUrl, { protocolVersion: 5 });
    const got = collect(sub);
    // "unsub/marker" keeps a reader on the `unsub` log topic after the UNSUBSCRIBE: the markers then prove "after" was offered
    await sub.subscribeAsync(["unsub/t", "unsub/marker"], { qos: 1 });
    const pub = await client(node.tcpUrl);
    await pub.publishAsync("unsub/t", "before", { qos: 1 });
    await got.waitFor(1);
    await sub.unsubscribeAsync("unsub/t");
    await pub.publishAsync("unsub/t", "after", { qos: 1 });
    await flushLog(node, "unsub/marker", [got]);
    expect(got.messages.map((m) => m.payload)).toEqual(["before"]);
  });
});

describe("retained messages", () => {
  it("delivers the last retained message per topic on subscribe, and an empty retained payload clears it", async () => {
    const pub = await client(node.tcpUrl, { protocolVersion: 5 });
    await pub.publishAsync("ret/a", "first", { qos: 1, retain: true });
    await pub.publishAsync("ret/a", "second", { qos: 1, retain: true });
    await pub.publishAsync("ret/b", "bee", { qos: 0, retain: true });
    await pub.publishAsync("ret/c", "gone", { qos: 1, retain: true });
    // the retained index is updated when the gateway handles each PUBLISH, in order: the last PUBACK covers the QoS 0 one too
    await pub.publishAsync("ret/c", "", { qos: 1, retain: true });
    const sub = await client(node.wsUrl, { protocolVersion: 5 });
    const got = collect(sub);
    await sub.subscribeAsync("ret/#", { qos: 1 });
    const msgs = await got.waitFor(2);
    await roundTrip(sub); // retained messages go out right after the SUBACK, before anything the gateway answers later
    expect(got.messages).toHaveLength(2);
    expect(msgs.map((m) => [m.topic, m.payload, m.retain, m.qos]).sort()).toEqual([
      ["ret/a", "second", true, 1],
      ["ret/b", "bee", true, 0],
    ]);
    // Retain Handling 2: no retained messages.
    const sub2 = await client(node.tcpUrl, { protocolVersion: 5 });
    const got2 = collect(sub2);
    await sub2.subscribeAsync("ret/#", { qos: 1, rh: 2 });
    await roundTrip(sub2);
    expect(got2.messages).toHaveLength(0);
  });
});

interface Run {
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Resolves once a stdout line matches `re` (rejects if the process ends first). */
  line(re: RegExp): Promise<string>;
}

function start(cmd: string, args: string[], timeoutMs = 10_000): Run {
  const child = spawn(cmd, args);
  let stdout = "";
  let stderr = "";
  const watchers: Array<() => void> = [];
  child.stdout.on("data", (d) => {
    stdout += d;
    for (const w of watchers.splice(0)) w();
  });
  child.stderr.on("data", (d) => (stderr += d));
  const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs); // a deadline: a stuck tool fails the test
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
      for (const w of watchers.splice(0)) w();
    });
  });
  const line = (re: RegExp): Promise<string> =>
    new Promise((resolve, reject) => {
      let ended = false;
      void done.then(() => (ended = true));
      const check = (): void => {
        const hit = stdout.split("\n").find((l) => re.test(l));
        if (hit !== undefined) resolve(hit);
        else if (ended || child.exitCode !== null) reject(new Error(`${cmd} ended without a line matching ${re}: ${stdout} ${stderr}`));
        else watchers.push(check);
      };
      check();
    });
  return { done, line };
}

const run = (cmd: string, args: string[], timeoutMs = 10_000) => start(cmd, args, timeoutMs).done;

/** mosquitto_sub's -d debug lines (on stdout, between the messages); line-buffered by stdbuf so they arrive as they happen. */
const DEBUG_LINE = /^(Client \S+ (sending|received) |Subscribed \(mid: )/;

describe("mosquitto_pub / mosquitto_sub", () => {
  for (const [version, qos] of [
    ["mqttv311", 0],
    ["mqttv311", 1],
    ["mqttv5", 2],
    ["mqttv5", 1],
  ] as const) {
    it(`round-trips with ${version} at QoS ${qos}`, async () => {
      const topic = `mosq/${version}/q${qos}`;
      const port = String(node.mqttPort);
      const sub = start("/usr/bin/stdbuf", ["-oL", "/usr/bin/mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", port, "-V", version, "-t", `mosq/${version}/#`, "-q", String(qos), "-C", "3", "-v", "-W", "8"]);
      await within(sub.line(/received SUBACK/), 8000, "mosquitto_sub's SUBACK");
      for (let i = 0; i < 3; i++) {
        const r = await run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-V", version, "-t", topic, "-q", String(qos), "-m", `m${i}`]);
        expect(r.code).toBe(0);
      }
      const out = await sub.done;
      expect(out.code).toBe(0);
      expect(out.stdout.trim().split("\n").filter((l) => !DEBUG_LINE.test(l))).toEqual([`${topic} m0`, `${topic} m1`, `${topic} m2`]);
    });
  }

  it("mosquitto_sub receives a retained message published by MQTT.js, and MQTT.js receives from mosquitto_pub", async () => {
    const pub = await client(node.tcpUrl);
    await pub.publishAsync("mosq-ret/x", "kept", { qos: 1, retain: true });
    const port = String(node.mqttPort);
    const out = await run("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", port, "-t", "mosq-ret/#", "-C", "1", "-v", "-W", "5"]);
    expect(out.stdout.trim()).toBe("mosq-ret/x kept");
    const sub = await client(node.wsUrl);
    const got = collect(sub);
    await sub.subscribeAsync("mosq-in/#", { qos: 1 });
    const r = await run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "-t", "mosq-in/dev", "-q", "1", "-m", "hi from mosquitto_pub"]);
    expect(r.code).toBe(0);
    expect((await got.waitFor(1))[0]).toMatchObject({ topic: "mosq-in/dev", payload: "hi from mosquitto_pub" });
  });
});
