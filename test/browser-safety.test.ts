/**
 * Browser-safe defaults (docs/configuration.md, "Browser access"; docs/http-api.md): a web
 * page on another origin cannot write to a node the browser can reach. Request bodies must
 * be JSON, CBOR or NDJSON (415 otherwise: a `text/plain` POST needs no CORS preflight);
 * preflights are answered only for `http.corsOrigins`; `/ws` and `/mqtt` upgrades with a
 * foreign `Origin` get 403 unless listed in `ws.allowedOrigins`; same-origin pages (the
 * console) and clients sending no `Origin` (Node, devices, the CLI) keep working.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import NodeWebSocket from "ws";
import { DEFAULT_CONFIG, type TributaryConfig } from "../server/src/config/config.ts";
import { createLogger } from "../server/src/logger.ts";
import { startNode, type TributaryNode } from "../server/src/node.ts";
import { within } from "./helpers/wait.ts";

const BIN = fileURLToPath(new URL("../server/bin/tributary.mjs", import.meta.url));
const ALLOWED = "http://allowed.example";
const FOREIGN = "http://evil.example";

const dirs: string[] = [];
const nodes: TributaryNode[] = [];

async function startTestNode(overrides: Partial<Pick<TributaryConfig, "http" | "ws">> = {}): Promise<TributaryNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-browser-safety-"));
  dirs.push(dataDir);
  const config: TributaryConfig = {
    ...DEFAULT_CONFIG,
    ...overrides,
    dataDir,
    host: "127.0.0.1",
    port: 0,
    file: { ...DEFAULT_CONFIG.file, fsync: "never" },
    mqtt: { ...DEFAULT_CONFIG.mqtt, enabled: true, port: 0 },
    log: { level: "error" },
  };
  const node = await startNode(config, { logger: createLogger("error") });
  nodes.push(node);
  return node;
}

/** The default node (no cross-origin access) and one that lists ALLOWED for CORS and WebSockets. */
let node: TributaryNode;
let open: TributaryNode;

beforeAll(async () => {
  node = await startTestNode();
  open = await startTestNode({ http: { corsOrigins: [ALLOWED] }, ws: { allowedOrigins: [ALLOWED] } });
});
afterAll(async () => {
  for (const n of nodes) await n.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  json: any;
}

/** One HTTP request with exactly these headers (node:http, so Origin and Host are ours to set). */
function request(target: TributaryNode, method: string, path: string, headers: Record<string, string> = {}, body?: string | Uint8Array): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: target.httpPort, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const json = res.headers["content-type"]?.startsWith("application/json") && text ? JSON.parse(text) : undefined;
        resolve({ status: res.statusCode!, headers: res.headers, json });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function endOffset(target: TributaryNode, topic: string): Promise<number> {
  return (await target.broker.offsets(topic, 0)).endOffset;
}

let topicSeq = 0;
async function newTopic(target: TributaryNode): Promise<string> {
  const name = `safety-${topicSeq++}`;
  await target.broker.createTopic(name, { partitions: 1 });
  return name;
}

/** Opens a WebSocket with these headers; resolves with the HTTP status of a refused upgrade, or 101 once open (then closes it). */
function upgrade(url: string, protocol: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new NodeWebSocket(url, protocol, { headers, perMessageDeflate: false });
    ws.once("open", () => {
      ws.close();
      resolve({ status: 101, body: "" });
    });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    ws.once("error", (err) => reject(err));
  });
}

