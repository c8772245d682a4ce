/**
 * The web console on a node with JWT authentication (no anonymous access), in headless
 * Chromium: without a token it asks for one; a refused, expired or forbidden token gets a
 * clear message; with an admin token it loads the views over the HTTP API (Bearer) and
 * tails over WebSocket (the token in the SDK hello), keeping the token in sessionStorage only.
 */
import { mkdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { startAuthNode, type AuthTestNode } from "./helpers/auth-node.ts";
import { ARTIFACTS, CHROMIUM_ARGS, cells, expectAccessibleView, shot } from "./helpers/console-page.ts";

let node: AuthTestNode;
let browser: Browser;
let admin: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  node = await startAuthNode();
  admin = await node.hs({ sub: "ops", admin: true });
  // a topic with three records, written over HTTP with the admin token
  for (const value of [{ n: 1 }, { n: 2 }, { n: 3 }]) {
    const res = await fetch(`${node.httpUrl}/topics/secured/records`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ key: "k", value }) });
    expect(res.status).toBe(200);
  }
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await node?.close();
});

async function openPage(path = "/"): Promise<Page> {
  const page = await browser.newPage();
  page.on("pageerror", (err) => pageErrors.push(err.message));
  await page.goto(node.httpUrl + path);
  return page;
}
const loginMessage = (page: Page) => page.locator("#login-why").textContent();
async function signIn(page: Page, token: string): Promise<void> {
  await page.fill("#token", token);
  await page.click("#token-form button[type=submit]");
}
const received = (page: Page) => page.evaluate(() => (window as unknown as { __tributary: { received: Array<{ value: unknown }> } }).__tributary.received.map((r) => r.value));

describe("web console on a node with JWT auth", () => {
  it("asks for a token, then with an admin token loads topics and groups over HTTP (Bearer) and tails over WebSocket", async () => {
    const page = await openPage("/");
    await expectAccessibleView(page, "login");
    await page.waitForFunction(() => document.querySelector("#login-why")!.textContent === "This node requires a token: sign in with a JWT.");
    await page.waitForFunction(() => document.activeElement?.id === "login-h");
    await shot(page, "login");

    const authorization = new Map<string, string | undefined>();
    page.on("request", async (req) => {
      const path = new URL(req.url()).pathname;
      if (path === "/topics" || path.startsWith("/topics/") || path === "/cluster" || path.startsWith("/groups")) authorization.set(path, (await req.allHeaders()).authorization);
    });
    await signIn(page, admin);
    // back to the view it came from (the overview), now with data from the admin-only /cluster
    await expectAccessibleView(page, "overview");
    await page.waitForFunction(() => document.querySelectorAll("#node-rows tr").length === 1 && document.querySelector("#overview-error")!.textContent === "");
    expect(await page.locator("#who").textContent()).toBe("Token: ops (admin)");

    await page.click('nav a[href="#/topics"]');
    await page.waitForFunction(() => [...document.querySelectorAll("#topic-rows th a")].some((a) => a.textContent === "secured"));
    expect((await cells(page, "#topic-rows")).find((r) => r[0] === "secured")!.slice(0, 3)).toEqual(["secured", "1", "3"]);
    await page.click('nav a[href="#/groups"]');
    await page.waitForFunction(() => document.querySelector("#group-rows")!.textContent === "no consumer groups" && document.querySelector("#groups-error")!.textContent === "");

    await page.evaluate(() => (location.hash = "#/tail?topic=secured&from=earliest"));
    await page.waitForFunction(() => (window as unknown as { __tributary: { received: unknown[] } }).__tributary.received.length === 3);
    expect(await received(page)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    await shot(page, "auth-tail");

    // every API call carried the token as Bearer
    expect([...authorization.keys()].sort()).toEqual(["/cluster", "/groups", "/topics", "/topics/secured"]);
    for (const [path, header] of authorization) expect([path, header]).toEqual([path, `Bearer ${admin}`]);
    // kept in sessionStorage only: no localStorage, no cookie
    expect(await page.evaluate(() => ({ session: sessionStorage.getItem("tributary.token"), local: localStorage.length, cookie: document.cookie }))).toEqual({ session: admin, local: 0, cookie: "" });

    // a reload keeps the tab's token; another tab does not have it
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { __tributary: { client: { state: string } } }).__tributary.client.state === "connected");
    const other = await openPage("/#/topics");
    await expectAccessibleView(other, "login");
    await other.close();

    // signing out forgets it
    await page.click("#logout");
    await expectAccessibleView(page, "login");
    expect(await page.evaluate(() => sessionStorage.getItem("tributary.token"))).toBeNull();
    expect(await loginMessage(page)).toBe("Signed out: the token was removed from this tab.");
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it("tells a refused token, an expired token and a forbidden action apart", async () => {
    // the tail alone (no HTTP call): the WebSocket hello is refused, and the login asks for a token
    const page = await openPage("/#/tail?topic=secured&from=earliest");
    await page.waitForFunction(() => document.querySelector("#login-why")!.textContent === "This node requires a token: sign in with a JWT.");

    await signIn(page, "not-a-jwt");
    await page.waitForFunction(() => document.querySelector("#login-why")!.textContent!.startsWith("The node refused this token (UNAUTHORIZED: "));
    expect(await page.evaluate(() => sessionStorage.getItem("tributary.token"))).toBeNull(); // a refused token is not kept

    await signIn(page, await node.hs({ sub: "late", admin: true }, -60));
    await page.waitForFunction(() => document.querySelector("#login-why")!.textContent === "Your token has expired: sign in with a fresh one (TOKEN_EXPIRED).");
    await shot(page, "login-expired");

    // a reader of secured/# only: the tail it came for works, the admin-only groups say FORBIDDEN
    await signIn(page, await node.hs({ sub: "reader", acl: { sub: ["secured/#"] } }));
    await expectAccessibleView(page, "tail");
    await page.waitForFunction(() => (window as unknown as { __tributary: { received: unknown[] } }).__tributary.received.length === 3);
    expect(await page.locator("#who").textContent()).toBe("Token: reader");
    await page.click('nav a[href="#/groups"]');
    await page.waitForFunction(() => document.querySelector("#groups-error")!.textContent!.startsWith("Not permitted with this token (FORBIDDEN: "));
    await page.click('nav a[href="#/overview"]');
    await page.waitForFunction(() => document.querySelector("#overview-error")!.textContent!.startsWith("Not permitted with this token (FORBIDDEN: "));
    await page.close();
    expect(pageErrors).toEqual([]);
  });

  it("asks for a fresh token when the one in use expires while the console is open", async () => {
    const page = await openPage("/#/tail?topic=secured&from=earliest");
    await page.waitForFunction(() => document.querySelector("#login-why")!.textContent === "This node requires a token: sign in with a JWT.");
    // a token with 3 s to live: the tail works, then the node refuses it and the console says why
    await signIn(page, await node.hs({ sub: "brief", admin: true }, 3));
    await page.waitForFunction(() => (window as unknown as { __tributary: { received: unknown[] } }).__tributary.received.length === 3);
    await page.waitForFunction(() => !document.querySelector<HTMLElement>("#view-login")!.hidden && document.querySelector("#login-why")!.textContent === "Your token has expired: sign in with a fresh one (TOKEN_EXPIRED).", null, { timeout: 15_000 });
    // a fresh token picks up where the tail was
    await signIn(page, admin);
    await expectAccessibleView(page, "tail");
    await page.waitForFunction(() => (window as unknown as { __tributary: { client: { state: string } } }).__tributary.client.state === "connected");
    await page.close();
    expect(pageErrors).toEqual([]);
  });
});
