import WebSocket from "ws";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLOSE_CODES, encodeFrame, SUBPROTOCOL_CBOR } from "@tributary/client/protocol";
import { startWsTestServer, type WsTestServer } from "./helpers/ws-harness.ts";
import { WsTestClient } from "./helpers/ws-test-client.ts";

let server: WsTestServer;
const clients: WsTestClient[] = [];
async function track(c: Promise<WsTestClient>): Promise<WsTestClient> {
  const client = await c;
  clients.push(client);
  return client;
}

beforeEach(async () => {
  server = await startWsTestServer({ limits: { maxFrameBytes: 64 * 1024, maxRecordBytes: 32 * 1024 } });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server.close();
});

/** A healthy client that must keep working whatever the others do. */
async function assertOthersUnaffected(): Promise<void> {
  const c = await track(WsTestClient.connect(server.url));
  await c.subscribeOk({ sub: 1, topic: "healthy" });
  const ack = await c.publish("healthy", "still fine");
  expect(ack.op).toBe("ack");
  await c.waitForMessages(1, 1);
}

describe("WebSocket gateway: bad input", () => {
  it("refuses an unknown subprotocol with HTTP 400 and a reason", async () => {
    const ws = new WebSocket(server.url, ["mqtt"]);
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve) => {
      ws.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    expect(status).toBe(400);
    expect(body).toContain("tributary.v1");
    await assertOthersUnaffected();
  });

  it("answers malformed CBOR with MALFORMED_FRAME and keeps the connection", async () => {
    const c = await track(WsTestClient.connect(server.url));
    c.ws.send(new Uint8Array([0xff, 0xfe, 0x1c, 0x00]));
    expect(await c.waitFor((f) => f.op === "error")).toMatchObject({ code: "MALFORMED_FRAME" });
    c.ws.send("not binary");
    expect(await c.waitFor((f) => f.op === "error" && /text frame/.test(String(f.message)))).toMatchObject({ code: "MALFORMED_FRAME" });
    expect(await c.request({ op: "ping" })).toMatchObject({ op: "pong" });
    await assertOthersUnaffected();
  });

  it("answers an unknown op with UNKNOWN_OP and the request id", async () => {
    const c = await track(WsTestClient.connect(server.url));
    expect(await c.request({ op: "fly" })).toMatchObject({ op: "error", code: "UNKNOWN_OP" });
  });

  it("answers wrong field types with BAD_REQUEST naming the field", async () => {
    const c = await track(WsTestClient.connect(server.url, { format: "json" }));
    const r1 = await c.request({ op: "publish", topic: 42, value: null });
    expect(r1).toMatchObject({ op: "error", code: "BAD_REQUEST" });
    expect(r1.message).toContain('"topic"');
    const r2 = await c.request({ op: "subscribe", sub: -1, topic: "t" });
    expect(r2).toMatchObject({ op: "error", code: "BAD_REQUEST" });
    expect(r2.message).toContain('"sub"');
    const r3 = await c.request({ op: "subscribe", sub: 1, topic: "t", from: "yesterday" });
    expect(r3.message).toContain('"from"');
    const r4 = await c.request({ op: "publish", topic: "t", value: null, acks: 2 });
    expect(r4.message).toContain('"acks"');
    await assertOthersUnaffected();
  });

  it("rejects bad topics and filters", async () => {
    const c = await track(WsTestClient.connect(server.url));
    expect(await c.publish("bad topic!", "x")).toMatchObject({ op: "error", code: "INVALID_TOPIC" });
    expect(await c.subscribe({ sub: 1, topic: "+/x" })).toMatchObject({ op: "error", code: "BAD_REQUEST", sub: 1 });
    expect(await c.subscribe({ sub: 2, topic: "t/#/x" })).toMatchObject({ op: "error", code: "BAD_REQUEST", sub: 2 });
    await c.subscribeOk({ sub: 3, topic: "t" });
    expect(await c.subscribe({ sub: 3, topic: "t" })).toMatchObject({ op: "error", code: "BAD_REQUEST", sub: 3 });
  });

  it("refuses a start position in a partition the topic does not have (UNKNOWN_PARTITION)", async () => {
    const c = await track(WsTestClient.connect(server.url));
    await c.publish("one-partition", "x");
    const reply = await c.subscribe({ sub: 7, topic: "one-partition", from: { offsets: { 99999: 0 } } });
    expect(reply).toMatchObject({ op: "error", code: "UNKNOWN_PARTITION", sub: 7 });
    await c.subscribeOk({ sub: 8, topic: "one-partition", from: { offsets: { 0: 0 } } });
  });

  it("closes with PROTOCOL_ERROR when the first frame is not hello", async () => {
    const c = await track(WsTestClient.open(server.url));
    c.send({ op: "publish", id: 1, topic: "t", value: null });
    expect(await c.waitFor((f) => f.op === "error")).toMatchObject({ code: "BAD_REQUEST", id: 1 });
    expect((await c.closed).code).toBe(CLOSE_CODES.PROTOCOL_ERROR);
    expect(await server.broker.listTopics()).not.toContain("t");
    await assertOthersUnaffected();
  });

  it("closes with PROTOCOL_ERROR on an unsupported protocol version", async () => {
    const c = await track(WsTestClient.open(server.url));
    const reply = await c.request({ op: "hello", protocol: 99 });
    expect(reply).toMatchObject({ op: "error", code: "BAD_REQUEST" });
    expect((await c.closed).code).toBe(CLOSE_CODES.PROTOCOL_ERROR);
  });

  it("answers an oversized frame with FRAME_TOO_LARGE and closes only that connection", async () => {
    const c = await track(WsTestClient.connect(server.url));
    const other = await track(WsTestClient.connect(server.url));
    c.send({ op: "publish", id: 7, topic: "big", value: new Uint8Array(100 * 1024) });
    expect(await c.waitFor((f) => f.op === "error")).toMatchObject({ code: "FRAME_TOO_LARGE" });
    expect((await c.closed).code).toBe(CLOSE_CODES.FRAME_TOO_LARGE);
    expect(await other.request({ op: "ping" })).toMatchObject({ op: "pong" });
    await assertOthersUnaffected();
  });

  it("answers a record over maxRecordBytes with RECORD_TOO_LARGE and keeps the connection", async () => {
    const c = await track(WsTestClient.connect(server.url));
    expect(await c.publish("big", new Uint8Array(40 * 1024))).toMatchObject({ op: "error", code: "RECORD_TOO_LARGE" });
    expect(await c.publish("big", new Uint8Array(10))).toMatchObject({ op: "ack" });
  });

  it("answers QUEUE_FULL beyond maxPendingPublishes", async () => {
    await server.close();
    server = await startWsTestServer({ limits: { maxPendingPublishes: 4 } });
    const c = await track(WsTestClient.connect(server.url));
    const ids = Array.from({ length: 40 }, () => c.nextId());
    const replies = ids.map((id) => c.waitFor((f) => f.id === id));
    // One WebSocket message batch: all frames arrive before any publish completes.
    // acks=all: every publish waits for an fsync, so all 40 are pending at once.
    for (const id of ids) c.send({ op: "publish", id, topic: "q", value: new Uint8Array([1]), acks: "all" });
    const all = await Promise.all(replies);
    expect(all.filter((r) => r.op === "ack").length).toBe(4);
    expect(all.filter((r) => r.op === "error" && r.code === "QUEUE_FULL").length).toBeGreaterThan(0);
    expect(await c.publish("q", "later")).toMatchObject({ op: "ack" });
  });

  it("writes a duplicate publish (same producerId and seq, ack lost) once", async () => {
    const c = await track(WsTestClient.connect(server.url));
    const first = await c.publish("dedupe", "once", { producerId: "p-1", seq: 41 });
    // The client never saw the ack (dropped connection) and retries on a new one.
    const retry = await track(WsTestClient.connect(server.url));
    const second = await retry.publish("dedupe", "once", { producerId: "p-1", seq: 41 });
    expect(second).toMatchObject({ op: "ack", partition: first.partition, offset: first.offset });
    const third = await retry.publish("dedupe", "next", { producerId: "p-1", seq: 42 });
    expect(third.offset).toBe((first.offset as number) + 1);
    expect((await server.engine.offsets("dedupe", 0)).endOffset).toBe(2);
  });

  it("survives a raw garbage frame before hello and keeps serving others", async () => {
    const ws = new WebSocket(server.url, [SUBPROTOCOL_CBOR]);
    await new Promise((r) => ws.once("open", r));
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.send(encodeFrame({ op: "ping" }, "cbor").slice(0, 2));
    expect(await closed).toBe(CLOSE_CODES.PROTOCOL_ERROR);
    await assertOthersUnaffected();
  });
});
