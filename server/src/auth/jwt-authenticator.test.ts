import { SignJWT, UnsecuredJWT, exportJWK, type JWTPayload } from "jose";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isTributaryError, type TributaryError } from "../errors.ts";
import { JwtAuthenticator, type JwtAuthenticatorOptions } from "./jwt-authenticator.ts";
import { JwtKeyring, keysFromJwks, publicKeysFromPem, secretKeyFromFile } from "./jwt-keys.ts";
import { PolicyAuthorizer } from "./policy-authorizer.ts";

const NOW = Date.UTC(2030, 0, 1) ; // fixed clock: tokens are minted relative to it
const nowSec = Math.floor(NOW / 1000);
const SECRET = new TextEncoder().encode("0123456789abcdef0123456789abcdef-tributary");
const enc = new TextEncoder();

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ec384 = generateKeyPairSync("ec", { namedCurve: "P-384" });
const ed = generateKeyPairSync("ed25519");
const pem = (k: KeyObject) => k.export({ type: "spki", format: "pem" }) as string;

function sign(alg: string, key: KeyObject | Uint8Array, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ sub: "alice", exp: nowSec + 3600, ...claims }).setProtectedHeader({ alg, ...header }).sign(key);
}

function authenticator(keyring: JwtKeyring, options: Partial<JwtAuthenticatorOptions> = {}) {
  return new JwtAuthenticator(() => keyring, { audience: null, issuer: null, now: () => NOW, ...options });
}

const secretRing = new JwtKeyring([secretKeyFromFile(SECRET, "secret")]);
const publicRing = new JwtKeyring(publicKeysFromPem(pem(rsa.publicKey) + pem(ec256.publicKey) + pem(ec384.publicKey) + pem(ed.publicKey), "keys.pem"));

async function failure(p: Promise<unknown>): Promise<TributaryError> {
  try {
    await p;
  } catch (err) {
    expect(isTributaryError(err)).toBe(true);
    return err as TributaryError;
  }
  throw new Error("expected a rejection");
}

describe("JwtAuthenticator: valid tokens", () => {
  it.each(["HS256", "HS384", "HS512"])("accepts %s with the configured secret", async (alg) => {
    const { identity, policy } = await authenticator(secretRing).authenticate({ kind: "token", token: await sign(alg, SECRET, { acl: { pub: ["t/#"] } }), clientId: "c1" });
    expect(identity).toMatchObject({ kind: "jwt", subject: "alice", clientId: "c1", expiresAt: (nowSec + 3600) * 1000 });
    expect(policy?.publish.allow.map((f) => f.filter)).toEqual(["t/#"]);
  });

  it.each([
    ["RS256", rsa.privateKey],
    ["RS512", rsa.privateKey],
    ["PS256", rsa.privateKey],
    ["ES256", ec256.privateKey],
    ["ES384", ec384.privateKey],
    ["EdDSA", ed.privateKey],
  ] as const)("accepts %s with a PEM public key", async (alg, key) => {
    const { identity } = await authenticator(publicRing).authenticate({ kind: "token", token: await sign(alg, key), clientId: null });
    expect(identity.subject).toBe("alice");
  });

  it("accepts a token without exp (never expires) and exposes expiry otherwise", async () => {
    const token = await new SignJWT({ sub: "bob" }).setProtectedHeader({ alg: "HS256" }).sign(SECRET);
    const { identity } = await authenticator(secretRing).authenticate({ kind: "token", token, clientId: null });
    expect(identity.expiresAt).toBeNull();
  });

  it("enforces aud and iss when configured", async () => {
    const a = authenticator(secretRing, { audience: "tributary", issuer: "https://auth.example" });
    await expect(a.verify(await sign("HS256", SECRET, { aud: ["other", "tributary"], iss: "https://auth.example" }))).resolves.toBeDefined();
    expect((await failure(a.verify(await sign("HS256", SECRET, { aud: "other", iss: "https://auth.example" })))).context.reason).toBe("aud");
    expect((await failure(a.verify(await sign("HS256", SECRET, { aud: "tributary", iss: "https://evil.example" })))).context.reason).toBe("iss");
    expect((await failure(a.verify(await sign("HS256", SECRET, { iss: "https://auth.example" })))).context.reason).toBe("aud");
  });
});

