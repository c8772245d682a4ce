/**
 * The HTTP API's side of the auth layer (docs/security.md, docs/http-api.md
 * "Authentication"): every request proves its identity with `Authorization: Bearer <jwt>`
 * (HttpRouter authenticates before the handler runs; 401 with `WWW-Authenticate: Bearer`
 * when missing or invalid and anonymous clients are not allowed), and each route asks the
 * Authorizer before acting (403 FORBIDDEN). `/healthz`, `/readyz` and `/metrics` stay open
 * (probes and scrapers carry no tokens; they reveal no records).
 */
import type { AuthService, Authorizer, ForbiddenAction, Identity } from "../../auth/index.ts";
import { forbidden } from "../../auth/index.ts";
import { isTributaryError, TributaryError } from "../../errors.ts";
import { clientLimitsOfAuth } from "../limits/index.ts";

/**
 * The identity for a request's `Authorization` header: synchronous (no token to verify:
 * no auth layer → null, open mode, or no header) or a promise. Throws / rejects
 * UNAUTHORIZED or TOKEN_EXPIRED; QUEUE_FULL (429, `retryAfterMs` in its context) while
 * `peer` is blocked for failed authentications (docs/security.md#limits), the same
 * per-address backoff as MQTT and the WebSocket upgrade: refusals are delayed, then the
 * address is blocked for a while.
 */
export function authenticateRequest(auth: AuthService | undefined, authorization: string, peer: string | null = null): Identity | null | Promise<Identity> {
  if (!auth) return null;
  if (auth.mode === "open") return auth.anonymous();
  const limits = clientLimitsOfAuth(auth);
  const blocked = peer !== null && limits ? limits.blockedFor(peer) : 0;
  if (blocked > 0) {
    throw new TributaryError("QUEUE_FULL", `too many failed authentications from this address: try again in ${Math.ceil(blocked / 1000)} s`, { retryAfterMs: blocked });
  }
  try {
    if (authorization === "") return auth.anonymous();
  } catch (err) {
    countFailure(auth, err, null); // no credentials: counted, never backed off
    throw err;
  }
  return auth.authenticateHttp(authorization).catch(async (err: unknown) => {
    const delayMs = countFailure(auth, err, peer);
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    throw err;
  });
}

/** Counts a refused request in `tributary_auth_failures_total{gateway="http"}` and feeds the peer's backoff; returns the delay to answer with. */
function countFailure(auth: AuthService, err: unknown, peer: string | null): number {
  if (!isTributaryError(err)) return 0;
  return clientLimitsOfAuth(auth)?.authFailed(peer, "http", err) ?? 0;
}

/** Throws FORBIDDEN unless `identity` passes `check` (no identity = no auth layer: allowed). */
export function authorize(
  auth: AuthService | undefined,
  identity: Identity | null,
  check: (authorizer: Authorizer, identity: Identity) => boolean,
  action: ForbiddenAction,
  target: string | null = null,
): void {
  if (!auth || identity === null) return;
  if (!check(auth.authorizer, identity)) throw forbidden(identity, action, target);
}

/** May `identity` read internal topics? Only an admin proved by credentials (broker/internal-topics.ts). */
export function isAdminReader(auth: AuthService | undefined, identity: Identity | null): boolean {
  return auth !== undefined && identity !== null && identity.kind !== "anonymous" && auth.authorizer.isAdmin(identity);
}

/** The `WWW-Authenticate` value for a 401 (RFC 6750 §3): bare when no credentials were sent, `invalid_token` otherwise. */
export function wwwAuthenticate(err: TributaryError, sentCredentials: boolean): string {
  if (!sentCredentials) return 'Bearer realm="tributary"';
  const description = err.message.replace(/["\\]/g, "'").slice(0, 200);
  return `Bearer realm="tributary", error="invalid_token", error_description="${description}"`;
}
