import { SignJWT, exportJWK, type JWTPayload } from "jose";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { TributaryError } from "../errors.ts";
import { connackCodeFor, disconnectReasonFor } from "./auth-errors.ts";
import { AuthService, type AuthChange, type AuthConfig, type AuthFileKind } from "./auth-service.ts";
import { checkExposure, isLoopbackHost } from "./exposure.ts";
import { createIdentity } from "./identity.ts";
import { hashPassword } from "./password-hash.ts";

const dir = mkdtempSync(join(tmpdir(), "tributary-auth-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const services: AuthService[] = [];
afterEach(() => {
  for (const s of services.splice(0)) s.close();
});

let n = 0;
function file(content: string): string {
  const path = join(dir, `f${n++}`);
  writeFileSync(path, content);
  return path;
}
/** Replaces a file the way editors and config tools do: write aside, rename over. */
function replace(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

const SECRET = "0123456789abcdef0123456789abcdef-tributary";
const NONE: AuthConfig = { jwt: { secretFile: null, publicKeyFile: null, jwksFile: null, audience: null, issuer: null }, passwordFile: null, aclFile: null, allowAnonymous: false };

function config(over: Partial<Omit<AuthConfig, "jwt">> & { jwt?: Partial<AuthConfig["jwt"]> } = {}): AuthConfig {
  return { ...NONE, ...over, jwt: { ...NONE.jwt, ...over.jwt } };
}

async function open(c: AuthConfig, clock?: { now: number }): Promise<AuthService> {
  const s = await AuthService.open(c, { now: clock ? () => clock.now : undefined });
  services.push(s);
  return s;
}

/** Resolves with the next `change` event for `kind`: tests wait on the reload itself, never on time. */
function nextChange(service: AuthService, kind: AuthFileKind): Promise<AuthChange> {
  return new Promise((resolve) => {
    const off = service.on("change", (c) => {
      if (c.file !== kind) return;
      off();
      resolve(c);
    });
  });
}

function hs(claims: JWTPayload, secret = SECRET): Promise<string> {
  const jwt = new SignJWT({ sub: "alice", ...claims }).setProtectedHeader({ alg: "HS256" });
  if (claims.exp === undefined) jwt.setExpirationTime("1h");
  return jwt.sign(new TextEncoder().encode(secret));
}

async function rejection(p: Promise<unknown>): Promise<TributaryError> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e as TributaryError,
  );
}

describe("AuthService modes", () => {
  it("open mode (nothing configured): everyone is an anonymous admin, tokens are not checked", async () => {
    const s = await open(NONE);
    expect(s.mode).toBe("open");
    const id = await s.authenticateMqtt({ username: "x", password: "y", clientId: "c" });
    expect(id.kind).toBe("anonymous");
    expect(s.authorizer.isAdmin(id)).toBe(true);
    expect(s.authorizer.canConsume(id, "__mqtt.sessions")).toBe(true);
    expect(s.authorizer.canProduce(id, "__mqtt.sessions", "evil")).toBe(false);
    expect((await s.authenticateToken("garbage")).kind).toBe("anonymous");
  });

  it("enforced mode refuses clients without credentials unless allowAnonymous", async () => {
    const s = await open(config({ jwt: { secretFile: file(SECRET) } }));
    const err = await rejection(s.authenticateMqtt({ clientId: "c" }));
    expect(err).toMatchObject({ code: "UNAUTHORIZED", context: { reason: "missing" } });
    expect(connackCodeFor(err, 5)).toBe(0x87);
    expect(connackCodeFor(err, 4)).toBe(0x05);
    expect(() => s.anonymous()).toThrow(/credentials are required/);
    await expect(s.authenticateHttp(undefined)).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("allowAnonymous gives anonymous clients the ACL's anonymous section, or publish/subscribe everywhere without an ACL", async () => {
    const withAcl = await open(config({ aclFile: file("topic read public/#\n"), allowAnonymous: true }));
    const a = withAcl.anonymous("c1");
    expect(withAcl.authorizer.canSubscribe(a, "public/#")).toBe(true);
    expect(withAcl.authorizer.canPublish(a, "public/x")).toBe(false);
    const noAcl = await open(config({ jwt: { secretFile: file(SECRET) }, allowAnonymous: true }));
    const b = await noAcl.authenticateToken(null);
    expect(noAcl.authorizer.canPublish(b, "anything/x")).toBe(true);
    expect(noAcl.authorizer.isAdmin(b)).toBe(false);
    expect(noAcl.authorizer.canConsume(b, "__mqtt.sessions")).toBe(false);
  });

  it("denies identities it did not make", async () => {
    const s = await open(NONE);
    const forged = createIdentity({ kind: "jwt", subject: "root", clientId: null, expiresAt: null });
    expect(s.authorizer.isAdmin(forged)).toBe(false);
    expect(s.authorizer.canPublish(forged, "t")).toBe(false);
    expect(s.validate(forged)).toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("names the missing or invalid file when opening", async () => {
    await expect(AuthService.open(config({ aclFile: join(dir, "nope.acl") }), { watch: false })).rejects.toMatchObject({ code: "INVALID_CONFIG", message: expect.stringContaining("nope.acl does not exist") });
    await expect(AuthService.open(config({ jwt: { secretFile: file("short") } }), { watch: false })).rejects.toMatchObject({ code: "INVALID_CONFIG", message: expect.stringContaining("at least 32") });
    await expect(AuthService.open(config({ aclFile: file("user\n") }), { watch: false })).rejects.toMatchObject({ message: expect.stringMatching(/:1: "user" needs a user name/) });
  });
});

describe("AuthService credentials per protocol", () => {
  it("MQTT: a JWT as password, or a password-file password; HTTP: Bearer", async () => {
    const passwd = file(`bob:${await hashPassword("hunter2")}\n`);
    const s = await open(config({ jwt: { secretFile: file(SECRET) }, passwordFile: passwd, aclFile: file("user bob\ntopic read bob/#\n") }));
    const token = await hs({ acl: { pub: ["t/#"] } });

    const viaJwt = await s.authenticateMqtt({ username: "ignored", password: new TextEncoder().encode(token), clientId: "c1" });
    expect(viaJwt).toMatchObject({ kind: "jwt", subject: "alice", clientId: "c1" });
    expect(s.authorizer.canPublish(viaJwt, "t/x")).toBe(true);

    const bob = await s.authenticateMqtt({ username: "bob", password: "hunter2", clientId: "c2" });
    expect(bob).toMatchObject({ kind: "password", subject: "bob" });
    expect(s.authorizer.canSubscribe(bob, "bob/+")).toBe(true);
    expect(s.authorizer.canPublish(bob, "t/x")).toBe(false);

    const bad = await rejection(s.authenticateMqtt({ username: "bob", password: "nope", clientId: "c3" }));
    expect(bad).toMatchObject({ code: "UNAUTHORIZED", message: "bad user name or password" });
    expect(connackCodeFor(bad, 5)).toBe(0x86);
    expect(connackCodeFor(bad, 4)).toBe(0x04);

    expect((await s.authenticateHttp(`Bearer ${token}`)).subject).toBe("alice");
    expect((await s.authenticateHttp(`bearer  ${token} `)).subject).toBe("alice");
    await expect(s.authenticateHttp(`Basic ${Buffer.from("bob:hunter2").toString("base64")}`)).rejects.toMatchObject({ code: "UNAUTHORIZED", message: expect.stringContaining("Bearer") });
    await expect(s.authenticateToken("not-a-jwt")).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("refuses a token where no JWT key is configured, and a password where no password file is", async () => {
    const onlyPasswords = await open(config({ passwordFile: file("") }));
    await expect(onlyPasswords.authenticateToken(await hs({}))).rejects.toMatchObject({ message: expect.stringContaining("no JWT key") });
    const onlyJwt = await open(config({ jwt: { secretFile: file(SECRET) } }));
    await expect(onlyJwt.authenticateMqtt({ username: "bob", password: "hunter2", clientId: "c" })).rejects.toMatchObject({ message: expect.stringContaining("no password file") });
  });
});

describe("AuthService expiry and revocation", () => {
  it("exposes expiry; at expiry validate() says TOKEN_EXPIRED and the authorizer denies", async () => {
    const clock = { now: Date.now() };
    const s = await open(config({ jwt: { secretFile: file(SECRET) } }), clock);
    const exp = Math.floor(clock.now / 1000) + 60;
    const id = await s.authenticateToken(await hs({ exp, acl: { pub: ["t/#"] } }));
    expect(s.msUntilExpiry(id)).toBe(exp * 1000 - clock.now);
    expect(s.validate(id)).toBeNull();
    expect(s.authorizer.canPublish(id, "t/x")).toBe(true);
    clock.now = exp * 1000;
    expect(s.msUntilExpiry(id)).toBe(0);
    const err = s.validate(id)!;
    expect(err.code).toBe("TOKEN_EXPIRED");
    expect(disconnectReasonFor(err.code)).toBe(0xa0);
    expect(s.authorizer.canPublish(id, "t/x")).toBe(false);
    // and a token that is already expired is refused at connect
    await expect(s.authenticateToken(await hs({ exp: Math.floor(clock.now / 1000) - 1 }))).rejects.toMatchObject({ code: "TOKEN_EXPIRED" });
  });

  it("JWKS rotation by file change: the new key is accepted, the removed key's identities are revoked", async () => {
    const k1 = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const k2 = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwks = async (...keys: [string, KeyObject][]) => JSON.stringify({ keys: await Promise.all(keys.map(async ([kid, k]) => ({ ...(await exportJWK(k)), kid, alg: "ES256" }))) });
    const sign = (kid: string, key: KeyObject) => new SignJWT({ sub: "dev", acl: { sub: ["t/#"] } }).setProtectedHeader({ alg: "ES256", kid }).setExpirationTime("1h").sign(key);
    const path = file(await jwks(["k1", k1.publicKey]));
    const s = await open(config({ jwt: { jwksFile: path } }));

    const old = await s.authenticateToken(await sign("k1", k1.privateKey));
    expect(s.authorizer.canSubscribe(old, "t/+")).toBe(true);
    await expect(s.authenticateToken(await sign("k2", k2.privateKey))).rejects.toMatchObject({ code: "UNAUTHORIZED" });

    const changed = nextChange(s, "jwks");
    replace(path, await jwks(["k2", k2.publicKey]));
    expect((await changed).error).toBeNull();

    expect((await s.authenticateToken(await sign("k2", k2.privateKey))).subject).toBe("dev");
    await expect(s.authenticateToken(await sign("k1", k1.privateKey))).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    expect(s.validate(old)).toMatchObject({ code: "UNAUTHORIZED", context: { reason: "revoked" } });
    expect(s.authorizer.canSubscribe(old, "t/+")).toBe(false); // the cached decision did not survive the reload
  });

  it("an ACL change reaches connected identities after the change event; a broken file keeps the old rules", async () => {
    const acl = file("topic read a/#\n");
    const s = await open(config({ aclFile: acl, allowAnonymous: true }));
    const anon = s.anonymous("c1");
    expect(s.authorizer.canSubscribe(anon, "a/x")).toBe(true);

    let changed = nextChange(s, "acl-file");
    writeFileSync(acl, "topic read b/#\n"); // in place, like `echo > file`
    expect((await changed).error).toBeNull();
    expect(s.authorizer.canSubscribe(anon, "a/x")).toBe(false);
    expect(s.authorizer.canSubscribe(anon, "b/x")).toBe(true);

    changed = nextChange(s, "acl-file");
    replace(acl, "topic sometimes c/#\n");
    const failed = await changed;
    expect(failed.error).toMatchObject({ code: "INVALID_CONFIG", message: expect.stringContaining(":1: unknown access") });
    expect(s.authorizer.canSubscribe(anon, "b/x")).toBe(true);
  });

  it("a password-file reload revokes a removed user; reload() works without watching", async () => {
    const passwd = file(`bob:${await hashPassword("hunter2")}\n`);
    const s = await AuthService.open(config({ passwordFile: passwd }), { watch: false });
    services.push(s);
    const bob = await s.authenticateMqtt({ username: "bob", password: "hunter2", clientId: "c" });
    expect(s.validate(bob)).toBeNull();
    expect(s.authorizer.canPublish(bob, "x")).toBe(true); // no ACL file: publish/subscribe everywhere
    const changes: AuthChange[] = [];
    s.on("change", (c) => changes.push(c));
    writeFileSync(passwd, "# nobody\n");
    const results = await s.reload();
    expect(results[0]).toMatchObject({ path: passwd, value: expect.anything() });
    expect(changes).toEqual([{ file: "password-file", path: passwd, error: null }]);
    expect(s.validate(bob)).toMatchObject({ code: "UNAUTHORIZED", context: { reason: "revoked" } });
    expect(s.authorizer.canPublish(bob, "x")).toBe(false);
    expect(await s.reload()).toEqual([{ path: passwd }]); // unchanged content: nothing reported
  });
});

describe("exposure (Mosquitto 2's local-only default)", () => {
  it("knows loopback hosts", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"]) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.1", "example.com", "128.0.0.1"]) expect(isLoopbackHost(h), h).toBe(false);
  });

  it("refuses open mode beyond loopback unless allowAnonymous, saying what to configure", () => {
    expect(checkExposure(NONE, ["127.0.0.1"])).toEqual({ ok: true, warning: null });
    const refused = checkExposure(NONE, ["0.0.0.0"]);
    expect(refused).toMatchObject({ ok: false, problem: expect.stringContaining("auth.jwt.secretFile") });
    expect(checkExposure(config({ allowAnonymous: true }), ["0.0.0.0"])).toMatchObject({ ok: true, warning: expect.stringContaining("full access") });
    expect(checkExposure(config({ passwordFile: "/x" }), ["0.0.0.0"])).toEqual({ ok: true, warning: null });
  });
});
