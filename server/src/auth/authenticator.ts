import type { Identity } from "./identity.ts";
import type { Policy } from "./policy.ts";

/** What a client presents. Gateways build these from their protocol (see auth-service.ts). */
export type Credentials =
  | { readonly kind: "token"; readonly token: string; readonly clientId: string | null }
  | { readonly kind: "password"; readonly username: string; readonly password: string | Uint8Array; readonly clientId: string | null };

/** A proved identity, with what it is allowed (or null: from the ACL file) and the proof to re-check on reload. */
export interface Authenticated {
  readonly identity: Identity;
  /** The identity's own policy (JWT claims); null when it comes from the ACL file by user name. */
  readonly policy: Policy | null;
  /**
   * What proved it, re-checked on every reload by `isCurrent`: the verifying key's
   * thumbprint for a JWT, the stored hash for a password-file user.
   */
  readonly proof: string;
}

/**
 * One way of proving who a client is (JWT, password file). Guarantees:
 * - `authenticate` resolves with the identity, or rejects with a TributaryError
 *   `UNAUTHORIZED` (bad or unknown credentials; the message says what, never the secret)
 *   or `TOKEN_EXPIRED`; never with anything else for bad input.
 * - Failures take about as long whatever was wrong (unknown user vs wrong password), so
 *   timing does not tell which user names exist.
 * - `isCurrent` is synchronous and cheap: after a reload it says whether the proof still
 *   holds (key still trusted, password unchanged).
 */
export interface Authenticator {
  authenticate(credentials: Credentials): Promise<Authenticated>;
  isCurrent(authenticated: Authenticated): boolean;
}
