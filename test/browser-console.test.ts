import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { connect, type TributaryClient } from "@tributary/client";
import { hasMarks, publishMarks, startSdkTestNode, until, type SdkTestNode } from "./helpers/sdk-node.ts";
import { startTcpProxy, type TcpProxy } from "./helpers/tcp-proxy.ts";
import { waitFor } from "./helpers/wait.ts";

let node: SdkTestNode;
let proxy: TcpProxy;
let browser: Browser;
let page: Page;
let publisher: TributaryClient;
const pageErrors: string[] = [];

beforeAll(async () => {
  node = await startSdkTestNode({ topics: { defaultPartitions: 2 } });
  // The page reaches the node through a TCP proxy, so the test can cut its connection.
  proxy = await startTcpProxy(node.port);
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage();
  page.on("pageerror", (err) => pageErrors.push(err.message));
  publisher = connect(node.url, { minReconnectDelay: 10, maxReconnectDelay: 100 });
});

afterAll(async () => {
  await publisher?.close();
  await browser?.close();
  await proxy?.close();
  await node?.close();
});

type Received = { partition: number; offset: number; key: string | null; value: unknown };
const received = () => page.evaluate(() => (window as unknown as { __tributary: { received: Received[] } }).__tributary.received);
const pageState = () => page.evaluate(() => (window as unknown as { __tributary: { client: { state: string } } }).__tributary.client.state);

async function pageUntil(check: (r: Received[]) => boolean, what: string, timeoutMs = 20_000): Promise<Received[]> {
  let r: Received[] = [];
  await waitFor(async () => check((r = await received())), { timeoutMs, what: `${what} (the page shows what it received)`, intervalMs: 25 });
  return r;
}

const MARKER = "__marker__";
const notMarker = (m: Received) => m.value !== MARKER;

async function publishRange(from: number, to: number): Promise<void> {
  await Promise.all(Array.from({ length: to - from }, (_, i) => publisher.publish("browser-tail", { n: from + i }, { key: `k${(from + i) % 7}` })));
}

describe("web console in a real headless Chromium", () => {
  it("tails a topic live and resumes with no gap and no duplicate after its connection is cut", async () => {
    await page.goto(`http://127.0.0.1:${proxy.port}/?topic=browser-tail&from=earliest`);
    await waitFor(async () => (await pageState()) === "connected", { timeoutMs: 15_000, what: "the page to connect", intervalMs: 25 });
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
    // The table shows what arrived.
    expect(await page.locator("#rows tr").count()).toBe(500);
    expect(pageErrors).toEqual([]);
  });

  it("lists topics and publishes from the page to a Node subscriber", async () => {
    const got: unknown[] = [];
    const sub = publisher.subscribe("from-page", (m) => void got.push(m.value), { from: "earliest" });
    await new Promise<void>((resolve) => sub.once("subscribed", () => resolve()));
    await page.fill("#pub-topic", "from-page");
    await page.fill("#pub-key", "browser-1");
    await page.fill("#pub-value", '{"hello":"from chromium"}');
    await page.click("#publish-form button[type=submit]");
    await until(() => got.length === 1, "page publish");
    expect(got[0]).toEqual({ hello: "from chromium" });
    await page.click("#refresh");
    await page.waitForFunction(() => [...document.querySelectorAll("#topics li")].map((li) => li.textContent).includes("from-page"));
    expect(await page.locator("#topics li", { hasText: "browser-tail" }).count()).toBe(1);
  });
});
