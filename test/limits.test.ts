/**
 * Limits tied to IP address and identity (docs/security.md#limits) on one node with JWT
 * and password-file authentication: connections per IP (MQTT CONNACK 0x97 / 0x03,
 * WebSocket upgrade 429; other addresses unaffected, shown with 127.0.0.x source
 * addresses), failed-auth backoff (slowed, then blocked, then allowed again), connections
 * per identity (CONNACK 0x97, WebSocket error QUEUE_FULL + close 1013) and publish rates
 * per identity (MQTT 5 PUBACK 0x97, WebSocket QUEUE_FULL, HTTP 429 + Retry-After) while
 * another identity publishes freely. Refusals and failures are counted in /metrics.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import mqttPacket, { type Packet } from "mqtt-packet";
import { SUBPROTOCOL_CBOR } from "@tributary/client/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { hashPassword } from "../server/src/auth/password-hash.ts";
import { request as httpRequest } from "node:http";
import { clientLimitsFor } from "../server/src/gateway/limits/index.ts";
import { connectClient, endClient, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor, within } from "./helpers/wait.ts";
import { WsTestClient } from "./helpers/ws-test-client.ts";

const SECRET = "limits-secret-limits-secret-limits-secret";
const dir = mkdtempSync(join(tmpdir(), "tributary-limits-"));
const secretFile = join(dir, "jwt.secret");
const passwordFile = join(dir, "passwd");

const LIMITS = {
  maxConnectionsPerIp: 4,
  maxConnectionsPerIdentity: 2,
  connectRatePerIp: 2,
  connectBurstPerIp: 12,
  authFailuresBeforeBlock: 4,
  authBlockMs: 1500,
  publishRatePerIdentity: 2,
};

let node: MqttTestNode;
const opened: Array<{ close(): void }> = [];

beforeAll(async () => {
  writeFileSync(secretFile, SECRET);
  writeFileSync(passwordFile, `dave:${await hashPassword("dave-pw")}\n`);
  node = await startMqttTestNode({}, {}, LIMITS, { jwt: { secretFile }, passwordFile });
}, 30_000);

afterAll(async () => {
  for (const c of opened) c.close();
  await node?.close();
  rmSync(dir, { recursive: true, force: true });
});

function token(sub: string): Promise<string> {
  return new SignJWT({ sub, acl: { all: ["#"] } })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
}

let seq = 0;

/** A raw MQTT CONNECT from `localAddress`: resolves with the CONNACK code and the open socket (closed by afterAll). */
async function mqttConnect(localAddress: string, options: { version?: 4 | 5; username?: string; password?: string } = {}): Promise<{ code: number; socket: Socket }> {
  const version = options.version ?? 5;
  const socket = netConnect({ host: "127.0.0.1", port: node.mqttPort, localAddress });
  opened.push({ close: () => socket.destroy() });
  const parser = mqttPacket.parser({ protocolVersion: version });
  const connack = new Promise<number>((resolve, reject) => {
    parser.on("packet", (p: Packet) => {
      if (p.cmd === "connack") resolve((version === 5 ? p.reasonCode : p.returnCode) ?? 0);
    });
    socket.on("data", (d) => parser.parse(d));
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("closed before CONNACK")));
  });
  socket.on("connect", () => {
    socket.write(
      mqttPacket.generate(
        {
          cmd: "connect",
          protocolId: "MQTT",
          protocolVersion: version,
          clean: true,
          clientId: `lim-${++seq}`,
          keepalive: 60,
          ...(options.username !== undefined ? { username: options.username } : {}),
          ...(options.password !== undefined ? { password: Buffer.from(options.password) } : {}),
        },
        { protocolVersion: version },
      ),
    );
  });
  return { code: await within(connack, 10_000, "CONNACK"), socket };
}

