/**
 * Reconnect timing and protocol reactions against a hookable in-process fake server
 * (a `ws` server speaking the frame codec); the real node is exercised in test/sdk-*.test.ts.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createServer, type RequestListener, type Server } from "node:http";
import { WebSocketServer, type WebSocket } from "ws";
import type { TributaryClientError } from "./errors.ts";
import { decodeFrame, encodeFrame, type ClientFrame, type ServerFrame } from "../protocol/index.ts";
import { connect, type TributaryClient } from "./client.ts";
import { State } from "./state.ts";
import { waitFor } from "../../../test/helpers/wait.ts";

interface FakeServer {
  url: string;
  frames: ClientFrame[];
  sockets: WebSocket[];
  /** Called for each client frame; the default answers hello with welcome. */
  onFrame: (ws: WebSocket, frame: ClientFrame) => void;
  close(): Promise<void>;
}

const LIMITS = { maxFrameBytes: 1 << 20, maxRecordBytes: 1 << 20, maxSubscriptions: 10, defaultCredit: 10, maxCredit: 100 };
const send = (ws: WebSocket, frame: ServerFrame) => ws.send(encodeFrame(frame, "cbor"));

async function fakeServer(): Promise<FakeServer> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: (protocols) => [...protocols][0] ?? false });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const server: FakeServer = {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    frames: [],
    sockets: [],
    onFrame: (ws, frame) => {
      if (frame.op === "hello") send(ws, { op: "welcome", id: frame.id, sessionId: "s", clientId: "c", node: "fake", limits: LIMITS });
    },
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
      server.frames.push(frame);
      server.onFrame(ws, frame);
    });
  });
  return server;
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});
async function setup(): Promise<FakeServer> {
  const server = await fakeServer();
  cleanups.push(() => server.close());
  return server;
}
function client(url: string | string[], options: Parameters<typeof connect>[1] = {}): TributaryClient {
  const c = connect(url, { minReconnectDelay: 5, maxReconnectDelay: 20, ...options });
  cleanups.push(() => c.close());
  return c;
}
const until = (check: () => boolean, what: string): Promise<void> => waitFor(check, { timeoutMs: 5000, what, intervalMs: 5 });

