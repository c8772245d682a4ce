/**
 * The MQTT bridge against a real Mosquitto: what devices publish there (MQTT.js and
 * Debian's mosquitto_pub) arrives in Tributary keyed by MQTT topic, in order per MQTT topic;
 * and the sink bridges records back out, the key being the MQTT topic.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnConnect, type ConnectChild, nodeApi } from "./helpers/connect-process.ts";
import { startMosquitto, type Mosquitto } from "./helpers/mosquitto.ts";
import { spawnFileNode, type NodeChild } from "./helpers/node-process.ts";
import { waitFor } from "./helpers/wait.ts";

const run = promisify(execFile);
let node: NodeChild;
let broker: Mosquitto;
let dir: string;
const children: ConnectChild[] = [];
const clients: MqttClient[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "connect-mqtt-"));
  [node, broker] = await Promise.all([spawnFileNode(), startMosquitto()]);
});
afterAll(async () => {
  for (const c of children) await c.kill();
  for (const c of clients) await c.endAsync(true);
  await node?.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function http(method: string, path: string, body?: unknown): Promise<any> {
  return nodeApi(node.httpPort, method, path, body);
}

/** Every record of `topic`, all partitions, in offset order per partition. */
async function readAll(topic: string): Promise<Array<{ partition: number; offset: number; key: string; value: string; headers: Record<string, string> }>> {
  const { partitions } = await http("GET", `/topics/${topic}`);
  const out = [];
  for (let p = 0; p < partitions; p++) {
    let offset = 0;
    for (;;) {
      const page = await http("GET", `/topics/${topic}/partitions/${p}/records?offset=${offset}&max=1000`);
      out.push(...page.records.map((r: any) => ({ ...r, partition: p })));
      if (page.records.length === 0 || page.nextOffset >= page.endOffset) break;
      offset = page.nextOffset;
    }
  }
  return out;
}

async function device(id: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(broker.url, { clientId: id, protocolVersion: 5 });
  clients.push(c);
  return c;
}

