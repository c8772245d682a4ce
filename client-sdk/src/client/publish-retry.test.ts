/**
 * Publish retries against a hookable in-process fake server (timing and order are the
 * server's to decide here); the real node with Redis going away is in
 * test/sdk-publish-retry.test.ts.
 */
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeFrame, encodeFrame, type ClientFrame, type PublishFrame, type ServerFrame } from "../protocol/index.ts";
import { connect, type TributaryClient } from "./client.ts";
import { TributaryClientError } from "./errors.ts";
import { State } from "./state.ts";
import { waitFor } from "../../../test/helpers/wait.ts";

const LIMITS = { maxFrameBytes: 1 << 20, maxRecordBytes: 1 << 20, maxSubscriptions: 10, defaultCredit: 10, maxCredit: 100 };
const send = (ws: WebSocket, frame: ServerFrame) => ws.send(encodeFrame(frame, "cbor"));

interface FakeServer {
  url: string;
  /** Every publish frame received, with its arrival time. */
  publishes: Array<PublishFrame & { at: number }>;
  /** Answers one publish: an ack (offset) or an error code. */
  answer: (frame: PublishFrame) => { offset: number } | { code: string };
  sockets: WebSocket[];
  close(): Promise<void>;
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function fakeServer(): Promise<FakeServer> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: (protocols) => [...protocols][0] ?? false });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  let nextOffset = 0;
  const server: FakeServer = {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    publishes: [],
    answer: () => ({ offset: nextOffset++ }),
    sockets: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
  wss.on("connection", (ws) => {
    server.sockets.push(ws);
    ws.on("message", (data) => {
      const frame = decodeFrame(data as Uint8Array, "cbor") as ClientFrame;
      if (frame.op === "hello") send(ws, { op: "welcome", id: frame.id, sessionId: "s", clientId: "c", node: "fake", limits: LIMITS });
      if (frame.op !== "publish") return;
      server.publishes.push({ ...frame, at: Date.now() });
      const reply = server.answer(frame);
      if ("code" in reply) send(ws, { op: "error", id: frame.id, code: reply.code as never, message: `fake ${reply.code}` });
      else send(ws, { op: "ack", id: frame.id, partition: 0, offset: reply.offset });
    });
  });
  cleanups.push(() => server.close());
  return server;
}

function client(url: string, options: Parameters<typeof connect>[1] = {}): TributaryClient {
  const c = connect(url, { minReconnectDelay: 5, maxReconnectDelay: 20, ...options });
  cleanups.push(() => c.close());
  return c;
}

const until = (check: () => boolean, what: string): Promise<void> => waitFor(check, { timeoutMs: 5000, what, intervalMs: 5 });

const decode = (f: PublishFrame) => Number(new TextDecoder().decode(f.value!));