describe("TributaryClient against a fake server", () => {
  it("reconnects after a lost connection with the backoff delays it announces", async () => {
    const server = await setup();
    const c = client(server.url, { random: () => 0.999999 });
    const delays: number[] = [];
    c.on("reconnecting", ({ delay }) => delays.push(delay));
    await until(() => c.state === State.Connected, "connected");
    server.sockets[0]!.terminate();
    await until(() => server.sockets.length === 2 && c.state === State.Connected, "reconnected");
    expect(delays).toEqual([5]); // attempt 0: ceiling minReconnectDelay
  });

  it("does not reconnect after a close code 4500+ and ends in State.Closed", async () => {
    const server = await setup();
    const c = client(server.url);
    const disconnected: Array<{ code: number; reconnect: boolean }> = [];
    c.on("disconnected", (e) => disconnected.push({ code: e.code, reconnect: e.reconnect }));
    await until(() => c.state === State.Connected, "connected");
    const pending = c.publish("t", 1).catch((err: unknown) => err);
    server.sockets[0]!.close(4501, "bad token");
    await until(() => c.state === State.Closed, "closed");
    expect(disconnected).toEqual([{ code: 4501, reconnect: false }]);
    expect(await pending).toMatchObject({ code: "UNAUTHORIZED", retriable: false });
    // The positive marker for "never reconnects": a control client dropped after it, whose first reconnect delay (20 ms)
    // is the closed one's ceiling; once the control is back, the closed one would have been back before it.
    const control = client(server.url, { minReconnectDelay: 20, maxReconnectDelay: 20, random: () => 0.999999 });
    await until(() => control.state === State.Connected && server.sockets.length === 2, "control connected");
    server.sockets[1]!.terminate();
    await until(() => server.sockets.length >= 3 && control.state === State.Connected, "control reconnected");
    expect(server.sockets.length).toBe(3); // one for the closed client, two for the control
  });

  it("honours a disconnect frame's reconnect flag", async () => {
    const server = await setup();
    const c = client(server.url);
    await until(() => c.state === State.Connected, "connected");
    send(server.sockets[0]!, { op: "disconnect", code: "SLOW_CONSUMER", reason: "too slow", reconnect: true });
    server.sockets[0]!.close(4001, "too slow");
    await until(() => server.sockets.length === 2 && c.state === State.Connected, "reconnected after SLOW_CONSUMER");
    send(server.sockets[1]!, { op: "disconnect", code: "FORBIDDEN", reason: "banned", reconnect: false });
    server.sockets[1]!.close(4000, "banned");
    await until(() => c.state === State.Closed, "closed after reconnect:false");
  });

  it("rotates through the URLs when one is unreachable", async () => {
    const server = await setup();
    const dead = await fakeServer();
    const deadUrl = dead.url;
    await dead.close();
    const c = client([deadUrl, server.url]);
    await until(() => c.state === State.Connected, "connected via the second URL");
    expect(c.url).toBe(new URL("/ws", server.url).toString());
  });

  it("grants credit back after half the window is consumed and resumes after the last received offset", async () => {
    const server = await setup();
    server.onFrame = (ws, frame) => {
      if (frame.op === "hello") send(ws, { op: "welcome", id: frame.id, sessionId: "s", clientId: "c", node: "fake", limits: LIMITS });
      if (frame.op === "subscribe") {
        send(ws, { op: "subscribed", id: frame.id, sub: frame.sub, topic: frame.topic, partitions: [{ partition: 0, offset: 0, epoch: "e1" }] });
        const start = frame.from && typeof frame.from === "object" && "offsets" in frame.from ? frame.from.offsets[0]! : 0;
        // Deliberately re-send two old offsets to check the SDK drops duplicates.
        for (let offset = Math.max(0, start - 2); offset < start + 10; offset++) {
          send(ws, { op: "message", sub: frame.sub, topic: "t", partition: 0, offset, timestamp: 0, key: null, value: encodeFrame({ op: "ping" } as never, "cbor") as Uint8Array });
        }
      }
    };
    const c = client(server.url);
    const sub = c.subscribe("t", { from: "earliest", credit: 10 });
    const it = sub[Symbol.asyncIterator]();
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) seen.push((await it.next()).value!.offset);
    await until(() => server.frames.some((f) => f.op === "credit"), "credit frame");
    expect(server.frames.filter((f) => f.op === "credit")).toEqual([{ op: "credit", sub: sub.id, credit: 5 }]);
    server.sockets[0]!.terminate();
    await until(() => server.frames.filter((f) => f.op === "subscribe").length === 2, "resubscribe");
    const resubscribe = server.frames.filter((f) => f.op === "subscribe")[1]!;
    expect(resubscribe).toMatchObject({ from: { offsets: { 0: 10 }, epochs: { 0: "e1" } }, credit: 6 }); // 4 still buffered
    for (let i = 0; i < 14; i++) seen.push((await it.next()).value!.offset);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(sub.position()).toEqual({ 0: { offset: 20, epoch: "e1" } });
  });

  it("sends the codec's content type with each publish, unless the contentType option or a content-type header says otherwise", async () => {
    const server = await setup();
    server.onFrame = (ws, frame) => {
      if (frame.op === "hello") send(ws, { op: "welcome", id: frame.id, sessionId: "s", clientId: "c", node: "fake", limits: LIMITS });
      if (frame.op === "publish") send(ws, { op: "ack", id: frame.id, partition: 0, offset: 0 });
    };
    const c = client(server.url);
    await c.publish("t", { a: 1 });
    await c.publish("t", "text");
    await c.publish("t", new Uint8Array([1]));
    await c.publish("t", "<a/>", { contentType: "application/xml" });
    await c.publish("t", "x", { headers: { "content-type": "text/csv", h: "v" } });
    const sent = server.frames.filter((f) => f.op === "publish").map((f) => (f.op === "publish" ? [new TextDecoder().decode(f.value!), new TextDecoder().decode(f.headers?.["content-type"])] : []));
    expect(sent).toEqual([
      ['{"a":1}', "application/json"],
      ["text", "text/plain; charset=utf-8"],
      ["\u0001", "application/octet-stream"],
      ["<a/>", "application/xml"],
      ["x", "text/csv"],
    ]);
    await expect(c.publish("t", 10n)).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("delivers messages with contentType, text(), json() and headers as strings (bytes when not UTF-8)", async () => {
    const server = await setup();
    const enc = new TextEncoder();
    server.onFrame = (ws, frame) => {
      if (frame.op === "hello") send(ws, { op: "welcome", id: frame.id, sessionId: "s", clientId: "c", node: "fake", limits: LIMITS });
      if (frame.op === "subscribe") {
        send(ws, { op: "subscribed", id: frame.id, sub: frame.sub, topic: frame.topic, partitions: [{ partition: 0, offset: 0, epoch: "e1" }] });
        const msg = (offset: number, value: Uint8Array, headers: Record<string, Uint8Array>) => send(ws, { op: "message", sub: frame.sub, topic: "t", partition: 0, offset, timestamp: 0, key: null, value, headers });
        msg(0, enc.encode('{"t":1}'), { "content-type": enc.encode("application/json"), unit: enc.encode("C"), bin: new Uint8Array([0xff]) });
        msg(1, enc.encode('{"t":2}'), {}); // no content type: bytes
        msg(2, enc.encode("{oops"), { "content-type": enc.encode("application/json") }); // lies: bytes + error
      }
    };
    const c = client(server.url);
    const errors: TributaryClientError[] = [];
    c.on("error", (err) => errors.push(err));
    const it = c.subscribe("t", { from: "earliest" })[Symbol.asyncIterator]();
    const typed = (await it.next()).value!;
    expect([typed.contentType, typed.value, typed.headers.unit, typed.headers.bin]).toEqual(["application/json", { t: 1 }, "C", new Uint8Array([0xff])]);
    const untyped = (await it.next()).value!;
    expect(untyped.contentType).toBeNull();
    expect(untyped.value).toBeInstanceOf(Uint8Array);
    expect([untyped.text(), untyped.json()]).toEqual(['{"t":2}', { t: 2 }]);
    const bad = (await it.next()).value!;
    expect(bad.value).toBeInstanceOf(Uint8Array);
    expect(errors.map((e) => [e.code, e.context.offset, e.context.contentType])).toEqual([["MALFORMED_FRAME", 2, "application/json"]]);
  });

  describe("reports every failed connect attempt as an `error` with its cause, and keeps retrying", () => {
    async function httpServer(handler: RequestListener): Promise<{ server: Server; url: string }> {
      const server = createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
      cleanups.push(() => new Promise((resolve) => server.close(resolve)));
      return { server, url: `ws://127.0.0.1:${(server.address() as { port: number }).port}` };
    }
    function errorsOf(c: TributaryClient): TributaryClientError[] {
      const errors: TributaryClientError[] = [];
      c.on("error", (err) => errors.push(err));
      return errors;
    }

    it("refused: one error per attempt (attempt 1, 2, 3...), state not closed, lastError set", async () => {
      const dead = await fakeServer();
      await dead.close();
      const c = client(dead.url);
      const errors = errorsOf(c);
      await until(() => errors.length >= 3, "three failed attempts");
      expect(errors.slice(0, 3).map((e) => [e.code, e.retriable, e.context.reason, e.context.attempt])).toEqual([
        ["UNAVAILABLE", true, "refused", 1],
        ["UNAVAILABLE", true, "refused", 2],
        ["UNAVAILABLE", true, "refused", 3],
      ]);
      expect(errors[0]!.message).toContain("connection refused");
      expect(c.state).not.toBe(State.Closed);
      expect(c.lastError?.context.reason).toBe("refused");
    });

    it("http: the upgrade answered 401 gives reason http with the status", async () => {
      const { url } = await httpServer((_req, res) => res.writeHead(401).end("no"));
      const c = client(url);
      const errors = errorsOf(c);
      await until(() => errors.length >= 2, "two failed attempts");
      expect(errors[0]!.context).toMatchObject({ reason: "http", status: 401, attempt: 1 });
      expect(errors[0]!.message).toContain("HTTP 401");
    });

    it("protocol: a WebSocket server that picks no Tributary subprotocol", async () => {
      const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: () => false });
      await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
      cleanups.push(() => new Promise((resolve) => wss.close(resolve)));
      const c = client(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
      const errors = errorsOf(c);
      await until(() => errors.length >= 1, "a failed attempt");
      expect(errors[0]!.context.reason).toBe("protocol");
    });

    it("dns: a host name that does not resolve", async () => {
      const c = client("ws://tributary-test.invalid:8080");
      const errors = errorsOf(c);
      await waitFor(() => errors.length >= 1, { timeoutMs: 20_000, what: "a failed DNS attempt", intervalMs: 5 });
      expect(errors[0]!.context.reason).toBe("dns");
    });

    it("a successful connect clears lastError", async () => {
      const server = await setup();
      let refuse = true;
      server.onFrame = (ws, frame) => {
        if (frame.op !== "hello") return;
        if (refuse) ws.close(4000, "not yet");
        else send(ws, { op: "welcome", id: frame.id, sessionId: "s", clientId: "c", node: "fake", limits: LIMITS });
      };
      const c = client(server.url);
      const errors = errorsOf(c);
      await until(() => errors.length >= 1, "a refused hello");
      expect(errors[0]!.context).toMatchObject({ reason: "closed", closeCode: 4000 });
      refuse = false;
      await until(() => c.state === State.Connected, "connected");
      expect(c.lastError).toBeUndefined();
    });
  });
});
