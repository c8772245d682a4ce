/**
 * JWT verification keys from files: an HMAC secret, PEM public keys, or a JWKS document.
 * Every key is bound at load time to the algorithms its type allows, and a token is only
 * ever checked with keys bound to its `alg`: an HS256 token is never checked against a
 * public key (the "HS/RS confusion" where the public PEM is used as an HMAC secret), an
 * RS256 token never against a secret, and `alg: none` has no key at all.
 *
 * | key                        | algorithms                |
 * |----------------------------|---------------------------|
 * | secret (≥ 32 bytes)        | HS256, HS384, HS512       |
 * | RSA public (≥ 2048 bits)   | RS256/384/512, PS256/384/512 |
 * | EC P-256 / P-384 / P-521   | ES256 / ES384 / ES512     |
 * | Ed25519                    | EdDSA, Ed25519            |
 *
 * A JWK's own `alg`, `use` (`sig` only) and `key_ops` (`verify`) narrow this further;
 * private or symmetric keys in a JWKS are refused (a JWKS is public material).
 */
import { X509Certificate, createHash, createPublicKey, createSecretKey, type KeyObject } from "node:crypto";
import { TributaryError } from "../errors.ts";

export interface VerificationKey {
  /** A secret KeyObject for HS*, a public one otherwise. */
  readonly key: KeyObject;
  readonly algorithms: ReadonlySet<string>;
  /** The JWK `kid`, when the key came from a JWKS that names it. */
  readonly kid: string | null;
  /** Stable fingerprint (SHA-256 of the key material): identities remember which key proved them. */
  readonly thumbprint: string;
  /** Where it came from, for messages: `JWKS file /etc/jwks.json (kid "2024-06")`. */
  readonly origin: string;
}

export const HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"] as const;
export const MIN_SECRET_BYTES = 32;
const MIN_RSA_BITS = 2048;
/** Most keys tried for one token without a `kid` (each try is one signature check). */
const MAX_CANDIDATES = 16;

function badFile(file: string, message: string): TributaryError {
  return new TributaryError("INVALID_CONFIG", `${file}: ${message}`, { file });
}

/** The secret is the file's bytes without trailing whitespace/newlines (so `openssl rand -base64 48 > f` works). */
export function secretKeyFromFile(bytes: Uint8Array, file: string): VerificationKey {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d || bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)) end--;
  const secret = bytes.subarray(0, end);
  if (secret.length < MIN_SECRET_BYTES) {
    throw badFile(file, `the JWT secret has ${secret.length} bytes; HS256/384/512 need at least ${MIN_SECRET_BYTES} (create one with: openssl rand -base64 48 > ${file})`);
  }
  return {
    key: createSecretKey(secret),
    algorithms: new Set(HMAC_ALGORITHMS),
    kid: null,
    thumbprint: "oct:" + createHash("sha256").update(secret).digest("base64url"),
    origin: `secret file ${file}`,
  };
}

/** The algorithms a public key may verify; throws a message for unsupported or weak keys. */
function algorithmsOf(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss": {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) throw new Error(`an RSA key of ${bits} bits; at least ${MIN_RSA_BITS} are needed`);
      const pss = ["PS256", "PS384", "PS512"];
      return key.asymmetricKeyType === "rsa" ? ["RS256", "RS384", "RS512", ...pss] : pss;
    }
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const alg = curve === "prime256v1" ? "ES256" : curve === "secp384r1" ? "ES384" : curve === "secp521r1" ? "ES512" : null;
      if (alg === null) throw new Error(`an EC key on curve ${curve ?? "?"}; P-256, P-384 and P-521 are supported`);
      return [alg];
    }
    case "ed25519":
      return ["EdDSA", "Ed25519"];
    default:
      throw new Error(`a ${key.asymmetricKeyType ?? "unknown"} key; RSA, EC (P-256/384/521) and Ed25519 are supported`);
  }
}

