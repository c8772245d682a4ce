import net from "node:net";
import fc from "fast-check";
import mqttPacket, { type Packet } from "mqtt-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import { collect, connectClient, endClient, flushLog, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor, within } from "./helpers/wait.ts";

let node: MqttTestNode;
let observer: MqttClient;
let observed: ReturnType<typeof collect>;
let probeCount = 0;

beforeAll(async () => {
  node = await startMqttTestNode({ maxPacketBytes: 1024, receiveMaximum: 10 });
  observer = await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: "observer" });
  observed = collect(observer);
  await observer.subscribeAsync("probe/#", { qos: 1 });
});
afterAll(async () => {
  if (observer) await endClient(observer, true);
  await node?.close();
});

/** A well-behaved client still gets through, and the long-lived observer connection still works. */
async function brokerStillWorks(): Promise<void> {
  const n = ++probeCount;
  const c = await connectClient(node.tcpUrl, { protocolVersion: 4 });
  await c.publishAsync(`probe/${n}`, `probe-${n}`, { qos: 1 });
  await endClient(c);
  const msgs = await observed.waitFor(n);
  expect(msgs.map((m) => m.payload)).toContain(`probe-${n}`);
}

interface Raw {
  socket: net.Socket;
  packets: Packet[];
  closed: Promise<void>;
  send(bytes: Buffer | Uint8Array | number[]): void;
}

async function raw(version: 4 | 5 | null, parserVersion: 4 | 5 = version ?? 5): Promise<Raw> {
  const socket = net.connect(node.mqttPort, "127.0.0.1");
  socket.setNoDelay(true);
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: parserVersion });
  parser.on("packet", (p: Packet) => packets.push(p));
  parser.on("error", () => undefined);
  socket.on("data", (d) => parser.parse(d));
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const r: Raw = { socket, packets, closed, send: (b) => socket.write(Buffer.from(b as Uint8Array)) };
  if (version !== null) {
    r.send(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: version, clientId: `raw-${Math.random()}`, clean: true, keepalive: 0 }, { protocolVersion: version }));
    await waitFor(() => packets.some((p) => p.cmd === "connack"), { timeoutMs: 2000, what: "CONNACK", intervalMs: 5 });
  }
  return r;
}

async function expectClosedWith(r: Raw, reasonCode: number | null): Promise<void> {
  await within(r.closed, 3000, "the gateway to close the connection");
  const disconnect = r.packets.find((p) => p.cmd === "disconnect") as { reasonCode?: number } | undefined;
  if (reasonCode === null) expect(disconnect).toBeUndefined();
  else expect(disconnect?.reasonCode).toBe(reasonCode);
}

const v5 = { protocolVersion: 5 };

