/**
 * The WebSocket gateway with authentication configured: the `hello` token proves the
 * identity (error frame + close 4501 / 4003 when it does not), every op is checked
 * (FORBIDDEN error frames), expiry closes a live connection, a JWKS rotation revokes,
 * an ACL reload ends subscriptions / group members / presence watches no longer
 * permitted, and the SDK refreshes its token with getToken() across expiry.
 */
import { SignJWT, base64url, exportJWK, generateKeyPair } from "jose";
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../client-sdk/src/index.ts";
import { startAuthNode, type AuthTestNode } from "./helpers/auth-node.ts";
import { waitFor } from "./helpers/wait.ts";
import { WsTestClient } from "./helpers/ws-test-client.ts";

async function helloWith(url: string, token?: string, clientId?: string): Promise<{ client: WsTestClient; reply: Record<string, unknown> }> {
  const client = await WsTestClient.open(url);
  const reply = (await client.request({ op: "hello", protocol: 1, ...(token ? { token } : {}), ...(clientId ? { clientId } : {}) })) as Record<string, unknown>;
  return { client, reply };
}

describe("WebSocket auth with tokens", () => {
  let n: AuthTestNode;
  beforeAll(async () => {
    n = await startAuthNode();
  });
  afterAll(() => n.close());

  it("refuses-a-hello-without-token-with-UNAUTHORIZED-and-close-4501", async () => {
    const { client, reply } = await helloWith(n.wsUrl);
    expect(reply).toMatchObject({ op: "error", code: "UNAUTHORIZED" });
    expect((await client.closed).code).toBe(4501);
  });

  it("refuses-an-expired-token-at-connect-with-TOKEN_EXPIRED-and-close-4003", async () => {
    const { client, reply } = await helloWith(n.wsUrl, await n.hs({ sub: "late", acl: { all: ["#"] } }, -10));
    expect(reply).toMatchObject({ op: "error", code: "TOKEN_EXPIRED" });
    expect((await client.closed).code).toBe(4003);
  });

  it("refuses-a-wrong-signature-alg-none-and-hs-rs-confusion", async () => {
    const good = await n.hs({ sub: "mallory", admin: true });
    const [h, p] = good.split(".");
    const tampered = `${h}.${base64url.encode(JSON.stringify({ sub: "mallory", admin: true, exp: 9999999999 }))}.${good.split(".")[2]}`;
    const none = `${base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }))}.${p}.`;
    // HS256 signed with the RSA public key's PEM as the HMAC secret (the algorithm-confusion attack).
    const confused = await new SignJWT({ sub: "mallory", admin: true }).setProtectedHeader({ alg: "HS256", kid: "k1" }).setExpirationTime("1h").sign(new TextEncoder().encode(n.rsa.publicPem));
    for (const token of [tampered, none, confused]) {
      const { client, reply } = await helloWith(n.wsUrl, token);
      expect(reply, token).toMatchObject({ op: "error", code: "UNAUTHORIZED" });
      expect((await client.closed).code).toBe(4501);
    }
  });

  it("allows-permitted-ops-and-refuses-the-others-with-FORBIDDEN", async () => {
    const token = await n.rs({ sub: "alice", acl: { pub: ["orders/#"], sub: ["orders/#"] }, groups: ["billing"] });
    const { client, reply } = await helloWith(n.wsUrl, token);
    expect(reply.op).toBe("welcome");
    expect(await client.publish("orders", "o1")).toMatchObject({ op: "ack" });
    expect(await client.publish("payments", "p1")).toMatchObject({ op: "error", code: "FORBIDDEN" });
    expect(await client.subscribe({ sub: 1, topic: "orders", from: "earliest" })).toMatchObject({ op: "subscribed" });
    expect(await client.subscribe({ sub: 2, topic: "payments" })).toMatchObject({ op: "error", code: "FORBIDDEN", sub: 2 });
    expect(await client.request({ op: "subscribe", sub: 3, topic: "orders", group: "other" })).toMatchObject({ op: "error", code: "FORBIDDEN", sub: 3 });
    expect(await client.request({ op: "subscribe", sub: 4, topic: "orders", group: "billing" })).toMatchObject({ op: "joined" });
    expect(await client.request({ op: "presence", topic: "orders" })).toMatchObject({ op: "error", code: "FORBIDDEN" });
    expect(await client.publish("__mqtt.sessions", "x")).toMatchObject({ op: "error", code: "FORBIDDEN" });
    expect(await client.subscribe({ sub: 5, topic: "__mqtt.sessions" })).toMatchObject({ op: "error", code: "FORBIDDEN" });
    await client.waitForMessages(1, 1);
    await client.close();
  });

  it("lets-an-admin-read-internal-topics-but-not-produce-to-them", async () => {
    const { client, reply } = await helloWith(n.wsUrl, await n.hs({ sub: "root", admin: true }));
    expect(reply.op).toBe("welcome");
    expect(await client.subscribe({ sub: 1, topic: "__mqtt.sessions" })).toMatchObject({ op: "subscribed" });
    expect(await client.publish("__mqtt.sessions", "x")).toMatchObject({ op: "error", code: "FORBIDDEN" });
    await client.close();
  });

  it("closes-a-connection-whose-token-expires-with-TOKEN_EXPIRED-4003", async () => {
    const { client, reply } = await helloWith(n.wsUrl, await n.hs({ sub: "short", acl: { all: ["#"] } }, 2));
    expect(reply.op).toBe("welcome");
    const disconnect = await client.waitFor((f) => f.op === "disconnect", 10_000);
    expect(disconnect).toMatchObject({ code: "TOKEN_EXPIRED", reconnect: true });
    expect((await client.closed).code).toBe(4003);
  });

  it("revokes-rs-identities-when-their-key-leaves-the-jwks-file", async () => {
    const { client, reply } = await helloWith(n.wsUrl, await n.rs({ sub: "bob", acl: { all: ["#"] } }));
    expect(reply.op).toBe("welcome");
    // Rotation: the JWKS now holds only a new key k2; the file watcher reloads it (no reload() call).
    const next = await generateKeyPair("RS256");
    writeFileSync(n.jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(next.publicKey)), kid: "k2", alg: "RS256", use: "sig" }] }));
    const disconnect = await client.waitFor((f) => f.op === "disconnect", 10_000);
    expect(disconnect).toMatchObject({ code: "UNAUTHORIZED" });
    expect((await client.closed).code).toBe(4501);
    const again = await helloWith(n.wsUrl, await n.rs({ sub: "bob", acl: { all: ["#"] } }));
    expect(again.reply).toMatchObject({ op: "error", code: "UNAUTHORIZED" });
    const k2 = await new SignJWT({ sub: "bob", acl: { all: ["#"] } }).setProtectedHeader({ alg: "RS256", kid: "k2" }).setExpirationTime("1h").sign(next.privateKey);
    expect((await helloWith(n.wsUrl, k2)).reply.op).toBe("welcome");
  });

  it("sdk-refreshes-its-token-with-getToken-across-expiry-without-losing-records", async () => {
    let minted = 0;
    const getToken = async () => {
      minted++;
      return n.hs({ sub: "sdk", acl: { all: ["stream/#"] } }, 3);
    };
    const client = connect(`ws://127.0.0.1:${n.node.httpPort}`, { getToken, tokenRefreshMargin: 1000 });
    const received: number[] = [];
    client.subscribe<number>("stream", (m) => void received.push(m.value), { from: "earliest" });
    const total = 60;
    for (let i = 0; i < total; i++) {
      await client.publish("stream", i);
      if (i % 10 === 9) await waitFor(() => minted >= 1 + Math.floor(i / 20), { timeoutMs: 15_000, what: "a token refresh" });
    }
    await waitFor(() => received.length >= total, { timeoutMs: 15_000, what: "every record" });
    expect(minted).toBeGreaterThanOrEqual(3);
    expect(received).toEqual([...Array(total).keys()]);
    await client.close();
  }, 40_000);
});

