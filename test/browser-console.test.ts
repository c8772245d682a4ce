/**
 * The web console (the page at `/`) in a real headless Chromium, against a real node with
 * MQTT: the live tail resumes after a cut connection; then, after a scripted workload (SDK
 * over WebSocket, MQTT.js over TCP and WebSocket, a consumer group with a member that
 * lags), every view shows what the HTTP API says. Screenshots go to test/artifacts/
 * (gitignored); the page weight is printed and written to test/artifacts/console-weight.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { connect, type Subscription, type TributaryClient } from "@tributary/client";
import type { MqttClient } from "mqtt";
import { hasMarks, publishMarks, until } from "./helpers/sdk-node.ts";
import { connectClient, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { startTcpProxy, type TcpProxy } from "./helpers/tcp-proxy.ts";
import { waitFor } from "./helpers/wait.ts";
import { spawnFileNode } from "./helpers/node-process.ts";
import { ARTIFACTS, CHROMIUM_ARGS, cells, expectAccessibleView, int, shot } from "./helpers/console-page.ts";

let node: MqttTestNode;
let origin: string;
let proxy: TcpProxy;
let browser: Browser;
let page: Page;
let publisher: TributaryClient;
const pageErrors: string[] = [];
const extraClients: TributaryClient[] = [];
const mqttClients: MqttClient[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  node = await startMqttTestNode({}, { defaultPartitions: 2 });
  origin = `http://127.0.0.1:${node.httpPort}`;
  // The first page reaches the node through a TCP proxy, so the test can cut its connection.
  proxy = await startTcpProxy(node.httpPort);
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
  page = await browser.newPage();
  page.on("pageerror", (err) => pageErrors.push(err.message));
  publisher = connect(node.sdkUrl, { minReconnectDelay: 10, maxReconnectDelay: 100 });
});

afterAll(async () => {
  await Promise.all(mqttClients.map((c) => c.endAsync()));
  await Promise.all(extraClients.map((c) => c.close()));
  await publisher?.close();
  await browser?.close();
  await proxy?.close();
  await node?.close();
});

type Received = { partition: number; offset: number; key: string | null; value: unknown; kind: string; shown: string };
const received = (p: Page = page) => p.evaluate(() => (window as unknown as { __tributary: { received: Received[] } }).__tributary.received);
const pageState = () => page.evaluate(() => (window as unknown as { __tributary: { client: { state: string } } }).__tributary.client.state);

async function pageUntil(check: (r: Received[]) => boolean, what: string, p: Page = page, timeoutMs = 20_000): Promise<Received[]> {
  let r: Received[] = [];
  await waitFor(async () => check((r = await received(p))), { timeoutMs, what: `${what} (the page shows what it received)`, intervalMs: 25 });
  return r;
}

const MARKER = "__marker__";
const notMarker = (m: Received) => m.value !== MARKER;

async function publishRange(from: number, to: number): Promise<void> {
  await Promise.all(Array.from({ length: to - from }, (_, i) => publisher.publish("browser-tail", { n: from + i }, { key: `k${(from + i) % 7}` })));
}

/** GET a JSON route of the node (open mode: no token). */
async function getJson<T = any>(path: string): Promise<T> {
  const res = await fetch(origin + path);
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

describe("web console in a real headless Chromium", () => {
  it("tails a topic live and resumes with no gap and no duplicate after its connection is cut", async () => {
    await page.goto(`http://127.0.0.1:${proxy.port}/?topic=browser-tail&from=earliest`);
    await waitFor(async () => (await pageState()) === "connected", { timeoutMs: 15_000, what: "the page to connect", intervalMs: 25 });
    // an old link `/?topic=` opens the live tail view
    expect(await page.evaluate(() => location.hash)).toBe("#/tail?topic=browser-tail&from=earliest");
    await publishRange(0, 300);
    await pageUntil((r) => r.length >= 300, "first 300");

    // Cut the page's WebSocket abruptly (TCP reset) and keep the node unreachable while more is published.
    proxy.refuse = true;
    const refusedBefore = proxy.refused;
    proxy.sever();
    await publishRange(300, 600);
    // the page noticed and tried again, in vain
    await waitFor(() => proxy.refused > refusedBefore, { timeoutMs: 15_000, what: "the page to try to reconnect" });
    expect(["disconnected", "connecting"]).toContain(await pageState());
    proxy.refuse = false;

    const all = await pageUntil((r) => r.length >= 600, "all 600");
    // nothing extra arrives late: a marker after the last record of each partition
    const marks = await publishMarks(publisher, "browser-tail", [0, 1], MARKER);
    const final = (await pageUntil((r) => hasMarks(r.filter((m) => !notMarker(m)), marks), "the markers")).filter(notMarker);
    expect(final.length).toBe(600);
    for (const partition of [0, 1]) {
      const offsets = final.filter((m) => m.partition === partition).map((m) => m.offset);
      expect(offsets).toEqual(offsets.map((_, i) => i)); // from 0, contiguous: no gap, no duplicate
    }
    const values = all.map((m) => (m.value as { n: number }).n).sort((a, b) => a - b);
    expect(values).toEqual(Array.from({ length: 600 }, (_, i) => i));
    // The table shows what arrived (at most 500 rows).
    expect(await page.locator("#rows tr").count()).toBe(500);
    expect(pageErrors).toEqual([]);
  });

  it("lists topics and publishes from the page to a Node subscriber", async () => {
    const got: unknown[] = [];
    const sub = publisher.subscribe("from-page", (m) => void got.push(m.value), { from: "earliest" });
    await new Promise<void>((resolve) => sub.once("subscribed", () => resolve()));
    await page.click('nav a[href="#/publish"]');
    await page.fill("#pub-topic", "from-page");
    await page.fill("#pub-key", "browser-1");
    await page.fill("#pub-value", '{"hello":"from chromium"}');
    await page.click("#publish-form button[type=submit]");
    await until(() => got.length === 1, "page publish");
    expect(got[0]).toEqual({ hello: "from chromium" });
    await page.waitForFunction(() => document.querySelector("#pub-result")!.textContent !== "");
    expect(await page.locator("#pub-result").textContent()).toMatch(/^Published: partition \d, offset 0$/);
    await page.click('nav a[href="#/topics"]');
    await page.click("#refresh");
    await page.waitForFunction(() => [...document.querySelectorAll("#topic-rows th a")].map((a) => a.textContent).includes("from-page"));
    expect(await page.locator("#topic-rows th a", { hasText: "browser-tail" }).count()).toBe(1);
  });
});

describe("console views after a scripted workload (SDK over WebSocket, MQTT over TCP and WebSocket, a group)", () => {
  let view: Page;
  let member: TributaryClient;
  let memberSub: Subscription;
  const memberGot: number[] = [];
  const subscriberGot: unknown[] = [];

  beforeAll(async () => {
    // SDK: a subscriber and 20 keyed JSON records on "orders" (2 partitions)
    const subscriber = connect(node.sdkUrl);
    extraClients.push(subscriber);
    const s = subscriber.subscribe("orders", (m) => void subscriberGot.push(m.value), { from: "earliest" });
    await new Promise<void>((resolve) => s.once("subscribed", () => resolve()));
    await Promise.all(Array.from({ length: 20 }, (_, i) => publisher.publish("orders", { order: i, total: i * 10 }, { key: `customer-${i % 5}` })));

    // a consumer group "billing": one member reads the 20, commits them, and lags behind 6 more
    member = connect(node.sdkUrl);
    extraClients.push(member);
    memberSub = member.subscribe("orders", (m) => void memberGot.push((m.value as { order: number }).order), { group: "billing", autoCommit: false, reset: "earliest" });
    await until(() => memberGot.length === 20, "the group member to read the first 20 orders");
    await memberSub.commit();
    await Promise.all(Array.from({ length: 6 }, (_, i) => publisher.publish("orders", { order: 20 + i, total: 0 }, { key: `customer-${i}` })));
    await until(() => memberGot.length === 26 && subscriberGot.length === 26, "the member and the subscriber to read all 26 orders");

    // MQTT.js over TCP (3.1.1, retained, so an internal topic exists) and over WebSocket (5.0)
    const tcp = await connectClient(node.tcpUrl, { protocolVersion: 4, clientId: "console-dev-tcp" });
    const overWs = await connectClient(node.wsUrl, { protocolVersion: 5, clientId: "console-dev-ws" });
    mqttClients.push(tcp, overWs);
    await tcp.publishAsync("sensor-data/d1/temp", "21.5", { qos: 1, retain: true });
    await overWs.publishAsync("sensor-data/d2/temp", '{"temp":19}', { qos: 1, properties: { contentType: "application/json" } });

    view = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    view.on("pageerror", (err) => pageErrors.push(err.message));
    await view.goto(`${origin}/#/overview`);
    await view.waitForFunction(() => (window as unknown as { __tributary: { client: { state: string } } }).__tributary.client.state === "connected");
  });

  it("overview: connections by protocol match /cluster, produce and delivery rates come from /metrics", async () => {
    await expectAccessibleView(view, "overview");
    const shownConnections = async () => Object.fromEntries((await cells(view, "#conn-rows")).map((row, i) => [["ws", "mqtt", "mqtt-ws"][i], int(row[1]!)]));
    const fromCluster = async () => {
      const c = await getJson<{ nodes: Array<{ connections: Record<string, number> }> }>("/cluster");
      return { ws: c.nodes[0]!.connections.ws, mqtt: c.nodes[0]!.connections.mqtt, "mqtt-ws": c.nodes[0]!.connections["mqtt-ws"] };
    };
    let last: unknown;
    await waitFor(async () => JSON.stringify((last = await shownConnections())) === JSON.stringify(await fromCluster()), { timeoutMs: 10_000, what: "the overview's connections to match /cluster", intervalMs: 100 });
    // publisher, subscriber, group member, two pages = 5 SDK connections; one MQTT client of each kind
    expect(last).toEqual({ ws: 5, mqtt: 1, "mqtt-ws": 1 });
    expect((await cells(view, "#node-rows"))[0]![0]).toContain("(this node)");

    // Rates: while records flow (published and delivered to a subscriber), both rates are above 0.
    const rates = connect(node.sdkUrl);
    extraClients.push(rates);
    rates.subscribe("rates", () => {}, { from: "latest" });
    let pumping = true;
    const pump = (async () => {
      while (pumping) await Promise.all(Array.from({ length: 20 }, (_, i) => publisher.publish("rates", { i })));
    })();
    const rate = (counter: string) => view.evaluate((c) => Number(document.querySelector(`#rate-rows tr[data-counter="${c}"] td[data-rate]`)?.getAttribute("data-rate") || "0"), counter);
    try {
      await waitFor(async () => (await rate("produced")) > 0 && (await rate("delivered")) > 0 && (await rate("delivered:ws")) > 0, { timeoutMs: 15_000, what: "produce and delivery rates above 0", intervalMs: 100 });
    } finally {
      pumping = false;
      await pump;
    }
    // totals are the node's counters: at least what this workload produced
    const total = await view.evaluate(() => Number(document.querySelector('#rate-rows tr[data-counter="produced"] td[data-total]')?.getAttribute("data-total")));
    expect(total).toBeGreaterThanOrEqual(600 + 26 + 2);
    await shot(view, "overview");
  });

  it("topics: partitions, records, size, retention; internal topics only when asked; a topic's partitions match the API", async () => {
    await view.click('nav a[href="#/topics"]');
    await view.waitForFunction(() => [...document.querySelectorAll("#topic-rows th a")].some((a) => a.textContent === "orders"));
    await expectAccessibleView(view, "topics");
    const rows = await cells(view, "#topic-rows");
    const orders = rows.find((r) => r[0] === "orders")!;
    const described = await getJson<{ partitions: number; sizeBytes: number; partitionInfo: Array<{ partition: number; earliestOffset: number; endOffset: number; epoch: string }> }>("/topics/orders");
    expect(described.sizeBytes).toBeGreaterThan(0);
    expect(orders.slice(0, 3)).toEqual(["orders", "2", "26"]);
    expect(orders[3]).toMatch(/^\d+(\.\d)? (B|KiB)$/);
    expect(orders[4]).toBe("7 d"); // the default retention
    expect(orders[5]).toBe("delete");
    expect(rows.map((r) => r[0])).toContain("sensor-data");
    expect(rows.map((r) => r[0]).filter((t) => t.startsWith("__"))).toEqual([]);
    await view.check("#show-internal");
    await view.waitForFunction(() => [...document.querySelectorAll("#topic-rows th a")].some((a) => a.textContent === "__mqtt.retained"));
    await shot(view, "topics");
    await view.uncheck("#show-internal");
    await view.waitForFunction(() => ![...document.querySelectorAll("#topic-rows th a")].some((a) => a.textContent!.startsWith("__")));

    await view.click('#topic-rows th a:text-is("orders")');
    await view.waitForFunction(() => document.querySelectorAll("#partition-rows tr").length === 2);
    await expectAccessibleView(view, "topic");
    expect(await view.locator("#topic-h").textContent()).toBe("Topic orders");
    expect(await cells(view, "#partition-rows")).toEqual(described.partitionInfo.map((p) => [String(p.partition), String(p.earliestOffset), String(p.endOffset), String(p.endOffset - p.earliestOffset), p.epoch]));
    const config = await view.$$eval("#topic-config dt", (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling!.textContent])));
    expect(config).toMatchObject({ Partitions: "2", Records: "26", "Cleanup policy": "delete", "Replication factor": "1", Retention: "7 d" });
    await shot(view, "topic");
  });

  it("groups: the member, its assignment, committed offsets, and lag = end - committed as the HTTP API says", async () => {
    await view.click('nav a[href="#/groups"]');
    await view.waitForFunction(() => [...document.querySelectorAll("#group-rows th a")].some((a) => a.textContent === "billing"));
    await expectAccessibleView(view, "groups");
    const listed = (await cells(view, "#group-rows")).find((r) => r[0] === "billing")!;
    expect([listed[1], listed[3]]).toEqual(["Stable", "1"]);
    expect((await cells(view, "#group-rows")).map((r) => r[0]).filter((g) => g.startsWith("mqtt.session"))).toEqual([]);
    await shot(view, "groups");

    await view.click('#group-rows th a:text-is("billing")');
    await view.waitForFunction(() => document.querySelectorAll("#lag-rows tr").length === 2 && document.querySelectorAll("#member-rows tr").length === 1);
    await expectAccessibleView(view, "group");
    const api = await getJson<{ totalLag: number; members: Array<{ memberId: string; clientId: string }>; partitions: Array<{ topic: string; partition: number; committedOffset: number; endOffset: number; lag: number }> }>("/groups/billing");
    const lag = await cells(view, "#lag-rows");
    for (const p of api.partitions) {
      const row = lag.find((r) => r[0] === p.topic && r[1] === String(p.partition))!;
      expect([p.partition, int(row[3]!), int(row[4]!), int(row[5]!)]).toEqual([p.partition, p.committedOffset, p.endOffset, p.endOffset - p.committedOffset]);
      expect(row[2]).toBe(api.members[0]!.clientId); // the owner, by client id
    }
    expect(api.totalLag).toBe(6);
    expect(lag.reduce((n, r) => n + int(r[5]!), 0)).toBe(6);
    const member = (await cells(view, "#member-rows"))[0]!;
    expect(member[0]).toBe(api.members[0]!.memberId);
    expect(member[5]!.split(", ").sort()).toEqual(["orders:0", "orders:1"]);
    const summary = await view.$$eval("#group-summary dt", (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling!.textContent])));
    expect(summary).toMatchObject({ State: "Stable", Members: "1", "Total lag": "6" });
    await shot(view, "group");
  });

  it("live tail: JSON pretty, text as text, bytes as hex; filters by key and partition", async () => {
    await view.click('nav a[href="#/tail"]');
    await expectAccessibleView(view, "tail");
    await view.fill("#tail-topic", "orders");
    await view.selectOption("#tail-from", "earliest");
    await view.click("#tail-form button[type=submit]");
    await pageUntil((r) => r.length >= 26, "the 26 orders", view);
    const json = await publisher.publish("orders", { deep: { ok: true }, list: [1, 2] }, { key: "tail-json", partition: 1 });
    await publisher.publish("orders", "plain words", { key: "tail-text", partition: 0 });
    await publisher.publish("orders", new Uint8Array([0, 255, 16]), { key: "tail-bytes", partition: 0 });
    const all = await pageUntil((r) => r.length >= 29, "the three typed records", view);
    const byKey = (k: string) => all.find((r) => r.key === k)!;
    expect([byKey("tail-json").kind, byKey("tail-json").shown]).toEqual(["json", '{\n  "deep": {\n    "ok": true\n  },\n  "list": [\n    1,\n    2\n  ]\n}']);
    expect([byKey("tail-text").kind, byKey("tail-text").shown]).toEqual(["text", "plain words"]);
    expect([byKey("tail-bytes").kind, byKey("tail-bytes").shown]).toEqual(["bytes", "00 ff 10"]);

    // filter by key: only the matching row is shown, pretty-printed
    await view.fill("#filter-key", "tail-json");
    await view.waitForFunction(() => document.querySelectorAll("#rows tr").length === 1);
    expect(await cells(view, "#rows")).toEqual([[String(json.partition), String(json.offset), expect.any(String), "tail-json", "application/json", byKey("tail-json").shown]]);
    // ...and by partition: the key is in partition 1, so partition 0 shows nothing
    await view.fill("#filter-partition", "0");
    await view.waitForFunction(() => document.querySelectorAll("#rows tr").length === 0);
    await view.fill("#filter-partition", "1");
    await view.waitForFunction(() => document.querySelectorAll("#rows tr").length === 1);
    // partition only: every order of partition 1, newest first
    await view.fill("#filter-key", "");
    const p1 = all.filter((r) => r.partition === 1).map((r) => String(r.offset)).reverse();
    await view.waitForFunction((n) => document.querySelectorAll("#rows tr").length === n, p1.length);
    expect((await cells(view, "#rows")).map((r) => r[1])).toEqual(p1);
    // a record arriving while filtered shows only if it matches
    await publisher.publish("orders", { late: true }, { key: "late-0", partition: 0 });
    await publisher.publish("orders", { late: true }, { key: "late-1", partition: 1 });
    await pageUntil((r) => r.some((m) => m.key === "late-1") && r.some((m) => m.key === "late-0"), "the late records", view);
    await view.waitForFunction((n) => document.querySelectorAll("#rows tr").length === n, p1.length + 1);
    expect((await cells(view, "#rows"))[0]![3]).toBe("late-1");
    expect(await view.locator("#count").textContent()).toMatch(/^\d+ received on orders, \d+ shown$/);
    await view.fill("#filter-partition", "");
    await view.fill("#filter-key", "tail-");
    await view.waitForFunction(() => document.querySelectorAll("#rows tr").length === 3);
    await shot(view, "tail");
  });

  it("publish: with a content type, as the HTTP API stores it", async () => {
    await view.click('nav a[href="#/publish"]');
    await expectAccessibleView(view, "publish");
    const read = async (partition: number, offset: number) => {
      const body = await getJson<{ records: Array<{ value: unknown; key: unknown; headers: Record<string, string> }> }>(`/topics/typed/partitions/${partition}/records?offset=${offset}&max=1`);
      return body.records[0]!;
    };
    const publishFromPage = async (type: string, value: string, partition = "") => {
      await view.fill("#pub-topic", "typed");
      await view.fill("#pub-key", "console");
      await view.fill("#pub-partition", partition);
      await view.selectOption("#pub-type", type);
      await view.fill("#pub-value", value);
      const before = await view.locator("#pub-result").textContent();
      await view.click("#publish-form button[type=submit]");
      await view.waitForFunction((b) => document.querySelector("#pub-result")!.textContent !== b, before);
      const text = (await view.locator("#pub-result").textContent())!;
      const m = /^Published: partition (\d+), offset (\d+)$/.exec(text);
      expect(m, text).not.toBeNull();
      return { partition: Number(m![1]), offset: Number(m![2]) };
    };
    const text = await publishFromPage("text/plain; charset=utf-8", "hello text", "1");
    expect(text.partition).toBe(1);
    expect(await read(text.partition, text.offset)).toMatchObject({ value: "hello text", key: "console", headers: { "content-type": "text/plain; charset=utf-8" } });
    const bytes = await publishFromPage("application/octet-stream", "00 ff 10");
    expect(await read(bytes.partition, bytes.offset)).toMatchObject({ value: { base64: "AP8Q" }, headers: { "content-type": "application/octet-stream" } });
    const json = await publishFromPage("application/json", '{"a": [1, 2]}');
    expect(await read(json.partition, json.offset)).toMatchObject({ value: '{"a": [1, 2]}', headers: { "content-type": "application/json" } });
    // a custom media type, through the "other" field
    await view.selectOption("#pub-type", "custom");
    await view.fill("#pub-custom", "application/xml");
    await view.fill("#pub-value", "<a/>");
    await view.click("#publish-form button[type=submit]");
    await view.waitForFunction(() => /^Published: partition \d+, offset \d+$/.test(document.querySelector("#pub-result")!.textContent!) && document.querySelector("#pub-result")!.textContent !== "");
    expect(await view.isVisible("#pub-custom")).toBe(true);
    // an invalid JSON value is refused in the page, before anything is sent
    await view.selectOption("#pub-type", "application/json");
    expect(await view.isVisible("#pub-custom")).toBe(false); // the media type field only for "other…"
    await view.fill("#pub-value", "{not json");
    await view.click("#publish-form button[type=submit]");
    await view.waitForFunction(() => document.querySelector("#pub-result")!.textContent!.startsWith("Not published: the value is not JSON"));
    await shot(view, "publish");
  });

  it("is keyboard operable: Tab reaches the nav, Enter opens a view and focus moves to its heading", async () => {
    const keys = await browser.newPage();
    keys.on("pageerror", (err) => pageErrors.push(err.message));
    try {
      await keys.goto(`${origin}/#/overview`);
      await keys.waitForFunction(() => !document.querySelector("#view-overview")!.hasAttribute("hidden"));
      // once connected, the tail's and the publish form's topic suggestions are there, internal topics left out
      await keys.waitForFunction(() => [...document.querySelectorAll("#topic-names option")].some((o) => (o as HTMLOptionElement).value === "orders"));
      expect((await keys.$$eval("#topic-names option", (os) => os.map((o) => (o as HTMLOptionElement).value))).filter((t) => t.startsWith("__"))).toEqual([]);
      const focused = () => keys.evaluate(() => document.activeElement?.getAttribute("href") ?? document.activeElement?.tagName ?? null);
      const seen: Array<string | null> = [];
      for (let i = 0; i < 10 && (seen.at(-1) ?? "") !== "#/groups"; i++) {
        await keys.keyboard.press("Tab");
        seen.push(await focused());
      }
      expect(seen).toEqual(["#main", "#/overview", "#/topics", "#/groups"]); // skip link first, then the nav in order
      // the focused link is visibly outlined
      expect(await keys.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).toBe("solid");
      await keys.keyboard.press("Enter");
      await keys.waitForFunction(() => location.hash === "#/groups" && !document.querySelector("#view-groups")!.hasAttribute("hidden"));
      await keys.waitForFunction(() => document.activeElement?.id === "groups-h");
      expect(await keys.getAttribute('nav a[href="#/groups"]', "aria-current")).toBe("page");
      expect(await keys.getAttribute("nav", "aria-label")).toBe("Views");
      // Tab onward reaches the view's first control, then Enter follows the group link
      await keys.waitForFunction(() => document.querySelectorAll("#group-rows th a").length > 0);
      const order: Array<string | null> = [];
      for (let i = 0; i < 6 && !(order.at(-1) ?? "").startsWith("#/groups/"); i++) {
        await keys.keyboard.press("Tab");
        order.push(await focused());
      }
      expect(order).toEqual(["INPUT", "BUTTON", "#/groups/billing"]);
      await keys.keyboard.press("Enter");
      await keys.waitForFunction(() => document.activeElement?.id === "group-h" && document.querySelectorAll("#lag-rows tr").length === 2);
    } finally {
      await keys.close();
    }
  });

  it("reports the page weight of the console (HTML + CSS + JS, raw and gzip)", async () => {
    const files = ["/", "/console.css", "/console.js", "/console-views.js", "/console-tail.js"];
    // every file the page loads is one of these, or the SDK bundle
    const loaded = await view.evaluate(() => [...document.querySelectorAll("script[src], link[rel=stylesheet]")].map((e) => new URL((e as HTMLScriptElement).src || (e as HTMLLinkElement).href).pathname));
    expect(loaded.sort()).toEqual([...files.slice(1), "/tributary.min.js"].sort());
    const weigh = async (path: string) => {
      const res = await fetch(origin + path);
      expect(res.status, path).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      return { path, bytes: body.length, gzip: gzipSync(body, { level: 9 }).length };
    };
    const own = await Promise.all(files.map(weigh));
    const sdk = await weigh("/tributary.min.js");
    const sum = (list: Array<{ bytes: number; gzip: number }>) => ({ bytes: list.reduce((n, f) => n + f.bytes, 0), gzip: list.reduce((n, f) => n + f.gzip, 0) });
    const weight = { files: [...own, sdk], console: sum(own), withSdk: sum([...own, sdk]) };
    writeFileSync(join(ARTIFACTS, "console-weight.json"), JSON.stringify(weight, null, 2));
    console.log(
      [
        "console page weight:",
        ...weight.files.map((f) => `  ${f.path.padEnd(20)} ${String(f.bytes).padStart(7)} B  gzip ${String(f.gzip).padStart(6)} B`),
        `  console (html+css+js) ${weight.console.bytes} B, gzip ${weight.console.gzip} B; with the SDK bundle ${weight.withSdk.bytes} B, gzip ${weight.withSdk.gzip} B`,
      ].join("\n"),
    );
    // A budget, so the page stays small: the console's own files, and the whole page with the SDK.
    expect(weight.console.bytes).toBeLessThan(48 * 1024);
    expect(weight.console.gzip).toBeLessThan(18 * 1024);
    expect(weight.withSdk.gzip).toBeLessThan(40 * 1024);
    expect(pageErrors).toEqual([]);
  });
});

