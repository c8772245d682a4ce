/**
 * Records an MQTT session cannot take never stall it: a header MQTT cannot carry as a
 * user property (U+0000, control characters, not UTF-8) is left out of that delivery and
 * counted; a record larger than the client's Maximum Packet Size is skipped and counted.
 * Proved with Debian's mosquitto_sub (MQTT 5, persistent session, QoS 1, a child process) and
 * MQTT.js against a real node, records produced through the broker.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, connectClient, endClient, flushLog, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { within } from "./helpers/wait.ts";

let node: MqttTestNode;
const enc = new TextEncoder();

beforeAll(async () => {
  node = await startMqttTestNode();
});

afterAll(async () => {
  await node?.close();
});

async function counter(name: "mqttDroppedProperties" | "mqttUndeliverableRecords", reason?: string): Promise<number> {
  const metric = await node.node.broker.metrics[name].get();
  return metric.values.filter((v) => reason === undefined || v.labels.reason === reason).reduce((n, v) => n + v.value, 0);
}

async function produce(logTopic: string, records: Array<{ key: string; value: string | Uint8Array; headers?: Record<string, Uint8Array> }>): Promise<void> {
  await node.node.broker.produce(
    logTopic,
    records.map((r) => ({ key: enc.encode(r.key), value: typeof r.value === "string" ? enc.encode(r.value) : r.value, headers: r.headers ?? {} })),
  );
}

/** A mosquitto_sub child with -d: its output lines as they come (stdbuf: line-buffered). */
class MosquittoSub {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  #watchers: Array<() => void> = [];