describe("WebSocket auth with an ACL file (anonymous section), reloaded", () => {
  let n: AuthTestNode;
  beforeAll(async () => {
    n = await startAuthNode({ acl: "topic readwrite feed/#\ntopic readwrite jobs/#\n", allowAnonymous: true, presence: { sessionTimeoutMs: 60_000 } });
  });
  afterAll(() => n.close());

  it("ends-a-subscription-a-group-member-and-a-presence-watch-that-lose-permission", async () => {
    const { client, reply } = await helloWith(n.wsUrl);
    expect(reply.op).toBe("welcome");
    expect(await client.subscribe({ sub: 1, topic: "feed" })).toMatchObject({ op: "subscribed" });
    expect(await client.request({ op: "subscribe", sub: 2, topic: "jobs", group: "workers" })).toMatchObject({ op: "joined" });
    expect(await client.request({ op: "presence", topic: "feed", watch: true })).toMatchObject({ op: "presence" });
    expect(await client.subscribe({ sub: 3, topic: "jobs" })).toMatchObject({ op: "subscribed" });
    writeFileSync(n.aclFile!, "topic readwrite jobs/#\n");
    await n.node.auth.reload();
    await client.waitFor((f) => f.op === "error" && f.sub === 1 && f.code === "FORBIDDEN");
    await client.waitFor((f) => f.op === "error" && f.code === "FORBIDDEN" && String(f.message).includes("presence"));
    // jobs is still permitted: the group member and the plain subscription go on
    expect(client.frames.some((f) => f.op === "error" && (f.sub === 2 || f.sub === 3))).toBe(false);
    writeFileSync(n.aclFile!, "topic readwrite other/#\n");
    await n.node.auth.reload();
    await client.waitFor((f) => f.op === "error" && f.sub === 2 && f.code === "FORBIDDEN");
    await client.waitFor((f) => f.op === "error" && f.sub === 3 && f.code === "FORBIDDEN");
    expect(await client.publish("jobs", "x")).toMatchObject({ op: "error", code: "FORBIDDEN" });
    await client.close();
  });
});
