/**
 * MQTT with the auth layer enforced (docs/mqtt.md "Authentication"): JWT and password-file
 * identities at CONNECT, permission checks on PUBLISH / SUBSCRIBE / wills, expiry and
 * reloads of live connections, persistent sessions whose permission went away, retained
 * messages of denied topics, `$share` members, and Debian's mosquitto_pub / mosquitto_sub
 * with a Mosquitto-format password file and ACL file.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
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

describe("password file and ACL file", () => {
  it("a password-file user whose entry is removed by a reload is disconnected (MQTT 5 DISCONNECT 0x87)", async () => {
    const c = await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: cid("carol"), username: "carol", password: "carol-pw" });
    const gone = closed(c);
    const reloaded = nextReload("password-file");
    const original = readFileSync(passwordFile, "utf8");
    replace(passwordFile, original.replace(/^carol:.*\n/m, `carol:${await hashPassword("new-pw")}\n`));
    await reloaded;
    expect((await within(gone, 5000, "the close after revocation")).reasonCode).toBe(0x87);
    await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: cid("carol"), username: "carol", password: "new-pw" }).then((x) => endClient(x));
    const back = nextReload("password-file");
    replace(passwordFile, original);
    await back;
  });

  it("retained messages of a denied topic are not delivered; those of an allowed one are", async () => {
    const alice = await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: cid("alice"), username: "alice", password: "alice-pw" });
    await alice.publishAsync("sensors/public/r", "open", { qos: 1, retain: true });
    await alice.publishAsync("sensors/private/r", "closed", { qos: 1, retain: true });
    await endClient(alice);
    // carol may read jobs/# only; bob sensors/#
    const carol = await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: cid("carol"), username: "carol", password: "carol-pw" });
    const col = collect(carol);
    expect(await subackCodes(carol, ["sensors/#", "sensors/private/r", "jobs/#"])).toEqual([0x87, 0x87, 1]);
    await roundTrip(carol);
    expect(col.messages).toEqual([]);
    await endClient(carol);
    const bob = await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: cid("bob"), username: "bob", password: "bob-pw" });
    const got = collect(bob);
    expect(await subackCodes(bob, ["sensors/public/#"])).toEqual([1]);
    await got.waitFor(1);
    await roundTrip(bob);
    expect(got.messages.map((m) => m.topic)).toEqual(["sensors/public/r"]);
    await endClient(bob);
  });

  it("a persistent session whose subscription the ACL no longer permits gets nothing more from it on reconnect", async () => {
    const clientId = cid("keeper");
    const o: IClientOptions = { protocolVersion: 5, clientId, username: "bob", password: "bob-pw", clean: false, properties: { sessionExpiryInterval: 3600 } };
    const first = await connectClient(node.tcpUrl, o);
    expect(await subackCodes(first, ["sensors/#", "sensors/public/#"])).toEqual([1, 1]);
    await endClient(first);
    const reloaded = nextReload("acl-file");
    replace(aclFile, ACL.replace("topic read sensors/#\n", ""));
    await reloaded;
    const alice = await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: cid("alice"), username: "alice", password: "alice-pw" });
    await alice.publishAsync("sensors/private/x", "while-away", { qos: 1 });
    await endClient(alice);
    let col: ReturnType<typeof collect> | undefined;
    const again = await connectClient(node.tcpUrl, o, (c) => (col = collect(c)));
    // markers on every partition of "sensors", keyed by a topic the kept subscription matches:
    // once they are in, the record published while away was offered before them
    await flushLog(node, "sensors/public/m", [col!]);
    const a2 = await connectClient(node.tcpUrl, { protocolVersion: 5, clientId: cid("alice"), username: "alice", password: "alice-pw" });
    await a2.publishAsync("sensors/private/y", "after", { qos: 1 });
    await endClient(a2);
    await flushLog(node, "sensors/public/m", [col!]);
    expect(col!.messages.filter((m) => m.topic.startsWith("sensors/private/"))).toEqual([]);
    await endClient(again);
    const back = nextReload("acl-file");
    replace(aclFile, ACL);
    await back;
  });

  it("a $share member that loses permission stops receiving; the other member gets everything", async () => {
    const o = (user: string): IClientOptions => ({ protocolVersion: 5, clientId: cid(user), username: user, password: `${user}-pw` });
    const bob = await connectClient(node.tcpUrl, o("bob"));
    const carol = await connectClient(node.tcpUrl, o("carol"));
    const bobCol = collect(bob);
    const carolCol = collect(carol);
    expect(await subackCodes(bob, ["$share/workers/jobs/#"])).toEqual([1]);
    expect(await subackCodes(carol, ["$share/workers/jobs/#"])).toEqual([1]);
    const reloaded = nextReload("acl-file");
    replace(aclFile, ACL.replace("topic read jobs/#\n\nuser carol", "\nuser carol"));
    await reloaded;
    const before = bobCol.messages.length;
    await node.node.broker.produce("jobs", [0, 1, 2, 3, 4, 5].map((i) => ({ key: new TextEncoder().encode(`jobs/${i}`), value: new TextEncoder().encode(`j${i}`) })));
    await flushLog(node, "jobs/m", [carolCol], { timeoutMs: 20_000 });
    expect(bobCol.messages.length).toBe(before);
    expect(carolCol.messages.map((m) => m.payload).sort()).toEqual(["j0", "j1", "j2", "j3", "j4", "j5"]);
    expect(bobCol.markers.size).toBe(0);
    await endClient(bob);
    await endClient(carol);
    const back = nextReload("acl-file");
    replace(aclFile, ACL);
    await back;
  }, 30_000);
});

/** Runs a Debian mosquitto client to its end. */
function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

