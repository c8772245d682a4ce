/**
 * Who a connection or request is, once authenticated. Plain, frozen data the gateways keep
 * per connection (or per HTTP request) and hand back to the authorizer with every
 * question. Identities are made only by AuthService (which remembers how each was
 * proved, to revoke it on a reload); an identity it did not make is denied everything.
 */
export type IdentityKind =
  /** Proved by a JWT (WebSocket `hello` token, HTTP `Authorization: Bearer`, MQTT password). */
  | "jwt"
  /** Proved by an MQTT user name and password checked against the password file. */
  | "password"
  /** No credentials, allowed by configuration (see docs/security.md "Anonymous clients"). */
  | "anonymous";

export interface Identity {
  readonly kind: IdentityKind;
  /** JWT `sub` or password-file user name; null when anonymous. For logs and presence (`user`). */
  readonly subject: string | null;
  /** The client id given when authenticating (MQTT client id, SDK client id), or null. ACL `%c` and JWT `${clientid}` use it. */
  readonly clientId: string | null;
  /**
   * When this identity stops being valid, ms since the epoch (JWT `exp`), or null for
   * never. The authorizer denies everything from this instant; a gateway should close
   * the connection then (schedule a timer with AuthService.msUntilExpiry).
   */
  readonly expiresAt: number | null;
}

export function createIdentity(fields: Identity): Identity {
  return Object.freeze({ kind: fields.kind, subject: fields.subject, clientId: fields.clientId, expiresAt: fields.expiresAt });
}

/** Short description for logs and error messages: `jwt:alice`, `password:bob`, `anonymous`. */
export function describeIdentity(identity: Identity): string {
  return identity.subject === null ? identity.kind : `${identity.kind}:${identity.subject}`;
}
