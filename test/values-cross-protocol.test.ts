/**
 * One logical value, written by every producer Tributary has, read by every reader: each
 * reader shows what a person would expect (docs/semantics.md, "Values and content types").
 *
 * Values: JSON `{"temp":21.5}`, text `hello ✓`, bytes `00 ff 10`. Writers: the SDK (default
 * JSON codec), HTTP, the CLI, MQTT 3.1.1 (no content type) and MQTT 5 (Content Type).
 * Readers: the SDK, MQTT.js 5 and 3.1.1, mosquitto_sub (MQTT 5) and the web console in
 * Chromium. Record keys `<writer>/<kind>` (SDK, HTTP, CLI) reach MQTT as
 * `values/<writer>/<kind>`, the topics MQTT writers publish to.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser } from "playwright-core";
import type { MqttClient } from "mqtt";
import { connect, type Message, type TributaryClient } from "@tributary/client";
import { connectClient, endClient, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor } from "./helpers/wait.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TOPIC = "values";
const JSON_VALUE = { temp: 21.5 };
const JSON_TEXT = '{"temp":21.5}';
const TEXT = "hello ✓";
const BYTES = [0x00, 0xff, 0x10];
const TEXT_TYPE = "text/plain; charset=utf-8";

type Kind = "json" | "text" | "bytes";
type Writer = "sdk" | "http" | "cli" | "mqtt311" | "mqtt5";
/** Every (writer, kind) written: the CLI writes lines, so no bytes. */
const WRITTEN: Array<[Writer, Kind]> = (["sdk", "http", "cli", "mqtt311", "mqtt5"] as Writer[]).flatMap((w) => (["json", "text", "bytes"] as Kind[]).filter((k) => !(w === "cli" && k === "bytes")).map((k): [Writer, Kind] => [w, k]));
const typed = (w: Writer) => w !== "mqtt311";
const contentTypeOf = (w: Writer, k: Kind) => (!typed(w) ? undefined : k === "json" ? "application/json" : k === "text" ? TEXT_TYPE : "application/octet-stream");
/** The record key: MQTT writers' is their MQTT topic; the others' is `<writer>/<kind>`. */
const keyOf = (w: Writer, k: Kind) => (w.startsWith("mqtt") ? `${TOPIC}/${w}/${k}` : `${w}/${k}`);
const bytesOf = (k: Kind) => (k === "json" ? Buffer.from(JSON_TEXT) : k === "text" ? Buffer.from(TEXT) : Buffer.from(BYTES));

let node: MqttTestNode;
let httpUrl: string;
let browser: Browser | undefined;
const sdkClients: TributaryClient[] = [];
const mqttClients: MqttClient[] = [];
const children = new Set<ChildProcess>();

