import net from "node:net";
import mqttPacket, { type IPublishPacket, type Packet } from "mqtt-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MqttClient } from "mqtt";
import { closeAndWait, collect, connectClient, endClient, flushLog, startMqttTestNode, type Collector, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor } from "./helpers/wait.ts";

let node: MqttTestNode;
const clients: MqttClient[] = [];
const v5 = { protocolVersion: 5 };

beforeAll(async () => {
  node = await startMqttTestNode();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => endClient(c, true)));
  await node?.close();
});

/** An MQTT 5 client subscribed to `filter` (closed after the file), collecting what it receives. */
async function subscriber(filter: string, qos: 1 | 2): Promise<Collector> {
  const client = await connectClient(node.tcpUrl, { protocolVersion: 5 });
  clients.push(client);
  const got = collect(client);
  await client.subscribeAsync(filter, { qos });
  return got;
}

/** A raw MQTT 5 client: we decide when (and whether) to acknowledge. */
class Raw {
  readonly socket: net.Socket;
  readonly packets: Packet[] = [];
  readonly #arrivals: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    const parser = mqttPacket.parser(v5);
    parser.on("packet", (p: Packet) => {
      this.packets.push(p);
      for (const w of this.#arrivals.splice(0)) w();
    });
    socket.on("data", (d) => parser.parse(d));
    socket.on("error", () => undefined);
  }