describe("JwtAuthenticator: refused tokens", () => {
  it("refuses an expired token with TOKEN_EXPIRED", async () => {
    const err = await failure(authenticator(secretRing).verify(await sign("HS256", SECRET, { exp: nowSec - 1 })));
    expect(err.code).toBe("TOKEN_EXPIRED");
    expect(err.retriable).toBe(false);
  });

  it("refuses a token before its nbf", async () => {
    const err = await failure(authenticator(secretRing).verify(await sign("HS256", SECRET, { nbf: nowSec + 60 })));
    expect(err).toMatchObject({ code: "UNAUTHORIZED", context: { reason: "nbf" } });
  });

  it("refuses a wrong signature", async () => {
    const other = enc.encode("another-secret-another-secret-another-secret");
    expect((await failure(authenticator(secretRing).verify(await sign("HS256", other)))).context.reason).toBe("signature");
    const otherRsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    expect((await failure(authenticator(publicRing).verify(await sign("RS256", otherRsa.privateKey)))).context.reason).toBe("signature");
    // a valid token with one payload byte changed
    const token = await sign("HS256", SECRET);
    const [h, p, s] = token.split(".");
    const tampered = [h, Buffer.from(JSON.stringify({ sub: "admin", admin: true, exp: nowSec + 3600 })).toString("base64url"), s].join(".");
    expect((await failure(authenticator(secretRing).verify(tampered))).context.reason).toBe("signature");
  });

  it("refuses alg none, whatever keys are configured", async () => {
    const none = new UnsecuredJWT({ sub: "alice", admin: true, exp: nowSec + 60 }).encode();
    for (const ring of [secretRing, publicRing]) {
      const err = await failure(authenticator(ring).verify(none));
      expect(err).toMatchObject({ code: "UNAUTHORIZED", context: { reason: "algorithm" } });
    }
  });

  it("refuses HS/RS confusion: an HS256 token signed with the public key as secret", async () => {
    for (const key of [rsa.publicKey, ec256.publicKey, ed.publicKey]) {
      const forged = await sign("HS256", enc.encode(pem(key)), { admin: true });
      expect((await failure(authenticator(publicRing).verify(forged))).context.reason).toBe("algorithm");
    }
    // with a secret configured as well, the forged token is checked against the secret only
    const both = new JwtKeyring([...secretRing.keys, ...publicRing.keys]);
    const forged = await sign("HS256", enc.encode(pem(rsa.publicKey)), { admin: true });
    expect((await failure(authenticator(both).verify(forged))).context.reason).toBe("signature");
  });

  it("refuses an RS token where only a secret is configured, and an algorithm the key type does not allow", async () => {
    expect((await failure(authenticator(secretRing).verify(await sign("RS256", rsa.privateKey)))).context.reason).toBe("algorithm");
    const ecOnly = new JwtKeyring(publicKeysFromPem(pem(ec256.publicKey), "ec.pem"));
    expect((await failure(authenticator(ecOnly).verify(await sign("ES384", ec384.privateKey)))).context.reason).toBe("algorithm");
  });

  it("refuses malformed tokens and bad claims", async () => {
    const a = authenticator(secretRing);
    for (const bad of ["", "abc", "a.b.c", "x".repeat(20_000)]) expect((await failure(a.verify(bad))).code).toBe("UNAUTHORIZED");
    const auth = (claims: JWTPayload) => sign("HS256", SECRET, claims).then((token) => a.authenticate({ kind: "token", token, clientId: null }));
    expect((await failure(auth({ admin: "yes" }))).message).toContain('"admin"');
    expect((await failure(auth({ acl: [{ permission: "allow", action: "publish", topic: "t" }] }))).message).toContain("list of rules");
    expect((await failure(auth({ acl: { pub: ["a/#/b"] } }))).message).toContain("acl.pub");
    expect((await failure(auth({ acl: { publish: ["a"] } }))).message).toContain("unknown field");
    expect((await failure(auth({ sub: "" }))).message).toContain('"sub"');
    expect((await failure(auth({ groups: "billing" }))).message).toContain('"groups"');
  });
});

