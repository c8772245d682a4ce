import { setImmediate as nextTurn } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { FEATURES } from "@tributary/client/protocol";
import { startWsTestServer, type WsTestServer } from "./helpers/ws-harness.ts";
import { WsTestClient } from "./helpers/ws-test-client.ts";

let server: WsTestServer | undefined;
const clients: WsTestClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

describe("WebSocket gateway: batched acks (feature acks)", () => {
  it("acknowledges publishes completed together in one acks frame, each id once with its own offset", async () => {
    server = await startWsTestServer();
    await server.broker.createTopic("acked", { partitions: 1 });
    const batched = await WsTestClient.connect(server.url, { features: [FEATURES.ACKS] });
    const plain = await WsTestClient.connect(server.url);
    clients.push(batched, plain);
    for (const c of [batched, plain]) {
      const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => c.publish("acked", `v${i}`)));
      expect(replies.every((r) => r.op === "ack")).toBe(true);
      const offsets = replies.map((r) => r.offset as number);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b)); // call order = offset order
      expect(new Set(offsets).size).toBe(200);
      expect(new Set(replies.map((r) => r.id)).size).toBe(200);
    }
    expect(batched.ackBatches).toBeGreaterThan(0);
    expect(batched.ackBatches).toBeLessThan(200);
    expect(plain.ackBatches).toBe(0);
    expect(plain.frames.filter((f) => f.op === "ack")).toHaveLength(200);
  });

  it("keeps an error reply in order between batched acks", async () => {
    server = await startWsTestServer();
    const c = await WsTestClient.connect(server.url, { features: [FEATURES.ACKS] });
    clients.push(c);
    const replies = await Promise.all([c.publish("ok", "a"), c.publish("ok", "b"), c.publish("bad topic!", "x"), c.publish("ok", "c")]);
    expect(replies.map((r) => r.op)).toEqual(["ack", "ack", "error", "ack"]);
    expect(replies.filter((r) => r.op === "ack").map((r) => r.offset)).toEqual([0, 1, 2]);
  });

  it("puts the acks of a client publishing in consecutive turns in one frame per two turns, and answers a client waiting for each ack", async () => {
    server = await startWsTestServer();
    await server.broker.createTopic("streamed", { partitions: 1 });
    const c = await WsTestClient.connect(server.url, { features: [FEATURES.ACKS] });
    clients.push(c);
    const replies = [];
    for (let i = 0; i < 200; i++) {
      replies.push(c.publish("streamed", `s${i}`)); // one publish per event-loop turn
      await nextTurn();
    }
    const acks = await Promise.all(replies);
    expect(acks.map((r) => r.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(c.ackFrames).toBeLessThanOrEqual(140); // one frame per turn would be 200: the next turn's acks join the waiting ones
    // Each ack awaited before the next publish: nothing in flight to wait for, each comes in the next turn.
    for (let i = 0; i < 50; i++) expect((await c.publish("streamed", `w${i}`)).offset).toBe(200 + i);
  });
});