  constructor(args: string[]) {
    this.child = spawn("/usr/bin/stdbuf", ["-oL", "/usr/bin/mosquitto_sub", "-d", ...args]);
    this.child.stdout.on("data", (d) => {
      this.stdout += d;
      for (const w of this.#watchers.splice(0)) w();
    });
    this.child.stderr.on("data", (d) => {
      this.stdout += d;
      for (const w of this.#watchers.splice(0)) w();
    });
    this.child.on("close", () => {
      for (const w of this.#watchers.splice(0)) w();
    });
  }

  lines(re: RegExp): string[] {
    return this.stdout.split("\n").filter((l) => re.test(l));
  }

  /** Resolves once `check()` holds, re-checked on every output; rejects when the process ends first. */
  until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return within(
      new Promise<void>((resolve, reject) => {
        const test = (): void => {
          if (check()) resolve();
          else if (this.child.exitCode !== null || this.child.signalCode !== null) reject(new Error(`mosquitto_sub ended before ${what}: ${this.stdout}`));
          else this.#watchers.push(test);
        };
        test();
      }),
      timeoutMs,
      `${what}; mosquitto_sub said: ${this.stdout.slice(-2000)}`,
    );
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.child.once("close", () => resolve()));
    this.child.kill("SIGTERM");
    return closed;
  }
}

describe("records an MQTT session cannot encode", () => {
  it("mosquitto_sub (MQTT 5, persistent session) gets the good records after one whose header holds U+0000, without reconnecting", async () => {
    const id = `undeliv-mosq-${process.pid}`;
    const sub = new MosquittoSub(["-h", "127.0.0.1", "-p", String(node.mqttPort), "-V", "mqttv5", "-c", "-i", id, "-q", "1", "-t", "nul/#", "-v"]);
    try {
      await sub.until(() => sub.lines(/received SUBACK/).length > 0, 8000, "mosquitto_sub's SUBACK");
      const dropped = await counter("mqttDroppedProperties");
      await produce("nul", [
        { key: "nul/bad", value: "with-nul", headers: { h: enc.encode("a\u0000b"), ok: enc.encode("fine") } },
        { key: "nul/bad", value: "with-control", headers: { "x\u0001": enc.encode("v") } },
        { key: "nul/bad", value: "not-utf8", headers: { h: new Uint8Array([0xff, 0xfe]), "content-type": enc.encode("x") } },
        { key: "nul/good", value: "good-1" },
        { key: "nul/good", value: "good-2" },
        { key: "nul/good", value: "good-3" },
      ]);
      await sub.until(() => sub.lines(/^nul\/good good-3$/).length > 0, 8000, "the good records after the bad ones");
      expect(sub.lines(/^nul\/good good-\d$/)).toEqual(["nul/good good-1", "nul/good good-2", "nul/good good-3"]);
      // the records with bad headers arrived too, without those properties
      expect(sub.lines(/^nul\/bad /)).toEqual(["nul/bad with-nul", "nul/bad with-control", "nul/bad not-utf8"]);
      // one connection: the session never looped connect → subscribe → drop
      expect(sub.lines(/sending CONNECT/)).toHaveLength(1);
      expect(await counter("mqttDroppedProperties")).toBeGreaterThanOrEqual(dropped + 3);
    } finally {
      await sub.stop();
    }
    // the persistent session resumes after the good records: nothing is sent again
    const again = new MosquittoSub(["-h", "127.0.0.1", "-p", String(node.mqttPort), "-V", "mqttv5", "-c", "-i", id, "-q", "1", "-t", "nul/#", "-v"]);
    try {
      await again.until(() => again.lines(/received CONNACK/).length > 0, 8000, "the resumed session's CONNACK");
      await produce("nul", [{ key: "nul/good", value: "after-restart" }]);
      await again.until(() => again.lines(/^nul\/good after-restart$/).length > 0, 8000, "the record produced after the resume");
      expect(again.lines(/^nul\//)).toEqual(["nul/good after-restart"]);
      expect(again.lines(/sending CONNECT/)).toHaveLength(1);
    } finally {
      await again.stop();
    }
  });

  it("MQTT.js (MQTT 5) gets the record without the properties MQTT cannot carry, the others kept", async () => {
    const client = await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: `undeliv-js-${process.pid}` });
    try {
      const got = collect(client);
      await client.subscribeAsync("nulj/#", { qos: 1 });
      await produce("nulj", [
        { key: "nulj/a", value: "one", headers: { bad: enc.encode("x\u0000"), good: enc.encode("kept"), "content-type": enc.encode("text/\u0000plain") } },
        // `mqtt.content-type`: how records stored before the content-type convention carry it.
        { key: "nulj/a", value: "two", headers: { "mqtt.response-topic": enc.encode("reply/+"), "mqtt.content-type": enc.encode("text/plain") } },
      ]);
      await got.waitFor(2);
      expect(got.messages.map((m) => m.payload)).toEqual(["one", "two"]);
      expect(got.messages[0]!.properties?.userProperties).toEqual({ good: "kept" });
      expect(got.messages[0]!.properties?.contentType).toBeUndefined();
      expect(got.messages[1]!.properties?.responseTopic).toBeUndefined();
      expect(got.messages[1]!.properties?.contentType).toBe("text/plain");
      expect(got.messages[1]!.properties?.payloadFormatIndicator).toBe(true); // text, valid UTF-8
    } finally {
      await endClient(client);
    }
  });

  it("a record larger than the client's Maximum Packet Size is skipped and counted, and the records after it arrive", async () => {
    const client = await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: `undeliv-size-${process.pid}`, clean: false, properties: { maximumPacketSize: 1024, sessionExpiryInterval: 60 } });
    try {
      const got = collect(client);
      await client.subscribeAsync("big/#", { qos: 1 });
      const before = await counter("mqttUndeliverableRecords", "too-large");
      await produce("big", [
        { key: "big/a", value: "small-1" },
        { key: "big/a", value: "x".repeat(4096) },
        { key: "big/a", value: "small-2" },
      ]);
      await got.until(() => got.messages.some((m) => m.payload === "small-2"), 5000, "the record after the large one");
      await flushLog(node, "big/marker", [got]);
      expect(got.messages.map((m) => m.payload)).toEqual(["small-1", "small-2"]);
      expect(await counter("mqttUndeliverableRecords", "too-large")).toBe(before + 1);
    } finally {
      await endClient(client);
    }
  });

  it("exports the undeliverable counter for every reason from zero", async () => {
    const text = await node.node.broker.metrics.expose();
    expect(text).toMatch(/tributary_mqtt_undeliverable_records_total\{reason="too-large"\} \d+/);
    expect(text).toMatch(/tributary_mqtt_undeliverable_records_total\{reason="unencodable"\} \d+/);
    expect(text).toMatch(/tributary_mqtt_dropped_properties_total \d+/);
  });
});
