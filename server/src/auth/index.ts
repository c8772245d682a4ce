/**
 * The auth layer's public entry point: what gateways, the broker and the CLI import.
 * Everything else in server/src/auth is internal (parsers, caches, key loading) and may
 * change without notice. Layering: auth sits beside the broker, below the gateways; it
 * does no storage I/O (it reads only its own configuration files).
 *
 *     AuthService ── authenticate* ──▶ Identity  (JwtAuthenticator | PasswordFileAuthenticator | anonymous)
 *         └── authorizer: Authorizer ── can*(identity, …) ──▶ boolean  (PolicyAuthorizer + DecisionCache)
 *
 * docs/security.md "For gateway authors" shows the calls per protocol.
 */
export { AuthService, type AuthChange, type AuthConfig, type AuthFileKind, type AuthMode, type AuthServiceOptions } from "./auth-service.ts";
export type { Authorizer } from "./authorizer.ts";
export type { Identity, IdentityKind } from "./identity.ts";
export { describeIdentity } from "./identity.ts";
export { MQTT_AUTH_REASON, connackCodeFor, disconnectReasonFor, forbidden, type ForbiddenAction } from "./auth-errors.ts";
export { checkExposure, isLoopbackHost, type ExposureVerdict } from "./exposure.ts";
export { isInternalTopic } from "./topic-space.ts";
export { buildClaims, type ClaimOptions, type TributaryClaims } from "./jwt-claims.ts";
