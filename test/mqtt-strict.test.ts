/**
 * MQTT strictness where the spec says close (or refuse), and the short ack forms real MQTT 5
 * clients expect. Each case closes only the offending connection; a well-behaved client
 * still gets through afterwards.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import mqttPacket, { type Packet } from "mqtt-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, connectClient, endClient, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor, within } from "./helpers/wait.ts";

let node: MqttTestNode;

beforeAll(async () => {
  node = await startMqttTestNode();
});
afterAll(async () => {
  await node?.close();
});

interface Raw {
  packets: Packet[];
  /** Every byte received, for checking exact encodings. */
  bytes: () => Buffer;
  closed: Promise<void>;
  send(bytes: Buffer): void;
}

async function raw(parserVersion: 4 | 5): Promise<Raw> {
  const socket = net.connect(node.mqttPort, "127.0.0.1");
  const packets: Packet[] = [];
  const chunks: Buffer[] = [];
  const parser = mqttPacket.parser({ protocolVersion: parserVersion });
  parser.on("packet", (p: Packet) => packets.push(p));
  parser.on("error", () => undefined);
  socket.on("data", (d) => {
    chunks.push(d);
    parser.parse(d);
  });
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { packets, bytes: () => Buffer.concat(chunks), closed, send: (b) => socket.write(b) };
}

function connectPacket(version: 4 | 5, extra: Record<string, unknown> = {}): Buffer {
  return mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: version, clientId: `strict-${Math.random()}`, clean: true, keepalive: 0, ...extra } as Packet, { protocolVersion: version });
}

/** Offset of the CONNECT flags byte: fixed header (2, small packets) + "MQTT" (6) + level (1). */
const FLAGS = 9;

async function connected(version: 4 | 5): Promise<Raw> {
  const r = await raw(version);
  r.send(connectPacket(version));
  await waitFor(() => r.packets.some((p) => p.cmd === "connack"), { timeoutMs: 2000, what: "CONNACK" });
  return r;
}

async function stillWorks(): Promise<void> {
  const c = await connectClient(node.tcpUrl, { protocolVersion: 5 });
  await c.publishAsync("strict/ok", "ok", { qos: 1 });
  await endClient(c);
}

describe("CONNECT the spec says to refuse or close", () => {
  it("protocol level 3 with the name MQTT → CONNACK 0x01 (unacceptable protocol version), then close", async () => {
    const r = await raw(4);
    const c = connectPacket(4);
    c[FLAGS - 1] = 3;
    r.send(c);
    await within(r.closed, 3000, "the close");
    expect(r.packets).toEqual([expect.objectContaining({ cmd: "connack", returnCode: 1 })]);
    await stillWorks();
  });

  it("protocol level 5 with the name MQIsdp → refused", async () => {
    const r = await raw(5);
    r.send(mqttPacket.generate({ cmd: "connect", protocolId: "MQIsdp", protocolVersion: 5, clientId: "x", clean: true, keepalive: 0 } as Packet, { protocolVersion: 5 }));
    await within(r.closed, 3000, "the close");
    expect(r.packets).toEqual([expect.objectContaining({ cmd: "connack", reasonCode: 0x84 })]);
  });

  it("will QoS 3 in MQTT 3.1.1 → closed without CONNACK", async () => {
    const r = await raw(4);
    const c = connectPacket(4, { will: { topic: "strict/will", payload: Buffer.from("w"), qos: 1, retain: false } });
    c[FLAGS] |= 0x18;
    r.send(c);
    await within(r.closed, 3000, "the close");
    expect(r.packets).toEqual([]);
    await stillWorks();
  });

  it("will QoS 3 in MQTT 5 → CONNACK 0x81 (malformed packet), then close", async () => {
    const r = await raw(5);
    const c = connectPacket(5, { will: { topic: "strict/will", payload: Buffer.from("w"), qos: 1, retain: false } });
    c[FLAGS] |= 0x18;
    r.send(c);
    await within(r.closed, 3000, "the close");
    expect(r.packets).toEqual([expect.objectContaining({ cmd: "connack", reasonCode: 0x81 })]);
  });

  it("a password without a user name in MQTT 3.1.1 → closed without CONNACK", async () => {
    const r = await raw(4);
    // mqtt-packet will not generate it: generate with user name "u", then cut the user name out
    const withUser = connectPacket(4, { clientId: "pw", username: "u", password: Buffer.from("secret") });
    const userAt = withUser.indexOf(Buffer.from([0, 1, 0x75])); // length-prefixed "u"
    const c = Buffer.concat([withUser.subarray(0, userAt), withUser.subarray(userAt + 3)]);
    c[1] = c[1]! - 3; // remaining length (one byte for a packet this small)
    c[FLAGS] &= ~0x80; // user name flag off, password flag on
    r.send(c);
    await within(r.closed, 3000, "the close");
    expect(r.packets).toEqual([]);
    await stillWorks();
  });
});