  static async connect(clientId: string, properties: Record<string, unknown> = {}, clean = true): Promise<Raw> {
    const socket = net.connect(node.mqttPort, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    const r = new Raw(socket);
    r.send({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clientId, clean, keepalive: 0, properties } as Packet);
    await r.waitFor((p) => p.cmd === "connack");
    return r;
  }

  send(p: Packet): void {
    this.socket.write(mqttPacket.generate(p, v5));
  }

  /** Resolves once `count` packets match, checked on every arrival; rejects at the deadline. */
  async waitFor(pred: (p: Packet) => boolean, count = 1, timeoutMs = 3000): Promise<Packet[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hits = this.packets.filter(pred);
      if (hits.length >= count) return hits;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} packets, got ${hits.length}: ${this.packets.map((p) => p.cmd).join(",")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#arrivals.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /**
   * PINGREQ → PINGRESP: the gateway handles a connection's packets in order and writes in
   * order, so everything it sent this connection before the PINGRESP has arrived.
   */
  async roundTrip(): Promise<void> {
    const pong = (p: Packet) => p.cmd === "pingresp";
    const n = this.packets.filter(pong).length;
    this.send({ cmd: "pingreq" } as Packet);
    await this.waitFor(pong, n + 1);
  }

  publishes(): IPublishPacket[] {
    return this.packets.filter((p): p is IPublishPacket => p.cmd === "publish");
  }
}

describe("QoS 2 ingress", () => {
  it("stores a re-sent QoS 2 PUBLISH once, answers PUBREC each time, and reuses the packet id after PUBCOMP", async () => {
    const got = await subscriber("q2in/#", 2);
    const pub = await Raw.connect("q2-publisher");
    const publish = (payload: string, dup: boolean) =>
      pub.send({ cmd: "publish", topic: "q2in/x", payload: Buffer.from(payload), qos: 2, messageId: 7, dup, retain: false });
    publish("first", false);
    await pub.waitFor((p) => p.cmd === "pubrec");
    publish("first", true); // lost PUBREC: the client re-sends
    await pub.waitFor((p) => p.cmd === "pubrec", 2);
    pub.send({ cmd: "pubrel", messageId: 7 });
    await pub.waitFor((p) => p.cmd === "pubcomp");
    publish("second", false); // id 7 is free again: a new message
    await pub.waitFor((p) => p.cmd === "pubrec", 3);
    pub.send({ cmd: "pubrel", messageId: 7 });
    await pub.waitFor((p) => p.cmd === "pubcomp", 2);
    await got.waitFor(2);
    await flushLog(node, "q2in/marker", [got]); // the re-sent PUBLISH was not stored twice
    expect(got.messages.map((m) => m.payload)).toEqual(["first", "second"]);
    // PUBREL for an id that is not pending → PUBCOMP 0x92
    pub.send({ cmd: "pubrel", messageId: 99 });
    const [comp] = (await pub.waitFor((p) => p.cmd === "pubcomp" && p.messageId === 99)) as { reasonCode?: number }[];
    expect(comp!.reasonCode).toBe(0x92);
    pub.socket.destroy();
  });
});

describe("framing", () => {
  it("a packet whose first byte ends the read that finished a large PUBLISH is whole once the rest arrives", async () => {
    const got = await subscriber("framing/#", 1);
    const pub = await Raw.connect("framing-publisher");
    // Larger than the framer holds (HOLD_MAX 4096): the large packet goes through mqtt-packet.
    const big = mqttPacket.generate({ cmd: "publish", topic: "framing/big", payload: Buffer.alloc(6000, 0x61), qos: 1, messageId: 1, dup: false, retain: false }, v5);
    // Its remaining length byte (0x37) reads as a PUBLISH header, should the gateway mistake it for a packet start.
    const next = mqttPacket.generate({ cmd: "publish", topic: "framing/after", payload: Buffer.alloc(36, 0x62), qos: 1, messageId: 2, dup: false, retain: false }, v5);
    expect(next[1]! >> 4).toBe(3);
    pub.socket.write(Buffer.concat([big, next.subarray(0, 1)]));
    await pub.waitFor((p) => p.cmd === "puback" && p.messageId === 1);
    pub.socket.write(next.subarray(1));
    await pub.waitFor((p) => p.cmd === "puback" && p.messageId === 2);
    await got.waitFor(2);
    expect(got.messages.map((m) => [m.topic, m.payload.length])).toEqual([
      ["framing/big", 6000],
      ["framing/after", 36],
    ]);
    pub.socket.destroy();
  });
});

describe("egress flow control and redelivery", () => {
  it("keeps at most the client's Receive Maximum QoS 1 messages in flight and sends more as PUBACKs arrive", async () => {
    const sub = await Raw.connect("narrow", { receiveMaximum: 2 });
    sub.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "narrow/#", qos: 1 }] } as Packet);
    await sub.waitFor((p) => p.cmd === "suback");
    // a witness with room to spare: once it has m0..m4, the gateway has offered them to every subscriber
    const seen = await subscriber("narrow/#", 1);
    const pub = await connectClient(node.tcpUrl);
    clients.push(pub);
    for (let i = 0; i < 5; i++) await pub.publishAsync("narrow/t", `m${i}`, { qos: 1 });
    await sub.waitFor((p) => p.cmd === "publish", 2);
    await seen.waitFor(5);
    await sub.roundTrip();
    expect(sub.publishes().map((p) => p.payload.toString())).toEqual(["m0", "m1"]);
    sub.send({ cmd: "puback", messageId: sub.publishes()[0]!.messageId! });
    await sub.waitFor((p) => p.cmd === "publish", 3);
    await sub.roundTrip(); // the PUBACK freed one slot: one more, not two
    expect(sub.publishes().map((p) => p.payload.toString())).toEqual(["m0", "m1", "m2"]);
    for (const p of sub.publishes().slice(1)) sub.send({ cmd: "puback", messageId: p.messageId! });
    await sub.waitFor((p) => p.cmd === "publish", 5);
    expect(sub.publishes().map((p) => p.payload.toString())).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    sub.socket.destroy();
  });

  it("re-sends unacknowledged QoS 1 and 2 messages with DUP and the same packet ids when a persistent session reconnects, and PUBREL for QoS 2 past PUBREC", async () => {
    const props = { sessionExpiryInterval: 60 };
    const first = await Raw.connect("redeliver", props, false);
    first.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "redo/#", qos: 2 }] } as Packet);
    await first.waitFor((p) => p.cmd === "suback");
    const pub = await connectClient(node.tcpUrl);
    clients.push(pub);
    await pub.publishAsync("redo/a", "q1", { qos: 1 });
    await pub.publishAsync("redo/b", "q2-unacked", { qos: 2 });
    await pub.publishAsync("redo/c", "q2-recd", { qos: 2 });
    const sent = (await first.waitFor((p) => p.cmd === "publish", 3)) as IPublishPacket[];
    first.send({ cmd: "pubrec", messageId: sent[2]!.messageId! }); // third: client has it, PUBREL pending
    await first.waitFor((p) => p.cmd === "pubrel");
    await closeAndWait(node, () => void first.socket.destroy()); // the gateway saw the old connection go: a resume, not a takeover
    const second = await Raw.connect("redeliver", props, false);
    expect((second.packets[0] as { sessionPresent?: boolean }).sessionPresent).toBe(true);
    const again = (await second.waitFor((p) => p.cmd === "publish", 2)) as IPublishPacket[];
    expect(again.map((p) => [p.payload.toString(), p.messageId, p.dup, p.qos])).toEqual([
      ["q1", sent[0]!.messageId, true, 1],
      ["q2-unacked", sent[1]!.messageId, true, 2],
    ]);
    const [rel] = await second.waitFor((p) => p.cmd === "pubrel");
    expect(rel!.messageId).toBe(sent[2]!.messageId);
    second.socket.destroy();
  });
});

