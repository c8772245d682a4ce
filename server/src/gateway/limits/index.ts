/**
 * Limits tied to IP address and identity (docs/security.md#limits): the gateways' entry
 * point. One file per job:
 *
 *     ClientLimits (client-limits.ts) ── the questions gateways ask, metrics
 *       ├── ConnectionCounter  connections per IP / per identity (leases)
 *       ├── BucketTable        connect rate and HTTP request rate per IP, publish rate and bytes per identity
 *       │     └── TokenBucket
 *       ├── AuthBackoff        failed authentications per IP: delay, then block
 *       └── peerKey            the per-IP key of a peer address (IPv6: its /64)
 */
import type { AuthService } from "../../auth/index.ts";
import type { Broker } from "../../broker/broker.ts";
import type { TributaryConfig } from "../../config/config.ts";
import { ClientLimits } from "./client-limits.ts";

export { ClientLimits, authFailureReason, retryAfterSeconds, type Admission, type LimitRefusal } from "./client-limits.ts";
export type { ConnectionLease } from "./connection-counter.ts";
export { peerKey } from "./peer-address.ts";

/** RFC 6455 close code 1013 "Try Again Later": the SDK reconnects with backoff (codes below 4500 are not final). */
export const WS_CLOSE_TRY_AGAIN_LATER = 1013;

const byBroker = new WeakMap<Broker, ClientLimits>();
const byAuth = new WeakMap<AuthService, ClientLimits>();

/**
 * The node's one ClientLimits: every gateway of a node shares its broker, so the first
 * gateway to ask creates it and the others get the same (a client's WebSocket and MQTT
 * connections count together). Stands in for a `GatewayContext.limits` field the node
 * would build itself; a gateway mounted alone (unit tests) gets its own.
 */
export function clientLimitsFor(broker: Broker, config: TributaryConfig, auth?: AuthService): ClientLimits {
  let limits = byBroker.get(broker);
  if (!limits) {
    limits = new ClientLimits(config.limits, broker.metrics);
    byBroker.set(broker, limits);
  }
  if (auth) byAuth.set(auth, limits);
  return limits;
}

/** The ClientLimits of the node whose auth layer is `auth` (once a gateway asked clientLimitsFor); for counting failures where only the AuthService is at hand. */
export function clientLimitsOfAuth(auth: AuthService): ClientLimits | undefined {
  return byAuth.get(auth);
}