describe("packets the spec says are a protocol violation", () => {
  it("SUBSCRIBE with packet identifier 0 → closed (MQTT 5: DISCONNECT 0x82)", async () => {
    const r = await connected(5);
    r.send(mqttPacket.generate({ cmd: "subscribe", messageId: 0, subscriptions: [{ topic: "strict/#", qos: 0 }] } as Packet, { protocolVersion: 5 }));
    await within(r.closed, 3000, "the close");
    expect(r.packets.find((p) => p.cmd === "suback")).toBeUndefined();
    expect(r.packets.find((p) => p.cmd === "disconnect")).toMatchObject({ reasonCode: 0x82 });
  });

  it("UNSUBSCRIBE with packet identifier 0 → closed", async () => {
    const r = await connected(4);
    r.send(mqttPacket.generate({ cmd: "unsubscribe", messageId: 0, unsubscriptions: ["strict/#"] } as Packet, { protocolVersion: 4 }));
    await within(r.closed, 3000, "the close");
    expect(r.packets.find((p) => p.cmd === "unsuback")).toBeUndefined();
  });

  it("QoS 0 PUBLISH with DUP set → closed (MQTT 5: DISCONNECT 0x81), the message is not stored", async () => {
    const watcher = await connectClient(node.tcpUrl, { protocolVersion: 5 });
    const seen = collect(watcher);
    await watcher.subscribeAsync("strict-dup/#", { qos: 1 });
    const r = await connected(5);
    const pub = mqttPacket.generate({ cmd: "publish", topic: "strict-dup/x", payload: Buffer.from("dup"), qos: 0, retain: false, dup: false }, { protocolVersion: 5 });
    pub[0] |= 0x08;
    r.send(pub);
    await within(r.closed, 3000, "the close");
    expect(r.packets.find((p) => p.cmd === "disconnect")).toMatchObject({ reasonCode: 0x81 });
    const ok = await connectClient(node.tcpUrl, { protocolVersion: 5 });
    await ok.publishAsync("strict-dup/x", "after", { qos: 1 });
    await seen.waitFor(1);
    expect(seen.messages.map((m) => m.payload)).toEqual(["after"]);
    await endClient(ok);
    await endClient(watcher);
  });
});