describe("HTTP request bodies: only JSON, CBOR and NDJSON", () => {
  it("refuses a text/plain produce (the no-preflight cross-site write) with 415 naming the accepted types, and writes nothing", async () => {
    const topic = await newTopic(node);
    const reply = await request(node, "POST", `/topics/${topic}/records`, { "content-type": "text/plain;charset=UTF-8" }, JSON.stringify({ value: "pwned" }));
    expect(reply.status).toBe(415);
    expect(reply.json.error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    expect(reply.json.error.message).toContain("application/json, application/cbor, application/x-ndjson");
    expect(reply.json.error.message).toContain('"text/plain;charset=utf-8"');
    expect(await endOffset(node, topic)).toBe(0);
  });

  it("refuses form, missing and other Content-Types on every body route with 415; the topic, offsets and groups are untouched", async () => {
    const topic = await newTopic(node);
    const body = JSON.stringify({ value: "pwned" });
    const variants: Array<Record<string, string>> = [{ "content-type": "application/x-www-form-urlencoded" }, { "content-type": "multipart/form-data; boundary=x" }, {}, { "content-type": "application/jsonp" }];
    for (const headers of variants) {
      const reply = await request(node, "POST", `/topics/${topic}/records`, headers, body);
      expect(reply.status, JSON.stringify(headers)).toBe(415);
    }
    const create = await request(node, "POST", "/topics", { "content-type": "text/plain" }, JSON.stringify({ name: "created-by-a-page" }));
    expect(create.status).toBe(415);
    expect(create.json.error.message).toContain("POST /topics accepts a body of Content-Type application/json, application/cbor; got \"text/plain\"");
    const reset = await request(node, "POST", "/groups/g/reset-offsets", { "content-type": "text/plain" }, JSON.stringify({ topic, to: "earliest" }));
    expect(reset.status).toBe(415);
    // NDJSON is for produce only
    expect((await request(node, "POST", "/topics", { "content-type": "application/x-ndjson" }, JSON.stringify({ name: "ndjson-topic" }))).status).toBe(415);
    expect(await node.broker.listTopics()).not.toContain("created-by-a-page");
    expect(await endOffset(node, topic)).toBe(0);
  });

  it("still takes JSON (with a charset), CBOR and NDJSON", async () => {
    const topic = await newTopic(node);
    const json = await request(node, "POST", `/topics/${topic}/records`, { "content-type": "application/json; charset=utf-8" }, JSON.stringify({ value: "json" }));
    expect(json.status).toBe(200);
    const { encode } = await import("cbor-x");
    const cbor = await request(node, "POST", `/topics/${topic}/records`, { "content-type": "application/cbor" }, encode({ value: new Uint8Array([1, 2]) }));
    expect(cbor.status).toBe(200);
    const ndjson = await request(node, "POST", `/topics/${topic}/records?acks=all`, { "content-type": "application/x-ndjson" }, '{"key":"a","value":"n1"}\n\n{"value":{"n":2}}\n');
    expect(ndjson.status).toBe(200);
    expect(ndjson.json.offsets).toEqual([
      { partition: 0, offset: 2 },
      { partition: 0, offset: 3 },
    ]);
    const bad = await request(node, "POST", `/topics/${topic}/records`, { "content-type": "application/x-ndjson" }, '{"value":"ok"}\n{nope\n');
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain("line 2");
    const records = await node.broker.read(topic, 0, 0, { maxRecords: 10 });
    expect(records.map((r) => Buffer.from(r.value!).toString())).toEqual(["json", "\u0001\u0002", "n1", '{"n":2}']);
  });

  it("the CLI still creates topics and produces", async () => {
    const run = (args: string[], input?: string) =>
      within(
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [BIN, ...args, "--url", node.url], { stdio: ["pipe", "ignore", "pipe"] });
          let stderr = "";
          child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
          child.on("close", (code) => resolve({ code, stderr }));
          child.stdin.end(input ?? "");
        }),
        30_000,
        `tributary ${args[0]} to exit`,
      );
    const created = await run(["topics", "create", "cli-safety", "--partitions", "1"]);
    expect(created.code, created.stderr).toBe(0);
    const produced = await run(["produce", "cli-safety"], "one\ntwo\n");
    expect(produced.code, produced.stderr).toBe(0);
    const records = await node.broker.read("cli-safety", 0, 0, { maxRecords: 10 });
    expect(records.map((r) => Buffer.from(r.value!).toString())).toEqual(["one", "two"]);
  });
});