/** A WebSocket upgrade of /ws from `localAddress`: "open" or the HTTP status and Retry-After. */
function wsUpgrade(localAddress: string): Promise<{ status: number | "open"; retryAfter?: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/ws`, [SUBPROTOCOL_CBOR], { localAddress });
  opened.push({ close: () => ws.terminate() });
  return within(
    new Promise((resolve, reject) => {
      ws.once("open", () => resolve({ status: "open" }));
      ws.once("unexpected-response", (_req, res) => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] }));
      ws.once("error", reject);
    }),
    10_000,
    "the WebSocket upgrade",
  );
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("connections per IP", () => {
  it("refuses-the-fifth-connection-from-one-address-on-mqtt-and-ws-while-another-address-connects", async () => {
    const anon = await token("per-ip-a");
    const tokenB = await token("per-ip-b");
    for (const password of [anon, anon, tokenB, tokenB]) expect((await mqttConnect("127.0.0.2", { username: "x", password })).code).toBe(0);
    // WebSocket and MQTT count together: the address is full for both.
    expect((await mqttConnect("127.0.0.2", { username: "x", password: tokenB })).code).toBe(0x97);
    expect((await mqttConnect("127.0.0.2", { version: 4, username: "x", password: tokenB })).code).toBe(0x03);
    const ws = await wsUpgrade("127.0.0.2");
    expect(ws.status).toBe(429);
    expect(Number(ws.retryAfter)).toBeGreaterThanOrEqual(1);
    // Another address is not affected.
    expect((await mqttConnect("127.0.0.3", { username: "x", password: await token("per-ip-c") })).code).toBe(0);
    expect((await wsUpgrade("127.0.0.3")).status).toBe("open");
    expect(await metric("tributary_limit_refusals_total", 'limit="connections_per_ip",gateway="mqtt"')).toBe(2);
    expect(await metric("tributary_limit_refusals_total", 'limit="connections_per_ip",gateway="ws"')).toBe(1);
  });

  it("frees-the-slot-when-a-connection-closes", async () => {
    const t = await token("per-ip-free");
    const t2 = await token("per-ip-free-2");
    const a = await mqttConnect("127.0.0.6", { username: "x", password: t });
    expect(a.code).toBe(0);
    for (const password of [t, t2, t2]) expect((await mqttConnect("127.0.0.6", { username: "x", password })).code).toBe(0);
    expect((await mqttConnect("127.0.0.6", { username: "x", password: t })).code).toBe(0x97);
    const closed = new Promise((r) => a.socket.once("close", r));
    a.socket.destroy();
    await closed;
    // The server sees the close on its side: wait until the slot is free (polled; each try is a real CONNECT).
    let code = -1;
    await waitFor(async () => (code = (await mqttConnect("127.0.0.6", { username: "x", password: await token("per-ip-free-3") })).code) === 0, { what: "a free slot after a close", intervalMs: 50 });
    expect(code).toBe(0);
  });
});

describe("connect rate per IP", () => {
  it("refuses-connects-beyond-the-burst-from-one-address", async () => {
    // burst 12 at 2/s from a fresh address; the connections are closed at once (the count limit is not what refuses).
    const codes: number[] = [];
    for (let i = 0; i < 13; i++) {
      const { code, socket } = await mqttConnect("127.0.0.5");
      codes.push(code);
      socket.destroy();
    }
    // Anonymous clients are refused 0x87 by auth, after the rate check: the 13th gets the rate's 0x97.
    expect(codes.slice(0, 12)).toEqual(Array(12).fill(0x87));
    expect(codes[12]).toBe(0x97);
    expect(await metric("tributary_limit_refusals_total", 'limit="connect_rate_per_ip",gateway="mqtt"')).toBeGreaterThanOrEqual(1);
  });
});

describe("failed-auth backoff", () => {
  it("slows-then-blocks-an-address-guessing-passwords-then-lets-it-in-after-the-block", async () => {
    const limits = clientLimitsFor(node.node.broker, node.node.config);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const { code, socket } = await mqttConnect("127.0.0.4", { username: "dave", password: `wrong-${i}` });
      times.push(Date.now() - started);
      socket.destroy();
      expect(code).toBe(0x86);
    }
    // The third failure is answered after the backoff's first delay (250 ms); the first two at once.
    expect(times[2]!).toBeGreaterThanOrEqual(240);
    // The fourth failure blocks the address: even the right password is refused, before it is checked.
    expect((await mqttConnect("127.0.0.4", { username: "dave", password: "wrong-3" })).code).toBe(0x86);
    expect(limits.blockedFor("127.0.0.4")).toBeGreaterThan(0);
    expect((await mqttConnect("127.0.0.4", { username: "dave", password: "dave-pw" })).code).toBe(0x97);
    expect((await mqttConnect("127.0.0.4", { version: 4, username: "dave", password: "dave-pw" })).code).toBe(0x03);
    expect((await wsUpgrade("127.0.0.4")).status).toBe(429);
    // Another address is not blocked.
    expect((await mqttConnect("127.0.0.7", { username: "dave", password: "dave-pw" })).code).toBe(0);
    // After authBlockMs (the limiter's clock says when), the address may try again.
    await waitFor(() => limits.blockedFor("127.0.0.4") === 0, { what: "the end of the block", timeoutMs: 5000 });
    expect((await mqttConnect("127.0.0.4", { username: "dave", password: "dave-pw" })).code).toBe(0);
    expect(await metric("tributary_auth_failures_total", 'gateway="mqtt",reason="bad_password"')).toBe(4);
    expect(await metric("tributary_limit_refusals_total", 'limit="auth_blocked",gateway="mqtt"')).toBe(2);
  });
});

/** GET /topics from `localAddress` with `authorization`: status and Retry-After. */
function httpGet(localAddress: string, authorization: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: node.httpPort, path: "/topics", localAddress, headers: { authorization } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] as string | undefined }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("failed-auth backoff over HTTP", () => {
  it("answers-bad-bearer-tokens-from-one-address-ever-slower-then-429-with-retry-after-while-another-address-gets-in", async () => {
    const limits = clientLimitsFor(node.node.broker, node.node.config);
    const good = `Bearer ${await token("http-user")}`;
    for (let i = 0; i < 4; i++) expect((await httpGet("127.0.0.9", `Bearer not-a-token-${i}`)).status).toBe(401);
    expect(limits.blockedFor("127.0.0.9")).toBeGreaterThan(0);
    const blocked = await httpGet("127.0.0.9", good);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.retryAfter)).toBeGreaterThan(0);
    expect((await httpGet("127.0.0.10", good)).status).toBe(200);
    await waitFor(() => limits.blockedFor("127.0.0.9") === 0, { what: "the end of the block", timeoutMs: 5000 });
    expect((await httpGet("127.0.0.9", good)).status).toBe(200);
  });
});

/** A WebSocket from `localAddress` whose hello carries `token`: the close code the node ends it with. */
function wsHelloClose(localAddress: string, token: string): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/ws`, ["tributary.v1.json"], { localAddress });
  opened.push({ close: () => ws.terminate() });
  return new Promise((resolve, reject) => {
    ws.once("open", () => ws.send(JSON.stringify({ op: "hello", id: 1, protocol: 1, token })));
    ws.once("close", (code) => resolve(code));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

describe("failed-auth backoff over WebSocket hello", () => {
  it("counts-bad-hello-tokens-against-the-address-until-its-upgrades-get-429-while-another-address-gets-in", async () => {
    const limits = clientLimitsFor(node.node.broker, node.node.config);
    for (let i = 0; i < 4; i++) expect(await wsHelloClose("127.0.0.11", `not-a-token-${i}`)).toBe(4501);
    expect(limits.blockedFor("127.0.0.11")).toBeGreaterThan(0);
    expect((await wsUpgrade("127.0.0.11")).status).toBe(429);
    expect((await wsUpgrade("127.0.0.12")).status).toBe("open");
    expect(await metric("tributary_auth_failures_total", 'gateway="ws",reason="bad_token"')).toBeGreaterThanOrEqual(4);
  });
});

describe("connections per identity", () => {
  it("refuses-a-third-connection-of-one-identity-on-mqtt-and-ws-hello-but-not-another-identity", async () => {
    const t = await token("per-identity");
    const a = await connectClient(node.tcpUrl, { protocolVersion: 5, username: "x", password: t, clientId: "pid-a" });
    const ws = await WsTestClient.open(`${node.sdkUrl}/ws`);
    const welcome = await ws.request({ op: "hello", protocol: 1, token: t });
    expect(welcome.op).toBe("welcome");
    // Third connection of the identity: MQTT CONNACK 0x97, WebSocket error QUEUE_FULL + close 1013.
    expect((await mqttConnect("127.0.0.1", { username: "x", password: t })).code).toBe(0x97);
    const ws2 = await WsTestClient.open(`${node.sdkUrl}/ws`);
    const refused = ws2.waitFor((f) => f.op === "error");
    void ws2.request({ op: "hello", protocol: 1, token: t }).catch(() => undefined); // answered by an error without the hello's id (asserted below)
    expect(await refused).toMatchObject({ op: "error", code: "QUEUE_FULL" });
    expect((await ws2.closed).code).toBe(1013);
    // Another identity connects.
    const other = await connectClient(node.tcpUrl, { protocolVersion: 5, username: "x", password: await token("someone-else"), clientId: "pid-b" });
    await endClient(other);
    await endClient(a);
    ws.close();
    // Every connection from 127.0.0.1 of this test is closed on the server's side too (the next test starts from none).
    const limits = clientLimitsFor(node.node.broker, node.node.config);
    await waitFor(() => limits.connectionsFrom("127.0.0.1") === 0, { what: "the server to see the closes" });
    expect(ws2.frames.some((f) => f.op === "welcome")).toBe(false);
    expect(await metric("tributary_limit_refusals_total", 'limit="connections_per_identity",gateway="ws"')).toBe(1);
  });
});

describe("publish rate per identity", () => {
  it("refuses-a-publisher-over-its-rate-while-another-identity-publishes", async () => {
    const fast = await connectClient(node.tcpUrl, { protocolVersion: 5, username: "x", password: await token("fast"), clientId: "rate-fast" });
    const slow = await connectClient(node.tcpUrl, { protocolVersion: 5, username: "x", password: await token("slow"), clientId: "rate-slow" });
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) {
      codes.push(
        await fast.publishAsync("rates/fast", `m${i}`, { qos: 1 }).then(
          (p) => (p as { reasonCode?: number } | undefined)?.reasonCode ?? 0,
          (err: { code?: number }) => err.code ?? -1,
        ),
      );
    }
    // burst 2 (2 per second): the third within the same second is refused, Quota exceeded.
    expect(codes).toEqual([0, 0, 0x97]);
    await slow.publishAsync("rates/slow", "ok", { qos: 1 });
    await endClient(fast);
    await endClient(slow);

    // WebSocket: QUEUE_FULL (retriable) naming the limit.
    const ws = await WsTestClient.open(`${node.sdkUrl}/ws`);
    await ws.request({ op: "hello", protocol: 1, token: await token("ws-pub") });
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await ws.publish("rates", `w${i}`));
    expect(replies.map((r) => r.op)).toEqual(["ack", "ack", "error"]);
    expect(replies[2]).toMatchObject({ code: "QUEUE_FULL", message: expect.stringContaining("limits.publishRatePerIdentity") });
    ws.close();

    // HTTP: 429 with Retry-After, nothing stored.
    const httpToken = await token("http-pub");
    const post = () =>
      fetch(`http://127.0.0.1:${node.httpPort}/topics/rates/records`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${httpToken}` },
        body: JSON.stringify({ records: [{ value: "a" }, { value: "b" }] }),
      });
    expect((await post()).status).toBe(200);
    const over = await post();
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await over.json()).toMatchObject({ error: { code: "QUEUE_FULL" } });
    expect(await metric("tributary_limit_refusals_total", 'limit="publish_rate_per_identity",gateway="http"')).toBe(1);
  });
});