describe("the compiled node (server/dist) serves the console", () => {
  it("serves every file the page references, byte for byte as in the sources, with its content type", async () => {
    const child = await spawnFileNode();
    try {
      const base = `http://127.0.0.1:${child.httpPort}`;
      const source = (file: string) => readFileSync(join(import.meta.dirname, "../server/src/gateway/http/console", file));
      const page = await fetch(base + "/");
      expect([page.status, page.headers.get("content-type")]).toEqual([200, "text/html; charset=utf-8"]);
      const html = await page.text();
      expect(html).toBe(source("index.html").toString());
      const refs = [...html.matchAll(/(?:src|href)="(\/[^"#]*)"/g)].map((m) => m[1]!);
      expect(refs.sort()).toEqual(["/console-tail.js", "/console-views.js", "/console.css", "/console.js", "/tributary.min.js"]);
      for (const ref of refs) {
        const res = await fetch(base + ref);
        expect([ref, res.status, res.headers.get("content-type")]).toEqual([ref, 200, ref.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8"]);
        const body = Buffer.from(await res.arrayBuffer());
        if (ref === "/tributary.min.js") expect(body.toString()).toContain("Tributary");
        else expect([ref, body.equals(source(ref.slice(1)))]).toEqual([ref, true]);
      }
    } finally {
      await child.stop();
    }
  });
});