describe("publish retries", () => {
  it("re-sends a publish that failed with a retriable code, with the same producerId and seq, and resolves without an error event", async () => {
    const server = await fakeServer();
    const failures = ["UNAVAILABLE", "NOT_ENOUGH_REPLICAS", "STORAGE_ERROR", "TIMEOUT"];
    server.answer = () => (failures.length > 0 ? { code: failures.shift()! } : { offset: 7 });
    const c = client(server.url, { codec: "string", minPublishRetryDelay: 10, maxPublishRetryDelay: 40 });
    const errors: unknown[] = [];
    c.on("error", (e) => errors.push(e));
    await expect(c.publish("t", "1")).resolves.toEqual({ partition: 0, offset: 7 });
    expect(server.publishes).toHaveLength(5);
    expect(new Set(server.publishes.map((f) => `${f.producerId}/${f.seq}`))).toEqual(new Set([`${c.producerId}/0`]));
    expect(errors).toEqual([]);
  });

  it("waits a full-jitter backoff before each retry, its ceiling doubling from minPublishRetryDelay up to maxPublishRetryDelay", async () => {
    const server = await fakeServer();
    let fail = 5;
    server.answer = () => (fail-- > 0 ? { code: "UNAVAILABLE" } : { offset: 0 });
    // random() ≈ 1: each delay is its ceiling (40, 80, 160, 200, 200).
    const c = client(server.url, { codec: "string", minPublishRetryDelay: 40, maxPublishRetryDelay: 200, random: () => 0.999999 });
    await c.publish("t", "1");
    const gaps = server.publishes.slice(1).map((f, i) => f.at - server.publishes[i]!.at);
    const ceilings = [40, 80, 160, 200, 200];
    gaps.forEach((gap, i) => {
      expect(gap, `retry ${i + 1}`).toBeGreaterThanOrEqual(ceilings[i]! - 2);
      expect(gap, `retry ${i + 1}`).toBeLessThan(ceilings[i]! + 60);
    });
  });

  it("rejects at once, without a retry, on a non-retriable code", async () => {
    const server = await fakeServer();
    server.answer = () => ({ code: "FORBIDDEN" });
    // random() ≈ 1: every first retry waits exactly minPublishRetryDelay
    const c = client(server.url, { codec: "string", minPublishRetryDelay: 20, random: () => 0.999999 });
    const err = await c.publish("t", "1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TributaryClientError);
    expect(err).toMatchObject({ code: "FORBIDDEN", retriable: false });
    // The positive marker: a later publish failing UNAVAILABLE once is retried after the same delay, so once its retry
    // is in, a retry of "1" (due earlier) would be in too.
    server.answer = (f) => (server.publishes.filter((p) => p.seq === f.seq).length === 1 ? { code: "UNAVAILABLE" } : { offset: 0 });
    await c.publish("t", "2");
    expect(server.publishes.filter((f) => decode(f) === 1)).toHaveLength(1);
    expect(server.publishes.filter((f) => decode(f) === 2)).toHaveLength(2);
  });

  it("rejects with the last retriable error once publishTimeoutMs has passed, and the per-call timeoutMs overrides it", async () => {
    const server = await fakeServer();
    server.answer = (f) => ({ code: server.publishes.filter((p) => p.seq === f.seq).length % 2 ? "UNAVAILABLE" : "NOT_ENOUGH_REPLICAS" });
    const c = client(server.url, { codec: "string", publishTimeoutMs: 400, minPublishRetryDelay: 10, maxPublishRetryDelay: 30 });
    await until(() => c.state === State.Connected, "connected");
    const t0 = Date.now();
    const [short, long] = await Promise.all([
      c.publish("t", "1", { timeoutMs: 150 }).catch((e: unknown) => ({ err: e, ms: Date.now() - t0 })),
      c.publish("t", "2").catch((e: unknown) => ({ err: e, ms: Date.now() - t0 })),
    ]);
    for (const [r, timeout] of [[short, 150], [long, 400]] as const) {
      const { err, ms } = r as { err: TributaryClientError; ms: number };
      expect(err).toBeInstanceOf(TributaryClientError);
      expect(["UNAVAILABLE", "NOT_ENOUGH_REPLICAS"]).toContain(err.code);
      expect(err.retriable).toBe(true);
      expect(err.message).toMatch(/given up at its deadline/);
      expect(err.context.attempts).toBeGreaterThan(1);
      expect(ms).toBeGreaterThanOrEqual(timeout - 5);
      expect(ms).toBeLessThan(timeout + 150);
    }
    // Every attempt of a publish carried its one seq.
    const seqs = new Map<number, Set<number>>();
    for (const f of server.publishes) seqs.set(decode(f), (seqs.get(decode(f)) ?? new Set()).add(f.seq!));
    expect([...seqs.values()].map((s) => s.size)).toEqual([1, 1]);
  });

  it("sends no publish issued after a failure before that failure's retry; only those already in flight may land first", async () => {
    const server = await fakeServer();
    const failedOnce = new Set<number>();
    // Publishes 3 and 10 fail once; everything else is acked.
    server.answer = (f) => {
      const v = decode(f);
      if ((v === 3 || v === 10) && !failedOnce.has(v)) {
        failedOnce.add(v);
        return { code: "UNAVAILABLE" };
      }
      return { offset: v };
    };
    const inflight = 4;
    const c = client(server.url, { codec: "string", maxInflightPublishes: inflight, minPublishRetryDelay: 5, maxPublishRetryDelay: 20 });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.publish("t", String(i))));
    expect(results.map((r) => r.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const sent = server.publishes.map(decode);
    for (const failed of [3, 10]) {
      const first = sent.indexOf(failed);
      const retry = sent.indexOf(failed, first + 1);
      expect(retry, `publish ${failed} retried`).toBeGreaterThan(first);
      // Between the failed attempt and its retry: only publishes that were in flight with it.
      for (const v of sent.slice(first + 1, retry)) expect(v).toBeLessThan(failed + inflight);
      // Nothing newer than the in-flight window before the retry.
      expect(sent.slice(0, retry).every((v) => v < failed + inflight)).toBe(true);
    }
    // With one publish in flight, the server sees them strictly in call order.
    const strict = client(server.url, { codec: "string", maxInflightPublishes: 1, minPublishRetryDelay: 5, maxPublishRetryDelay: 20 });
    failedOnce.clear();
    server.publishes.length = 0;
    await Promise.all(Array.from({ length: 20 }, (_, i) => strict.publish("t", String(i))));
    const accepted = server.publishes.filter((f, i) => !server.publishes.slice(i + 1).some((g) => g.seq === f.seq)).map(decode);
    expect(accepted).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("keeps retrying across a dropped connection and lands the publish once the server recovers", async () => {
    const server = await fakeServer();
    let down = true;
    server.answer = (f) => (down ? { code: "UNAVAILABLE" } : { offset: f.seq! });
    const c = client(server.url, { codec: "string", minPublishRetryDelay: 5, maxPublishRetryDelay: 20 });
    const pending = Promise.all([c.publish("t", "a"), c.publish("t", "b")]);
    await until(() => server.publishes.length >= 4, "a few failed attempts");
    server.sockets[0]!.terminate();
    await until(() => server.sockets.length === 2 && c.state === State.Connected, "reconnected");
    down = false;
    expect(await pending).toEqual([{ partition: 0, offset: 0 }, { partition: 0, offset: 1 }]);
  });
});