describe("Debian mosquitto_pub / mosquitto_sub with the Mosquitto-format password and ACL files", () => {
  const common = () => ["-h", "127.0.0.1", "-p", String(node.mqttPort)];

  it("a pattern line with %c lets a device read its own topics, not another device's", async () => {
    for (const version of ["mqttv311", "mqttv5"]) {
      const sub = spawn("stdbuf", ["-o0", "-e0", "mosquitto_sub", ...common(), "-V", version, "-d", "-i", "dev1", "-u", "carol", "-P", "carol-pw", "-t", "devices/dev1/#", "-C", "1", "-W", "15"], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      const subscribed = new Promise<void>((resolve, reject) => {
        const read = (d: Buffer) => {
          out += d.toString();
          if (out.includes("received SUBACK")) resolve();
        };
        sub.stdout.on("data", read);
        sub.stderr.on("data", read);
        sub.on("close", () => reject(new Error(`mosquitto_sub ended before SUBACK: ${out}`)));
      });
      const ended = new Promise<number | null>((resolve) => sub.on("close", (code) => resolve(code)));
      await within(subscribed, 10_000, "mosquitto_sub's SUBACK").catch((err: unknown) => {
        sub.kill();
        throw new Error(`${String(err)}; mosquitto_sub said: ${out}`);
      });
      const pub = await run("mosquitto_pub", [...common(), "-V", version, "-i", "pub1", "-u", "alice", "-P", "alice-pw", "-t", "devices/dev1/status", "-m", `on-${version}`, "-q", "1"]);
      expect(pub.code, pub.out).toBe(0);
      expect(await within(ended, 15_000, "mosquitto_sub to exit")).toBe(0);
      expect(out).toContain(`on-${version}`);
      // another device's topic: every subscription denied
      const denied = await run("mosquitto_sub", [...common(), "-V", version, "-i", "dev2", "-u", "carol", "-P", "carol-pw", "-t", "devices/dev1/#", "-C", "1", "-W", "5"]);
      expect(denied.out).toMatch(/denied/i);
    }
  }, 60_000);

  it("a wrong password is refused as not authorised; a write the ACL does not grant is not stored", async () => {
    const wrong = await run("mosquitto_pub", [...common(), "-i", "p2", "-u", "alice", "-P", "nope", "-t", "sensors/x", "-m", "x"]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/not authori[sz]ed|bad user name or password/i);
    const v5 = await run("mosquitto_pub", [...common(), "-V", "mqttv5", "-i", "p3", "-u", "bob", "-P", "bob-pw", "-t", "sensors/forbidden", "-m", "x", "-q", "1"]);
    expect(v5.out).toMatch(/not authori[sz]ed/i);
    const partitions = (await node.node.broker.listTopics()).includes("sensors") ? await node.node.broker.partitions("sensors", false) : 0;
    for (let p = 0; p < partitions; p++) {
      const records = await node.node.broker.read("sensors", p, 0, { maxRecords: 10_000 } as never);
      expect(records.some((r) => Buffer.from(r.key ?? []).toString() === "sensors/forbidden")).toBe(false);
    }
  }, 30_000);
});
