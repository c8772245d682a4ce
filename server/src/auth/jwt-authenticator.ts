import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from "jose";
import { TributaryError } from "../errors.ts";
import type { Authenticated, Authenticator, Credentials } from "./authenticator.ts";
import { createIdentity } from "./identity.ts";
import { policyFromClaims } from "./jwt-claims.ts";
import type { JwtKeyring } from "./jwt-keys.ts";

export interface JwtAuthenticatorOptions {
  /** Required `aud` (one of the token's audiences); null = not checked. */
  audience: string | null;
  /** Required `iss`; null = not checked. */
  issuer: string | null;
  /** Clock, ms since the epoch (tests). */
  now?: () => number;
}

/** Longest token accepted (a header of a few hundred bytes plus claims). */
export const MAX_TOKEN_CHARS = 16 * 1024;

function unauthorized(message: string, reason: string, cause?: unknown): TributaryError {
  return new TributaryError("UNAUTHORIZED", message, { reason }, cause === undefined ? undefined : { cause });
}

/**
 * Verifies JWTs with `jose` against the current JwtKeyring (read through `keyring()` on
 * each call, so a reload takes effect for the next token):
 * - the header's `alg` must be one some configured key is bound to (so `none`, and HS*
 *   without a secret, are refused before any key is tried), and each candidate key is
 *   tried with that one algorithm only;
 * - signature first, then `exp` (TOKEN_EXPIRED), `nbf`, `aud`, `iss` (UNAUTHORIZED);
 * - then the claims are compiled into the identity's Policy (jwt-claims.ts).
 */
export class JwtAuthenticator implements Authenticator {
  readonly #keyring: () => JwtKeyring;
  readonly #options: JwtAuthenticatorOptions;

  constructor(keyring: () => JwtKeyring, options: JwtAuthenticatorOptions) {
    this.#keyring = keyring;
    this.#options = options;
  }

  async authenticate(credentials: Credentials): Promise<Authenticated> {
    const token = credentials.kind === "token" ? credentials.token : typeof credentials.password === "string" ? credentials.password : new TextDecoder().decode(credentials.password);
    const { payload, thumbprint } = await this.verify(token);
    const policy = policyFromClaims(payload, credentials.clientId);
    const identity = createIdentity({
      kind: "jwt",
      subject: payload.sub!,
      clientId: credentials.clientId,
      expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : null,
    });
    return { identity, policy, proof: thumbprint };
  }

  isCurrent(authenticated: Authenticated): boolean {
    return this.#keyring().has(authenticated.proof);
  }

  /** Verifies signature and standard claims; resolves with the payload and the thumbprint of the key that verified it. */
  async verify(token: string): Promise<{ payload: JWTPayload; thumbprint: string }> {
    if (typeof token !== "string" || token.length === 0) throw unauthorized("no token given", "missing");
    if (token.length > MAX_TOKEN_CHARS) throw unauthorized(`token longer than ${MAX_TOKEN_CHARS} characters`, "malformed");
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch (err) {
      throw unauthorized("not a JWT (expected header.payload.signature in base64url)", "malformed", err);
    }
    const keyring = this.#keyring();
    const alg = header.alg;
    if (typeof alg !== "string" || !keyring.algorithms.has(alg)) {
      throw unauthorized(`token algorithm "${String(alg)}" is not accepted here (accepted: ${[...keyring.algorithms].join(", ") || "none configured"})`, "algorithm");
    }
    const candidates = keyring.candidates(alg, typeof header.kid === "string" ? header.kid : undefined);
    if (candidates.length === 0) throw unauthorized(`no configured key matches the token (alg ${alg}, kid ${JSON.stringify(header.kid ?? null)})`, "unknown_key");
    const now = this.#options.now;
    for (const candidate of candidates) {
      try {
        const { payload } = await jwtVerify(token, candidate.key, {
          algorithms: [alg],
          audience: this.#options.audience ?? undefined,
          issuer: this.#options.issuer ?? undefined,
          currentDate: now ? new Date(now()) : undefined,
        });
        return { payload, thumbprint: candidate.thumbprint };
      } catch (err) {
        if (err instanceof errors.JWSSignatureVerificationFailed) continue;
        throw mapJoseError(err);
      }
    }
    throw unauthorized("token signature does not verify with any configured key", "signature");
  }
}

function mapJoseError(err: unknown): TributaryError {
  if (err instanceof errors.JWTExpired) {
    const exp = (err.payload as JWTPayload).exp;
    return new TributaryError("TOKEN_EXPIRED", `token expired${typeof exp === "number" ? ` at ${new Date(exp * 1000).toISOString()}` : ""}`, { reason: "expired" }, { cause: err });
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    const what =
      err.claim === "nbf" ? "token is not valid yet (nbf is in the future)"
      : err.claim === "aud" ? "token audience (aud) is not the one this node requires"
      : err.claim === "iss" ? "token issuer (iss) is not the one this node requires"
      : `token claim "${err.claim}" is invalid (${err.reason})`;
    return unauthorized(what, err.claim, err);
  }
  if (err instanceof errors.JOSEError) return unauthorized(`invalid token: ${err.message}`, "malformed", err);
  if (err instanceof TributaryError) return err;
  return unauthorized("invalid token", "malformed", err);
}