beforeAll(async () => {
  node = await startMqttTestNode({}, { defaultPartitions: 1 });
  httpUrl = `http://127.0.0.1:${node.httpPort}`;
  const created = await fetch(`${httpUrl}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: TOPIC, partitions: 1 }) });
  expect(created.status).toBe(201);
});

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await browser?.close();
  await Promise.all(mqttClients.map((c) => endClient(c, true)));
  await Promise.all(sdkClients.map((c) => c.close()));
  await node?.close();
});

function sdk(): TributaryClient {
  const c = connect(node.sdkUrl, { minReconnectDelay: 20, maxReconnectDelay: 200 });
  sdkClients.push(c);
  return c;
}

/** Runs the `tributary` CLI from its sources (like `npm run dev`), stdin `input`; resolves with its exit. */
function cli(args: string[], input: string): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ["--conditions=tributary-source", "--import", "tsx", "server/src/cli/main.ts", ...args, "--url", httpUrl], { cwd: ROOT, stdio: ["pipe", "ignore", "pipe"] });
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(input);
  return new Promise((resolve) => child.on("close", (code) => (children.delete(child), resolve({ code, stderr }))));
}

/** mosquitto_sub (MQTT 5) printing `topic<TAB>content type<TAB>payload`, one message per line; -d reports the SUBACK. */
function mosquittoSub(): { raw: () => string; lines: () => Array<{ topic: string; contentType: string; payload: Buffer }>; until: (check: () => boolean, what: string) => Promise<void> } {
  const child = spawn("/usr/bin/stdbuf", ["-oL", "/usr/bin/mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", String(node.mqttPort), "-V", "mqttv5", "-q", "1", "-t", `${TOPIC}/#`, "-F", "%t\t%C\t%p"]);
  children.add(child);
  let out = ""; // latin1: one char per byte, so payload bytes survive
  child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
  child.stderr.on("data", (d: Buffer) => (out += d.toString("latin1")));
  const lines = () =>
    out
      .split("\n")
      .filter((l) => l.startsWith(`${TOPIC}/`))
      .map((l) => {
        const [topic, contentType, ...rest] = l.split("\t");
        return { topic: topic!, contentType: contentType!, payload: Buffer.from(rest.join("\t"), "latin1") };
      });
  const until = (check: () => boolean, what: string) =>
    waitFor(() => {
      if (child.exitCode !== null) throw new Error(`mosquitto_sub ended before ${what}: ${out}`);
      return check();
    }, { timeoutMs: 20_000, what: `${what}; mosquitto_sub said: ${out.slice(-1000)}`, intervalMs: 20 });
  return { raw: () => out, lines, until: async (check, what) => until(check, what).then(() => undefined) };
}

interface MqttMessage {
  topic: string;
  payload: Buffer;
  contentType?: string;
  payloadFormatIndicator?: boolean;
  userProperties?: Record<string, unknown>;
}

async function mqttReader(protocolVersion: 4 | 5): Promise<MqttMessage[]> {
  const got: MqttMessage[] = [];
  const client = await connectClient(node.tcpUrl, { protocolVersion });
  mqttClients.push(client);
  client.on("message", (topic, payload, packet) => {
    const p = packet.properties;
    got.push({ topic, payload, ...(p?.contentType !== undefined ? { contentType: p.contentType } : {}), ...(p?.payloadFormatIndicator !== undefined ? { payloadFormatIndicator: p.payloadFormatIndicator } : {}), ...(p?.userProperties ? { userProperties: p.userProperties } : {}) });
  });
  await client.subscribeAsync(`${TOPIC}/#`, { qos: 1 });
  return got;
}

/** Writes every (writer, kind), one at a time (one partition: this is the log's order). */
async function writeAll(): Promise<void> {
  const publisher = sdk();
  await publisher.publish(TOPIC, JSON_VALUE, { key: "sdk/json", headers: { unit: "C" } });
  await publisher.publish(TOPIC, TEXT, { key: "sdk/text" });
  await publisher.publish(TOPIC, new Uint8Array(BYTES), { key: "sdk/bytes" });

  const http = await fetch(`${httpUrl}/topics/${TOPIC}/records`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      records: [
        { key: "http/json", value: JSON_VALUE, headers: { unit: "C" } },
        { key: "http/text", value: TEXT },
        { key: "http/bytes", value: { base64: Buffer.from(BYTES).toString("base64") } },
      ],
    }),
  });
  expect(http.status).toBe(200);

  const cliJson = await cli(["produce", TOPIC, "--key", "cli/json", "--content-type", "application/json"], `${JSON_TEXT}\n`);
  expect(cliJson, cliJson.stderr).toMatchObject({ code: 0 });
  const cliText = await cli(["produce", TOPIC, "--key", "cli/text"], `${TEXT}\n`);
  expect(cliText, cliText.stderr).toMatchObject({ code: 0 });

  const v311 = await connectClient(node.tcpUrl, { protocolVersion: 4 });
  mqttClients.push(v311);
  await v311.publishAsync(`${TOPIC}/mqtt311/json`, JSON_TEXT, { qos: 1 });
  await v311.publishAsync(`${TOPIC}/mqtt311/text`, TEXT, { qos: 1 });
  await v311.publishAsync(`${TOPIC}/mqtt311/bytes`, Buffer.from(BYTES), { qos: 1 });

  const v5 = await connectClient(node.tcpUrl, { protocolVersion: 5 });
  mqttClients.push(v5);
  await v5.publishAsync(`${TOPIC}/mqtt5/json`, JSON_TEXT, { qos: 1, properties: { contentType: "application/json", userProperties: { unit: "C" } } });
  await v5.publishAsync(`${TOPIC}/mqtt5/text`, TEXT, { qos: 1, properties: { payloadFormatIndicator: true } }); // UTF-8 text without a Content Type
  await v5.publishAsync(`${TOPIC}/mqtt5/bytes`, Buffer.from(BYTES), { qos: 1, properties: { contentType: "application/octet-stream" } });
}

