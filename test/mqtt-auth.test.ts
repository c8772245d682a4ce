/**
 * MQTT with the auth layer enforced (docs/mqtt.md "Authentication"): JWT and password-file
 * identities at CONNECT, permission checks on PUBLISH / SUBSCRIBE / wills, expiry and
 * reloads of live connections, persistent sessions whose permission went away, retained
 * messages of denied topics, `$share` members, and Debian's mosquitto_pub / mosquitto_sub
 * with a Mosquitto-format password file and ACL file.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, type JWTPayload } from "jose";
import type { IClientOptions, MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuthChange } from "../server/src/auth/index.ts";
import { hashPassword } from "../server/src/auth/password-hash.ts";
import { collect, connectClient, endClient, flushLog, roundTrip, startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { waitFor, within } from "./helpers/wait.ts";

const SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret-s3cret";
const OTHER_SECRET = "another-secret-another-secret-another-secret";

const dir = mkdtempSync(join(tmpdir(), "tributary-mqtt-auth-"));
const secretFile = join(dir, "jwt.secret");
const passwordFile = join(dir, "passwd");
const aclFile = join(dir, "acl");

const ACL = `
user alice
topic readwrite sensors/#
topic write devices/#

user bob
topic read sensors/#
topic read sensors/public/#
topic read jobs/#

user carol
topic read jobs/#

pattern readwrite devices/%c/#
`;

/** Replaces a file by rename, as editors and config maps do. */
function replace(path: string, content: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

function token(claims: JWTPayload, options: { secret?: string; exp?: number | string } = {}): Promise<string> {
  return new SignJWT({ sub: "dev", ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(options.exp ?? "1h")
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

function unsigned(claims: JWTPayload): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "dev", exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}.`;
}

const GRANT = { acl: { pub: ["sensors/#"], sub: ["sensors/#"] } };

let node: MqttTestNode;

beforeAll(async () => {
  writeFileSync(secretFile, SECRET);
  writeFileSync(passwordFile, `alice:${await hashPassword("alice-pw")}\nbob:${await hashPassword("bob-pw")}\ncarol:${await hashPassword("carol-pw")}\n`);
  writeFileSync(aclFile, ACL);
  node = await startMqttTestNode({}, {}, {}, { jwt: { secretFile }, passwordFile, aclFile });
}, 30_000);

afterAll(async () => {
  await node?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the next successful reload of `file`. */
function nextReload(file: AuthChange["file"]): Promise<AuthChange> {
  return within(
    new Promise((resolve) => {
      const off = node.node.auth.on("change", (c) => {
        if (c.file === file && c.error === null) {
          off();
          resolve(c);
        }
      });
    }),
    10_000,
    `a reload of the ${file}`,
  );
}

/** CONNECT that must be refused: resolves with the CONNACK code. */
async function refusedWith(url: string, options: IClientOptions): Promise<number> {
  const err = (await connectClient(url, options).then(
    async (c) => {
      await endClient(c, true);
      throw new Error("connected, expected a refusal");
    },
    (e: unknown) => e,
  )) as { code?: number };
  return err.code ?? -1;
}

function closed(client: MqttClient): Promise<{ reasonCode: number | null }> {
  return new Promise((resolve) => {
    let reasonCode: number | null = null;
    client.on("disconnect", (packet) => (reasonCode = packet.reasonCode ?? 0));
    client.once("close", () => resolve({ reasonCode }));
  });
}

/** The SUBACK codes for `filters` at QoS 1 (MQTT.js rejects when one is a failure; the codes are in its packet). */
async function subackCodes(c: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet;
    if (!packet?.granted) throw err;
    return packet.granted;
  }
}

const PROTOCOLS = [
  { name: "MQTT 3.1.1 over TCP", version: 4 as const, url: () => node.tcpUrl },
  { name: "MQTT 5 over TCP", version: 5 as const, url: () => node.tcpUrl },
  { name: "MQTT 5 over WebSocket", version: 5 as const, url: () => node.wsUrl },
  { name: "MQTT 3.1.1 over WebSocket", version: 4 as const, url: () => node.wsUrl },
];

let seq = 0;
const cid = (p: string) => `${p}-${++seq}`;

describe.each(PROTOCOLS)("$name", ({ version, url }) => {
  const v5 = version === 5;
  const opts = (o: IClientOptions = {}): IClientOptions => ({ protocolVersion: version, clientId: cid("c"), ...o });

  it("a token granting sensors/# publishes and subscribes there", async () => {
    const c = await connectClient(url(), opts({ username: "x", password: await token(GRANT) }));
    const col = collect(c);
    const granted = await c.subscribeAsync("sensors/+/temp", { qos: 1 });
    expect(granted[0]!.qos).toBe(1);
    await c.publishAsync("sensors/d1/temp", "21", { qos: 1 });
    await col.waitFor(1);
    expect(col.messages[0]).toMatchObject({ topic: "sensors/d1/temp", payload: "21" });
    await endClient(c);
  });

  it("no credentials is refused as not authorized (0x87 / 0x05)", async () => {
    expect(await refusedWith(url(), opts())).toBe(v5 ? 0x87 : 0x05);
  });

  it("a token with a wrong signature, alg none, or expired at connect is refused as bad credentials (0x86 / 0x04)", async () => {
    const bad = v5 ? 0x86 : 0x04;
    expect(await refusedWith(url(), opts({ username: "x", password: await token(GRANT, { secret: OTHER_SECRET }) }))).toBe(bad);
    expect(await refusedWith(url(), opts({ username: "x", password: unsigned(GRANT) }))).toBe(bad);
    expect(await refusedWith(url(), opts({ username: "x", password: await token(GRANT, { exp: Math.floor(Date.now() / 1000) - 10 }) }))).toBe(bad);
    expect(await refusedWith(url(), opts({ username: "alice", password: "wrong" }))).toBe(bad);
  });

  it(`a forbidden subscription gets SUBACK ${v5 ? "0x87" : "0x80"} and a forbidden PUBLISH is ${v5 ? "answered 0x87 and not stored" : "closed"}`, async () => {
    const c = await connectClient(url(), opts({ username: "x", password: await token(GRANT) }));
    expect(await subackCodes(c, ["secret/#", "sensors/#", "#"])).toEqual(v5 ? [0x87, 1, 0x87] : [0x80, 1, 0x80]);
    if (v5) {
      const err = (await c.publishAsync("secret/x", "no", { qos: 1 }).catch((e: unknown) => e)) as { code?: number };
      expect(err.code).toBe(0x87);
      const err2 = (await c.publishAsync("secret/x", "no", { qos: 2 }).catch((e: unknown) => e)) as { code?: number };
      expect(err2.code).toBe(0x87);
      await c.publishAsync("secret/x", "no", { qos: 0 }); // dropped, the connection stays
      await roundTrip(c);
      expect(c.connected).toBe(true);
      await endClient(c);
    } else {
      const gone = closed(c);
      c.publish("secret/x", "no", { qos: 1 });
      await within(gone, 5000, "the close after a forbidden PUBLISH");
    }
    // nothing stored anywhere: no log topic "secret" was ever created
    expect(await node.node.broker.listTopics()).not.toContain("secret");
  });

  it("a will on a topic it may not publish is refused at CONNECT (0x87 / 0x05)", async () => {
    const will = { topic: "secret/will", payload: Buffer.from("x"), qos: 0 as const, retain: false };
    expect(await refusedWith(url(), opts({ username: "x", password: await token(GRANT), will }))).toBe(v5 ? 0x87 : 0x05);
  });

  it(`a token expiring while connected closes the connection ${v5 ? "with DISCONNECT 0xA0" : "(plain close)"}`, async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const c = await connectClient(url(), opts({ username: "x", password: await token(GRANT, { exp }) }));
    const gone = await within(closed(c), 6000, "the close at expiry");
    expect(gone.reasonCode).toBe(v5 ? 0xa0 : null);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000 - 50);
    await endClient(c, true);
  });
});