describe("short ack forms (MQTT 5 §3.4.2.1): Success without properties is 2 bytes, as Mosquitto sends", () => {
  it("PUBACK, PUBREC and PUBCOMP to an MQTT 5 publisher, and PUBREL to an MQTT 5 subscriber, have remaining length 2", async () => {
    const r = await connected(5);
    r.send(mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "strict-acks/#", qos: 2 }] } as Packet, { protocolVersion: 5 }));
    await waitFor(() => r.packets.some((p) => p.cmd === "suback"), { what: "SUBACK" });
    r.send(mqttPacket.generate({ cmd: "publish", topic: "strict-acks/a", payload: Buffer.from("1"), qos: 1, messageId: 7, retain: false, dup: false }, { protocolVersion: 5 }));
    r.send(mqttPacket.generate({ cmd: "publish", topic: "strict-acks/b", payload: Buffer.from("2"), qos: 2, messageId: 8, retain: false, dup: false }, { protocolVersion: 5 }));
    await waitFor(() => r.packets.some((p) => p.cmd === "pubrec"), { what: "PUBREC" });
    r.send(mqttPacket.generate({ cmd: "pubrel", messageId: 8 } as Packet, { protocolVersion: 4 }));
    // Our own QoS 2 deliveries come back to us: acknowledge the QoS 2 one to get a PUBREL.
    await waitFor(() => r.packets.filter((p) => p.cmd === "publish").length >= 2, { what: "the two deliveries" });
    const q2 = r.packets.find((p) => p.cmd === "publish" && p.qos === 2) as { messageId: number };
    r.send(mqttPacket.generate({ cmd: "pubrec", messageId: q2.messageId } as Packet, { protocolVersion: 4 }));
    await waitFor(() => r.packets.some((p) => p.cmd === "pubrel") && r.packets.some((p) => p.cmd === "pubcomp"), { what: "PUBREL and PUBCOMP" });
    // Split the byte stream into packets: [first byte, remaining length] of each.
    const bytes = r.bytes();
    const seen: Array<[number, number]> = [];
    for (let at = 0; at < bytes.length; ) {
      let length = 0;
      let shift = 0;
      let i = at + 1;
      for (;;) {
        const b = bytes[i++]!;
        length += (b & 0x7f) << shift;
        shift += 7;
        if ((b & 0x80) === 0) break;
      }
      seen.push([bytes[at]!, length]);
      at = i + length;
    }
    const acks = seen.filter(([first]) => [0x40, 0x50, 0x62, 0x70].includes(first));
    expect(acks.map(([first]) => first).sort((a, b) => a - b)).toEqual([0x40, 0x50, 0x62, 0x70]);
    expect(acks.every(([, length]) => length === 2)).toBe(true);
  });

  it("Debian's paho-mqtt 1.6 (MQTT 5) publishes and receives at QoS 1 and 2 without its network thread failing", async () => {
    const script = `
import sys, time, paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
port = int(sys.argv[1]); got = []; acked = []; subscribed = []
c = mqtt.Client(client_id="paho-strict", protocol=mqtt.MQTTv5)
c.on_message = lambda cl, u, m: got.append((m.topic, m.payload.decode(), m.qos))
c.on_publish = lambda cl, u, mid: acked.append(mid)
c.on_subscribe = lambda cl, u, mid, codes, props: subscribed.append(mid)
c.connect("127.0.0.1", port)
c.loop_start()
c.subscribe("paho-strict/#", qos=2)
deadline = time.time() + 10
while not subscribed and time.time() < deadline:  # polls for the SUBACK (a deadline, not a synchronisation)
    time.sleep(0.01)
for q in (1, 2):
    c.publish("paho-strict/q%d" % q, "m%d" % q, qos=q)
deadline = time.time() + 10
while (len(got) < 2 or len(acked) < 2) and time.time() < deadline:
    time.sleep(0.02)
alive = c._thread is not None and c._thread.is_alive()
c.disconnect(); c.loop_stop()
print("GOT", sorted(got), "ACKED", len(acked), "ALIVE", alive)
`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn("/usr/bin/python3", ["-c", script, String(node.mqttPort)]);
      let text = "";
      child.stdout.on("data", (d: Buffer) => (text += d.toString()));
      child.stderr.on("data", (d: Buffer) => (text += d.toString()));
      child.on("error", reject);
      child.on("exit", () => resolve(text));
    });
    expect(out).toContain("GOT [('paho-strict/q1', 'm1', 1), ('paho-strict/q2', 'm2', 2)] ACKED 2 ALIVE True");
  });
});