describe("bad input closes only the offending connection (MQTT 5 reason codes)", () => {
  it("bad remaining length (5-byte variable integer) → DISCONNECT 0x81", async () => {
    const r = await raw(5);
    r.send([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]);
    await expectClosedWith(r, 0x81);
    await brokerStillWorks();
  });

  it("unknown (reserved) packet type 0 → DISCONNECT 0x81", async () => {
    const r = await raw(5);
    r.send([0x00, 0x00]);
    await expectClosedWith(r, 0x81);
    await brokerStillWorks();
  });

  it("invalid reserved header flags (SUBSCRIBE with flags 0) → DISCONNECT 0x81", async () => {
    const r = await raw(5);
    const sub = mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "a", qos: 0 }] }, v5);
    sub[0] = 0x80; // flags must be 0b0010
    r.send(sub);
    await expectClosedWith(r, 0x81);
    await brokerStillWorks();
  });

  it("PUBLISH topic that is not valid UTF-8 → DISCONNECT 0x81", async () => {
    const r = await raw(5);
    const pub = mqttPacket.generate({ cmd: "publish", topic: "ab", payload: Buffer.from("x"), qos: 0, retain: false, dup: false }, v5);
    const at = pub.indexOf(Buffer.from("ab"));
    pub[at] = 0xc3;
    pub[at + 1] = 0x28; // invalid 2-byte sequence
    r.send(pub);
    await expectClosedWith(r, 0x81);
    await brokerStillWorks();
  });

  it("wildcard in a PUBLISH topic → DISCONNECT 0x90", async () => {
    const r = await raw(5);
    r.send(mqttPacket.generate({ cmd: "publish", topic: "probe/+/x", payload: Buffer.from("x"), qos: 1, messageId: 1, retain: false, dup: false }, v5));
    await expectClosedWith(r, 0x90);
    await brokerStillWorks();
  });

  it("packet over the maximum packet size → DISCONNECT 0x95, before the payload is even sent", async () => {
    const r = await raw(5);
    const pub = mqttPacket.generate({ cmd: "publish", topic: "probe/big", payload: Buffer.alloc(4000), qos: 0, retain: false, dup: false }, v5);
    r.send(pub.subarray(0, 20)); // header announces 4000+ bytes
    await expectClosedWith(r, 0x95);
    const whole = await raw(5);
    whole.send(pub); // the whole oversized packet in one write
    await expectClosedWith(whole, 0x95);
    await flushLog(node, "probe/marker", [observed]); // had it been stored, it would come before the markers
    expect(observed.messages.map((m) => m.topic)).not.toContain("probe/big");
    await brokerStillWorks();
  });

  it("second CONNECT → DISCONNECT 0x82", async () => {
    const r = await raw(5);
    r.send(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clientId: "again", clean: true, keepalive: 0 }, v5));
    await expectClosedWith(r, 0x82);
    await brokerStillWorks();
  });

  it("a packet before CONNECT → connection closed without CONNACK", async () => {
    const r = await raw(null);
    r.send(mqttPacket.generate({ cmd: "publish", topic: "probe/early", payload: Buffer.from("x"), qos: 0, retain: false, dup: false }));
    await expectClosedWith(r, null);
    expect(r.packets).toEqual([]);
    await brokerStillWorks();
  });

  it("more QoS 1 PUBLISH in flight than Receive Maximum → DISCONNECT 0x93", async () => {
    const r = await raw(5);
    const connack = r.packets.find((p) => p.cmd === "connack") as { properties?: { receiveMaximum?: number } };
    expect(connack.properties?.receiveMaximum).toBe(10);
    const burst = Buffer.concat(
      Array.from({ length: 30 }, (_, i) => mqttPacket.generate({ cmd: "publish", topic: "burst/x", payload: Buffer.from(String(i)), qos: 1, messageId: i + 1, retain: false, dup: false }, v5)),
    );
    r.send(burst);
    await expectClosedWith(r, 0x93);
    await brokerStillWorks();
  });

  it("server-only packet (SUBACK) from a client → DISCONNECT 0x82", async () => {
    const r = await raw(5);
    r.send(mqttPacket.generate({ cmd: "suback", messageId: 1, granted: [0] }, v5));
    await expectClosedWith(r, 0x82);
    await brokerStillWorks();
  });

  it("MQTT 3.1.1: malformed packet closes the connection without DISCONNECT; unsupported protocol level gets CONNACK 0x01", async () => {
    const r = await raw(4);
    r.send([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]);
    await expectClosedWith(r, null);
    const bad = await raw(null, 4);
    const connect = mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId: "lvl", clean: true, keepalive: 0 });
    connect[8] = 9; // protocol level byte
    bad.send(connect);
    await within(bad.closed, 3000, "the gateway to close the connection");
    expect(bad.packets[0]).toMatchObject({ cmd: "connack", returnCode: 1 });
    await brokerStillWorks();
  });

  it("keep-alive: a silent client is disconnected after 1.5 × keep alive with 0x8D", async () => {
    const socket = net.connect(node.mqttPort, "127.0.0.1");
    const packets: Packet[] = [];
    const parser = mqttPacket.parser(v5);
    parser.on("packet", (p: Packet) => packets.push(p));
    socket.on("data", (d) => parser.parse(d));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clientId: "sleepy", clean: true, keepalive: 1 }, v5));
    const t0 = Date.now();
    await closed;
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(5000);
    expect(packets.map((p) => p.cmd)).toEqual(["connack", "disconnect"]);
    expect((packets[1] as { reasonCode?: number }).reasonCode).toBe(0x8d);
  });
});

describe("random bytes (property)", () => {
  it("random byte streams, raw or after a valid CONNECT, never take the broker down", async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { minLength: 1, maxLength: 5 }), async (afterConnect, chunks) => {
        const r = await raw(afterConnect ? 5 : null);
        for (const c of chunks) r.send(c);
        // FIN after the bytes: the gateway handles every byte, then closes (if it had not already)
        r.socket.end();
        await within(r.closed, 3000, "the gateway to close the connection");
      }),
      { numRuns: 150 },
    );
    await brokerStillWorks();
  });
});