describe("MQTT bridge", () => {
  for (const round of [1, 2, 3]) {
    it(`ingests what devices publish to Mosquitto, keyed by MQTT topic and in order per MQTT topic, and bridges records back out (run ${round})`, async () => {
      const topic = `devices-${round}`;
      await http("POST", "/topics", { name: topic, partitions: 3 });
      await http("POST", "/topics", { name: `commands-${round}`, partitions: 2 });
      const yaml = `connectors:
  - name: bridge-in-${round}
    type: mqtt-source
    broker: ${broker.url}
    subscribe: ["site${round}/#"]
    topic: ${topic}
    qos: 1
  - name: bridge-out-${round}
    type: mqtt-sink
    topics: [commands-${round}]
    broker: ${broker.url}
    qos: 1
`;
      const connect = await spawnConnect(join(dir, `mqtt-${round}.yaml`), yaml, `http://127.0.0.1:${node.httpPort}`);
      children.push(connect);

      // The bridge's subscription is in place once a retained probe comes through.
      const probe = await device(`probe-${round}`);
      await probe.publishAsync(`site${round}/ready`, "1", { qos: 1, retain: true });
      await waitFor(async () => (await readAll(topic)).some((r) => r.key === `site${round}/ready`), { timeoutMs: 20_000, what: "the probe through the bridge" });

      const N = 150;
      const devices = await Promise.all(["d1", "d2", "d3", "d4"].map((d) => device(`${d}-${round}`)));
      await Promise.all(
        devices.map(async (c, i) => {
          for (let seq = 0; seq < N; seq++) {
            const payload = JSON.stringify({ seq });
            if (seq % 2 === 0) await c.publishAsync(`site${round}/d${i + 1}/temp`, payload, { qos: 1, properties: { contentType: "application/json" } });
            else void c.publish(`site${round}/d${i + 1}/temp`, payload, { qos: 1, properties: { contentType: "application/json" } });
          }
        }),
      );
      await run("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(broker.port), "-q", "1", "-t", `site${round}/cli/status`, "-m", "online"]);

      await waitFor(async () => (await readAll(topic)).length >= 1 + 4 * N + 1, { timeoutMs: 30_000, what: `${4 * N + 2} records` });
      const records = await readAll(topic);
      const byKey = new Map<string, number[]>();
      for (const r of records) {
        if (!r.key.endsWith("/temp")) continue;
        const list = byKey.get(r.key) ?? [];
        list.push((JSON.parse(r.value) as { seq: number }).seq);
        byKey.set(r.key, list);
        expect(r.headers["content-type"]).toBe("application/json"); // the MQTT 5 Content Type
      }
      expect([...byKey.keys()].sort()).toEqual([1, 2, 3, 4].map((i) => `site${round}/d${i}/temp`));
      // One MQTT topic → one key → one partition, in publish order, each message once (no crash here).
      for (const [key, seqs] of byKey) expect(seqs, key).toEqual(Array.from({ length: N }, (_, i) => i));
      expect(records.find((r) => r.key === `site${round}/cli/status`)?.value).toBe("online");

      // The other way: records keyed by MQTT topic go out to Mosquitto subscribers, in order.
      const listener = await device(`listener-${round}`);
      const got: string[] = [];
      listener.on("message", (t, payload) => got.push(`${t}=${payload.toString()}`));
      await listener.subscribeAsync(`out${round}/#`, { qos: 1 });
      const out = Array.from({ length: 50 }, (_, i) => ({ key: `out${round}/valve/${i % 2}`, value: `cmd-${i}` }));
      await http("POST", `/topics/commands-${round}/records`, { records: out });
      await waitFor(() => got.length >= 50, { timeoutMs: 20_000, what: "50 commands at the MQTT subscriber" });
      for (const valve of [0, 1]) {
        const seen = got.filter((g) => g.startsWith(`out${round}/valve/${valve}=`));
        expect(seen).toEqual(out.filter((o) => o.key.endsWith(`/${valve}`)).map((o) => `${o.key}=${o.value}`));
      }
      expect(await connect.stop()).toBe(0);
    }, 60_000);
  }

  for (const round of [1, 2, 3]) {
    it(`loses nothing when the bridge is SIGKILLed while a device publishes: the remote session keeps the rest, order per MQTT topic holds (run ${round})`, async () => {
      const topic = `crash-${round}`;
      await http("POST", "/topics", { name: topic, partitions: 2 });
      const yaml = `connectors:
  - name: crash-in-${round}
    type: mqtt-source
    broker: ${broker.url}
    subscribe: ["crash${round}/#"]
    topic: ${topic}
    qos: 1
`;
      const config = join(dir, `crash-${round}.yaml`);
      const first = await spawnConnect(config, yaml, `http://127.0.0.1:${node.httpPort}`);
      children.push(first);
      const probe = await device(`crash-probe-${round}`);
      await probe.publishAsync(`crash${round}/ready`, "1", { qos: 1, retain: true });
      await waitFor(async () => (await readAll(topic)).some((r) => r.key === `crash${round}/ready`), { timeoutMs: 20_000, what: "the probe through the bridge" });

      const N = 300;
      const sensor = await device(`crash-sensor-${round}`);
      const publishing = (async () => {
        for (let seq = 0; seq < N; seq++) await sensor.publishAsync(`crash${round}/s1/temp`, JSON.stringify({ seq }), { qos: 1 });
      })();
      await waitFor(async () => (await readAll(topic)).length >= 80, { timeoutMs: 20_000, what: "80 records before the kill" });
      await first.kill();
      await publishing; // the rest waits in Mosquitto, in the bridge's persistent session
      const second = await spawnConnect(config, yaml, `http://127.0.0.1:${node.httpPort}`);
      children.push(second);
      await waitFor(async () => new Set((await readAll(topic)).filter((r) => r.key.endsWith("/temp")).map((r) => r.value)).size >= N, { timeoutMs: 30_000, what: `all ${N} messages` });

      const seqs = (await readAll(topic)).filter((r) => r.key === `crash${round}/s1/temp`).map((r) => (JSON.parse(r.value) as { seq: number }).seq);
      // At-least-once: the messages in flight at the kill (taken from Mosquitto, not yet
      // acknowledged to it) come again, as one run in order; nothing is missing or reordered.
      let highest = -1;
      const fresh: number[] = [];
      const replayed: number[] = [];
      for (const seq of seqs) {
        if (seq > highest) fresh.push((highest = seq));
        else replayed.push(seq);
      }
      expect(fresh).toEqual(Array.from({ length: N }, (_, i) => i));
      expect(replayed).toEqual(Array.from({ length: replayed.length }, (_, i) => replayed[0]! + i));
      // at most Mosquitto's in-flight window towards the bridge (max_inflight_messages, 20)
      expect(replayed.length).toBeLessThanOrEqual(20);
      expect(await second.stop()).toBe(0);
    }, 60_000);
  }
});