describe("the same value from every protocol reads the same on every protocol", () => {
  it("SDK, MQTT.js 5 and 3.1.1, mosquitto_sub and the web console each show JSON, text and bytes as a person expects", async () => {
    // Live MQTT readers first (MQTT has no "from earliest").
    const mqtt5 = await mqttReader(5);
    const mqtt311 = await mqttReader(4);
    const mosquitto = mosquittoSub();
    await mosquitto.until(() => /received SUBACK/.test(mosquitto.raw()), "mosquitto_sub's SUBACK");

    await writeAll();
    const n = WRITTEN.length;

    // ---- the SDK (default codec): decoded by content type; untyped records as bytes + text()/json()
    const reader = sdk();
    const errors: unknown[] = [];
    reader.on("error", (err) => errors.push(err));
    const got: Message[] = [];
    reader.subscribe(TOPIC, (m) => void got.push(m), { from: "earliest" });
    await waitFor(() => got.length === n, { timeoutMs: 20_000, what: `${n} records at the SDK reader` });
    for (const [w, k] of WRITTEN) {
      const key = keyOf(w, k);
      const m = got.find((x) => x.key === key);
      expect(m, key).toBeDefined();
      expect([key, m!.contentType]).toEqual([key, contentTypeOf(w, k) ?? null]);
      if (typed(w)) {
        if (k === "json") expect([key, m!.value]).toEqual([key, JSON_VALUE]);
        else if (k === "text") expect([key, m!.value]).toEqual([key, TEXT]);
        else expect([key, Array.from(m!.value as Uint8Array)]).toEqual([key, BYTES]);
      } else {
        expect(m!.value).toBeInstanceOf(Uint8Array);
        if (k === "json") expect(m!.json()).toEqual(JSON_VALUE);
        if (k === "text") expect(m!.text()).toBe(TEXT);
        if (k === "bytes") expect(Array.from(m!.bytes!)).toEqual(BYTES);
      }
    }
    // A header published as a string reads as a string (SDK, HTTP, MQTT 5 user property).
    for (const key of ["sdk/json", "http/json", `${TOPIC}/mqtt5/json`]) expect([key, got.find((x) => x.key === key)!.headers.unit]).toEqual([key, "C"]);
    expect(errors).toEqual([]);

    // ---- MQTT.js: every record on `values/<writer>/<kind>`, payload as written, MQTT 5 properties from content-type
    await waitFor(() => mqtt5.length === n && mqtt311.length === n, { timeoutMs: 20_000, what: `${n} messages at both MQTT.js readers (5: ${mqtt5.length}, 3.1.1: ${mqtt311.length})` });
    for (const [w, k] of WRITTEN) {
      const topic = `${TOPIC}/${w}/${k}`;
      const m5 = mqtt5.find((x) => x.topic === topic);
      const m311 = mqtt311.find((x) => x.topic === topic);
      expect([topic, m5?.payload.equals(bytesOf(k)), m311?.payload.equals(bytesOf(k))]).toEqual([topic, true, true]);
      expect([topic, m5!.contentType]).toEqual([topic, contentTypeOf(w, k)]);
      // UTF-8 indicator for text values (JSON, text) that have a content type.
      expect([topic, m5!.payloadFormatIndicator === true]).toEqual([topic, typed(w) && k !== "bytes"]);
      expect([topic, m311!.contentType]).toEqual([topic, undefined]);
      if (k === "json" && w !== "cli" && w !== "mqtt311") expect([topic, m5!.userProperties?.unit]).toEqual([topic, "C"]);
    }

    // ---- mosquitto_sub: the text a person reads, with the Content Type
    await mosquitto.until(() => mosquitto.lines().length >= n, `${n} lines from mosquitto_sub`);
    for (const [w, k] of WRITTEN) {
      const topic = `${TOPIC}/${w}/${k}`;
      const line = mosquitto.lines().find((l) => l.topic === topic);
      expect([topic, line?.contentType]).toEqual([topic, contentTypeOf(w, k) ?? ""]);
      if (k === "bytes") expect([topic, Array.from(line!.payload)]).toEqual([topic, BYTES]);
      else expect([topic, line!.payload.toString("utf8")]).toEqual([topic, k === "json" ? JSON_TEXT : TEXT]);
    }

    // ---- the web console (Chromium): JSON pretty, text as text, bytes as hex; no error banner
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await page.goto(`${httpUrl}/?topic=${TOPIC}&from=earliest`);
    type Shown = { key: string; kind: string; shown: string; contentType: string | null };
    const shown = () => page.evaluate(() => (window as unknown as { __tributary: { received: Shown[] } }).__tributary.received);
    await waitFor(async () => (await shown()).length === n, { timeoutMs: 20_000, what: `${n} rows in the console`, intervalMs: 25 });
    const rows = await shown();
    for (const [w, k] of WRITTEN) {
      const key = keyOf(w, k);
      const row = rows.find((r) => r.key === key)!;
      const expected =
        k === "bytes" ? { kind: "bytes", shown: "00 ff 10" } : k === "text" ? { kind: "text", shown: TEXT } : typed(w) ? { kind: "json", shown: '{\n  "temp": 21.5\n}' } : { kind: "text", shown: JSON_TEXT };
      expect([key, row.kind, row.shown]).toEqual([key, expected.kind, expected.shown]);
    }
    // What the table shows: the pretty JSON of the SDK's record, hex of bytes.
    const cells = await page.locator("#rows td.value").allTextContents();
    expect(cells).toContain('{\n  "temp": 21.5\n}');
    expect(cells).toContain("00 ff 10");
    expect(await page.locator("#log").textContent()).toBe("");
    expect(await page.evaluate(() => (window as unknown as { __tributary: { errors: string[] } }).__tributary.errors)).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