describe("CORS: only listed origins", () => {
  it("answers a preflight only for origins in http.corsOrigins; others get 403 without CORS headers", async () => {
    const preflight = (target: TributaryNode, origin: string) =>
      request(target, "OPTIONS", "/topics/t/records", { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" });
    const allowed = await preflight(open, ALLOWED);
    expect(allowed.status).toBe(204);
    expect(allowed.headers["access-control-allow-origin"]).toBe(ALLOWED);
    expect(allowed.headers["access-control-allow-methods"]).toContain("POST");
    expect(String(allowed.headers["access-control-allow-headers"]).toLowerCase()).toContain("content-type");

    for (const [target, origin] of [
      [open, FOREIGN],
      [node, ALLOWED], // the default: nobody
      [node, FOREIGN],
    ] as const) {
      const refused = await preflight(target, origin);
      expect(refused.status, origin).toBe(403);
      expect(refused.json.error.code).toBe("FORBIDDEN");
      expect(refused.json.error.message).toContain("http.corsOrigins");
      expect(refused.headers["access-control-allow-origin"]).toBeUndefined();
    }
    // not a preflight: a plain OPTIONS says what the API allows
    const plain = await request(node, "OPTIONS", "/topics");
    expect(plain.status).toBe(204);
    expect(plain.headers.allow).toContain("POST");
  });

  it("adds Access-Control-Allow-Origin for listed origins only, and refuses writes from unlisted foreign origins", async () => {
    expect((await request(open, "GET", "/topics", { origin: ALLOWED })).headers["access-control-allow-origin"]).toBe(ALLOWED);
    expect((await request(open, "GET", "/topics", { origin: FOREIGN })).headers["access-control-allow-origin"]).toBeUndefined();
    expect((await request(node, "GET", "/topics", { origin: ALLOWED })).headers["access-control-allow-origin"]).toBeUndefined();

    const topic = await newTopic(open);
    const json = { "content-type": "application/json" };
    const fromAllowed = await request(open, "POST", `/topics/${topic}/records`, { ...json, origin: ALLOWED }, JSON.stringify({ value: "allowed" }));
    expect(fromAllowed.status).toBe(200);
    expect(fromAllowed.headers["access-control-allow-origin"]).toBe(ALLOWED);
    const fromForeign = await request(open, "POST", `/topics/${topic}/records`, { ...json, origin: FOREIGN }, JSON.stringify({ value: "foreign" }));
    expect(fromForeign.status).toBe(403);
    expect(fromForeign.json.error.code).toBe("FORBIDDEN");
    const deleted = await request(open, "DELETE", `/topics/${topic}`, { origin: "null" });
    expect(deleted.status).toBe(403);
    // same origin (the console) and no Origin (curl, the CLI) write as before
    const sameOrigin = await request(open, "POST", `/topics/${topic}/records`, { ...json, origin: `http://127.0.0.1:${open.httpPort}` }, JSON.stringify({ value: "same" }));
    expect(sameOrigin.status).toBe(200);
    const records = await open.broker.read(topic, 0, 0, { maxRecords: 10 });
    expect(records.map((r) => Buffer.from(r.value!).toString())).toEqual(["allowed", "same"]);
  });
});

describe("WebSocket Origin allow-list on /ws and /mqtt", () => {
  it("refuses a foreign Origin with 403 before the upgrade, on /ws and /mqtt", async () => {
    for (const [path, protocol] of [
      ["/ws", "tributary.v1.json"],
      ["/mqtt", "mqtt"],
    ] as const) {
      const refused = await upgrade(`ws://127.0.0.1:${node.httpPort}${path}`, protocol, { origin: FOREIGN });
      expect(refused.status, path).toBe(403);
      expect(refused.body).toContain("ws.allowedOrigins");
      // an origin on the same host but another port is another origin
      expect((await upgrade(`ws://127.0.0.1:${node.httpPort}${path}`, protocol, { origin: `http://127.0.0.1:${node.httpPort + 1}` })).status).toBe(403);
      expect((await upgrade(`ws://127.0.0.1:${open.httpPort}${path}`, protocol, { origin: FOREIGN })).status).toBe(403);
    }
  });

  it("accepts the node's own origin, clients without Origin, and origins in ws.allowedOrigins", async () => {
    for (const [path, protocol] of [
      ["/ws", "tributary.v1.json"],
      ["/mqtt", "mqtt"],
    ] as const) {
      const url = `ws://127.0.0.1:${node.httpPort}${path}`;
      expect((await upgrade(url, protocol, { origin: `http://127.0.0.1:${node.httpPort}` })).status, `${path} same origin`).toBe(101);
      expect((await upgrade(url, protocol, { origin: `http://localhost:${node.httpPort}`, host: `localhost:${node.httpPort}` })).status, `${path} same origin by name`).toBe(101);
      expect((await upgrade(url, protocol, {})).status, `${path} no Origin`).toBe(101);
      expect((await upgrade(`ws://127.0.0.1:${open.httpPort}${path}`, protocol, { origin: ALLOWED })).status, `${path} listed`).toBe(101);
    }
    // a real MQTT session over WebSocket from the node's own origin
    const client = mqtt.connect(`ws://127.0.0.1:${node.httpPort}/mqtt`, { reconnectPeriod: 0, wsOptions: { headers: { origin: `http://127.0.0.1:${node.httpPort}` } } });
    await within(new Promise<void>((resolve, reject) => (client.once("connect", () => resolve()), client.once("error", reject))), 10_000, "CONNACK over /mqtt");
    await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
  });
});

describe("in a real browser", () => {
  let browser: Browser;
  let attacker: http.Server;
  let attackerOrigin: string;

  beforeAll(async () => {
    // The attacker's page: another origin (another port) on the same machine.
    attacker = http.createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>attacker</title>"));
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", resolve));
    attackerOrigin = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-component-update", "--disable-sync"],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => attacker?.close(resolve));
  });

  it("a page on another origin can neither produce (text/plain or JSON) nor open /ws and /mqtt", async () => {
    const topic = await newTopic(node);
    const page = await browser.newPage();
    await page.goto(attackerOrigin);
    const outcome = await page.evaluate(
      async ({ base, wsBase, topic }) => {
        const result: Record<string, string> = {};
        // the "simple request" that needed no preflight before: the response is opaque either way, the write is what counts
        await fetch(`${base}/topics/${topic}/records`, { method: "POST", mode: "no-cors", body: JSON.stringify({ value: "text-plain" }) }).catch(() => {});
        try {
          const res = await fetch(`${base}/topics/${topic}/records`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ value: "json" }) });
          result.json = `status ${res.status}`;
        } catch (err) {
          result.json = `refused: ${(err as Error).name}`;
        }
        const openSocket = (url: string, protocol: string) =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(url, protocol);
            ws.onopen = () => {
              ws.close();
              resolve("open");
            };
            ws.onerror = () => resolve("error");
          });
        result.ws = await openSocket(`${wsBase}/ws`, "tributary.v1.json");
        result.mqtt = await openSocket(`${wsBase}/mqtt`, "mqtt");
        return result;
      },
      { base: node.url, wsBase: `ws://127.0.0.1:${node.httpPort}`, topic },
    );
    await page.close();
    expect(outcome).toEqual({ json: "refused: TypeError", ws: "error", mqtt: "error" });
    expect(await endOffset(node, topic)).toBe(0);
  });

  it("a page on a listed origin can produce with JSON and open /ws", async () => {
    const listed = await startTestNode({ http: { corsOrigins: [attackerOrigin] }, ws: { allowedOrigins: [attackerOrigin] } });
    const topic = await newTopic(listed);
    const page = await browser.newPage();
    await page.goto(attackerOrigin);
    const outcome = await page.evaluate(
      async ({ base, wsBase, topic }) => {
        const res = await fetch(`${base}/topics/${topic}/records`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ value: "listed" }) });
        const body = (await res.json()) as { offsets: unknown };
        const ws = await new Promise<string>((resolve) => {
          const socket = new WebSocket(`${wsBase}/ws`, "tributary.v1.json");
          socket.onopen = () => {
            socket.close();
            resolve("open");
          };
          socket.onerror = () => resolve("error");
        });
        return { status: res.status, offsets: body.offsets, ws };
      },
      { base: listed.url, wsBase: `ws://127.0.0.1:${listed.httpPort}`, topic },
    );
    await page.close();
    expect(outcome).toEqual({ status: 200, offsets: [{ partition: 0, offset: 0 }], ws: "open" });
  });
});