describe("limits", () => {
  it("refuses connections over limits.maxConnections (CONNACK 0x97) and subscriptions over limits.maxSubscriptionsPerConnection (SUBACK 0x97)", async () => {
    const limited = await startMqttTestNode({}, {}, { maxConnections: 2, maxSubscriptionsPerConnection: 2 });
    const open: MqttClient[] = [];
    try {
      open.push(await connectClient(limited.tcpUrl, { protocolVersion: 5 }));
      open.push(await connectClient(limited.tcpUrl, { protocolVersion: 5 }));
      await expect(connectClient(limited.tcpUrl, { protocolVersion: 5 })).rejects.toMatchObject({ code: 0x97 });
      const err = (await open[0]!.subscribeAsync(["l/a", "l/b", "l/c"], { qos: 1 }).catch((e: unknown) => e)) as { packet?: { granted?: number[] } };
      expect(err.packet?.granted).toEqual([1, 1, 0x97]);
    } finally {
      await Promise.all(open.map((c) => endClient(c, true)));
      await limited.close();
    }
  });
});

describe("slow consumers", () => {
  it("a QoS 0 subscriber that stops reading does not hold up the publisher, and gets every message, in order, from the log once it reads again", async () => {
    const local = await startMqttTestNode({}, {}, { maxBufferedBytes: 256 * 1024 });
    try {
      const socket = net.connect(local.mqttPort, "127.0.0.1");
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      const seen: number[] = [];
      let subacked!: () => void;
      const suback = new Promise<void>((resolve) => (subacked = resolve));
      parser.on("packet", (p: Packet) => {
        if (p.cmd === "suback") subacked();
        if (p.cmd === "publish") seen.push(((p as IPublishPacket).payload as Buffer).readUInt32BE(0));
      });
      socket.on("data", (d) => parser.parse(d));
      socket.write(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId: "sleeper", clean: true, keepalive: 0 }));
      socket.write(mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "slow/#", qos: 0 }] }));
      await suback;
      socket.pause(); // stop reading: the gateway's socket buffer fills up
      const pub = await connectClient(local.tcpUrl);
      const payload = Buffer.alloc(2048);
      const count = 3000; // ~6 MB, far above the 256 KiB socket limit
      const t0 = Date.now();
      for (let i = 0; i < count; i += 100) {
        await Promise.all(
          Array.from({ length: 100 }, (_, j) => {
            const p = Buffer.from(payload);
            p.writeUInt32BE(i + j, 0);
            return pub.publishAsync(`slow/${(i + j) % 3}`, p, { qos: 1 });
          }),
        );
      }
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(seen.length).toBeLessThan(count);
      socket.resume();
      await waitFor(() => seen.length >= count, { timeoutMs: 20_000, what: `all ${count} messages` });
      expect(seen.length).toBe(count);
      expect(seen).toEqual(Array.from({ length: count }, (_, i) => i));
      await endClient(pub, true);
      socket.destroy();
    } finally {
      await local.close();
    }
  });
});