function publicKey(key: KeyObject, origin: string, kid: string | null, only?: string): VerificationKey {
  let algorithms = algorithmsOf(key);
  if (only !== undefined) {
    if (!algorithms.includes(only)) throw new Error(`its "alg" ${only} does not fit the key type (${algorithms.join(", ")})`);
    algorithms = [only];
  }
  const der = key.export({ type: "spki", format: "der" });
  return { key, algorithms: new Set(algorithms), kid, thumbprint: "spki:" + createHash("sha256").update(der).digest("base64url"), origin };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** One or more PEM blocks (`PUBLIC KEY`, `RSA PUBLIC KEY`, `CERTIFICATE`): several allow a rotation with old and new keys side by side. */
export function publicKeysFromPem(text: string, file: string): VerificationKey[] {
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw badFile(file, "no PEM block found; expected -----BEGIN PUBLIC KEY----- (export one with: openssl pkey -in private.pem -pubout)");
  return blocks.map((m, i) => {
    const label = m[1]!;
    const origin = `public key file ${file}${blocks.length > 1 ? ` (block ${i + 1})` : ""}`;
    if (label.includes("PRIVATE")) throw badFile(file, `block ${i + 1} is a private key; give only the public key (openssl pkey -in private.pem -pubout)`);
    try {
      const key = label === "CERTIFICATE" ? new X509Certificate(m[0]).publicKey : createPublicKey(m[0]);
      return publicKey(key, origin, null);
    } catch (err) {
      throw badFile(file, `block ${i + 1} (${label}) cannot be used: ${(err as Error).message}`);
    }
  });
}

const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k"];

/** A JWKS document `{"keys": [...]}`; keys for encryption only (`use: "enc"`) are skipped. */
export function keysFromJwks(text: string, file: string): VerificationKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw badFile(file, `not valid JSON: ${(err as Error).message}`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw badFile(file, 'expected a JWKS document: {"keys": [ {...}, ... ]}');
  const out: VerificationKey[] = [];
  keys.forEach((jwk: unknown, i) => {
    if (jwk === null || typeof jwk !== "object") throw badFile(file, `keys[${i}] is not an object`);
    const j = jwk as Record<string, unknown>;
    const kid = typeof j.kid === "string" ? j.kid : null;
    const name = kid === null ? `keys[${i}]` : `keys[${i}] (kid "${kid}")`;
    if (j.kty === "oct") throw badFile(file, `${name} is a symmetric (oct) key; a JWKS holds public keys (put an HMAC secret in auth.jwt.secretFile)`);
    const secret = PRIVATE_JWK_MEMBERS.filter((m) => m in j);
    if (secret.length > 0) throw badFile(file, `${name} contains private key material (${secret.join(", ")}); publish only the public key`);
    if (j.use !== undefined && j.use !== "sig") return;
    if (Array.isArray(j.key_ops) && !j.key_ops.includes("verify")) return;
    try {
      const key = createPublicKey({ key: j as import("node:crypto").JsonWebKey, format: "jwk" });
      out.push(publicKey(key, `JWKS file ${file} ${name}`, kid, typeof j.alg === "string" ? j.alg : undefined));
    } catch (err) {
      throw badFile(file, `${name} cannot be used: ${(err as Error).message}`);
    }
  });
  if (out.length === 0) throw badFile(file, "the JWKS has no signature verification key");
  return out;
}

/** The keys a node verifies tokens with, from every configured source. Immutable: a reload builds a new one. */
export class JwtKeyring {
  readonly keys: readonly VerificationKey[];
  /** Every algorithm some key accepts; a token with any other `alg` (including `none`) is refused before any key is tried. */
  readonly algorithms: ReadonlySet<string>;
  readonly #thumbprints: ReadonlySet<string>;

  constructor(keys: readonly VerificationKey[]) {
    this.keys = keys;
    this.algorithms = new Set(keys.flatMap((k) => [...k.algorithms]));
    this.#thumbprints = new Set(keys.map((k) => k.thumbprint));
  }

  /** Keys bound to `alg`; with a `kid`, only keys with that kid or none (PEM, secret). */
  candidates(alg: string, kid: string | undefined): VerificationKey[] {
    const out: VerificationKey[] = [];
    for (const k of this.keys) {
      if (!k.algorithms.has(alg)) continue;
      if (kid !== undefined && k.kid !== null && k.kid !== kid) continue;
      out.push(k);
      if (out.length === MAX_CANDIDATES) break;
    }
    return out;
  }

  /** Is the key with this thumbprint still trusted (after a reload)? */
  has(thumbprint: string): boolean {
    return this.#thumbprints.has(thumbprint);
  }
}