describe("JwtAuthenticator: claims become permissions", () => {
  it("grants what acl/groups/presence/admin say, with ${clientid} and ${username} placeholders", async () => {
    const token = await sign("HS256", SECRET, {
      acl: { pub: ["devices/${clientid}/#"], sub: ["alerts/#"], all: ["users/${username}/#"] },
      groups: ["billing"],
      presence: ["lobby"],
    });
    const { identity, policy } = await authenticator(secretRing).authenticate({ kind: "token", token, clientId: "dev-7" });
    const authz = new PolicyAuthorizer(() => policy!, { now: () => NOW });
    expect(authz.canPublish(identity, "devices/dev-7/temp")).toBe(true);
    expect(authz.canPublish(identity, "devices/dev-8/temp")).toBe(false);
    expect(authz.canPublish(identity, "users/alice/x")).toBe(true);
    expect(authz.canSubscribe(identity, "users/alice/#")).toBe(true);
    expect(authz.canSubscribe(identity, "alerts/+")).toBe(true);
    expect(authz.canPublish(identity, "alerts/x")).toBe(false);
    expect(authz.canJoinGroup(identity, "billing")).toBe(true);
    expect(authz.canPresence(identity, "lobby")).toBe(true);
    expect(authz.isAdmin(identity)).toBe(false);
  });

  it("a placeholder whose value is missing or holds a wildcard grants nothing", async () => {
    const token = await sign("HS256", SECRET, { acl: { pub: ["devices/${clientid}/#"] } });
    for (const clientId of [null, "#", "a/b", "+"]) {
      const { identity, policy } = await authenticator(secretRing).authenticate({ kind: "token", token, clientId });
      const authz = new PolicyAuthorizer(() => policy!, { now: () => NOW });
      expect(authz.canPublish(identity, "devices/x/y"), String(clientId)).toBe(false);
      expect(policy!.publish.allow).toEqual([]);
    }
  });
});

describe("JWT key files", () => {
  it("refuses a short secret, a private key, a weak RSA key and an empty PEM, naming the file", () => {
    expect(() => secretKeyFromFile(enc.encode("short\n"), "/etc/s")).toThrow(/\/etc\/s: .*5 bytes.*openssl rand/);
    const priv = rsa.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    expect(() => publicKeysFromPem(priv, "/k.pem")).toThrow(/\/k\.pem: block 1 is a private key/);
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 });
    expect(() => publicKeysFromPem(pem(weak.publicKey), "/w.pem")).toThrow(/1024 bits/);
    expect(() => publicKeysFromPem("hello", "/e.pem")).toThrow(/no PEM block/);
  });

  it("trims the secret's trailing newline (openssl rand -base64 48 > file)", () => {
    const a = secretKeyFromFile(enc.encode("0123456789abcdef0123456789abcdef\n"), "s");
    const b = secretKeyFromFile(enc.encode("0123456789abcdef0123456789abcdef"), "s");
    expect(a.thumbprint).toBe(b.thumbprint);
  });

  it("reads a JWKS, selects keys by kid and refuses private or symmetric keys", async () => {
    const jwk1 = { ...(await exportJWK(rsa.publicKey)), kid: "k1", use: "sig" };
    const jwk2 = { ...(await exportJWK(ec256.publicKey)), kid: "k2", alg: "ES256" };
    const encOnly = { ...(await exportJWK(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey)), kid: "e", use: "enc" };
    const ring = new JwtKeyring(keysFromJwks(JSON.stringify({ keys: [jwk1, jwk2, encOnly] }), "/jwks.json"));
    expect(ring.keys.map((k) => k.kid)).toEqual(["k1", "k2"]);
    expect(ring.candidates("RS256", "k1").map((k) => k.kid)).toEqual(["k1"]);
    expect(ring.candidates("RS256", "k2")).toEqual([]);
    expect(ring.candidates("ES256", undefined).map((k) => k.kid)).toEqual(["k2"]);
    const a = authenticator(ring);
    await expect(a.verify(await sign("RS256", rsa.privateKey, {}, { kid: "k1" }))).resolves.toBeDefined();
    await expect(a.verify(await sign("RS256", rsa.privateKey))).resolves.toBeDefined(); // no kid: every RS key is tried
    expect((await failure(a.verify(await sign("RS256", rsa.privateKey, {}, { kid: "nope" })))).context.reason).toBe("unknown_key");

    const privateJwk = await exportJWK(rsa.privateKey);
    expect(() => keysFromJwks(JSON.stringify({ keys: [privateJwk] }), "/j")).toThrow(/private key material/);
    expect(() => keysFromJwks(JSON.stringify({ keys: [{ kty: "oct", k: "AAAA" }] }), "/j")).toThrow(/symmetric/);
    expect(() => keysFromJwks("{", "/j")).toThrow(/\/j: not valid JSON/);
    expect(() => keysFromJwks("{}", "/j")).toThrow(/expected a JWKS/);
    expect(() => keysFromJwks(JSON.stringify({ keys: [{ ...jwk2, alg: "RS256" }] }), "/j")).toThrow(/does not fit the key type/);
  });
});
