import type { Identity } from "../../auth/index.ts";
import type { TributaryConfig } from "../../config/config.ts";
import type { AuthFailureReason, GatewayLabel, LimitName, Metrics } from "../../metrics/metrics.ts";
import { AuthBackoff } from "./auth-backoff.ts";
import { BucketTable } from "./bucket-table.ts";
import { ConnectionCounter, type ConnectionLease } from "./connection-counter.ts";
import { peerKey } from "./peer-address.ts";

/** Why a client was refused, for its protocol's answer (docs/security.md#limits has the wire codes). */
export interface LimitRefusal {
  limit: LimitName;
  /** Says which limit and which config field, for the client and the log. */
  message: string;
  /** When trying again could succeed, ms (HTTP Retry-After, rounded up to seconds). */
  retryAfterMs: number;
}

export type Admission = { ok: true; lease: ConnectionLease } | { ok: false; refusal: LimitRefusal };

/** Most keys (addresses, identities) each table remembers; beyond, least recently used first out. */
const MAX_ENTRIES = 100_000;

const NO_LEASE: ConnectionLease = { release() {} };

/** A token bucket per key at `rate` per second holding `burst`; null when the limit is off (rate 0). */
const buckets = (rate: number, burst: number): BucketTable | null => (rate > 0 ? new BucketTable(rate, burst, MAX_ENTRIES) : null);

/**
 * The node's limits tied to IP address and identity (`limits.*PerIp`, `*PerIdentity`,
 * `authFailuresBeforeBlock`; docs/security.md#limits), shared by every gateway of a node
 * so a client cannot double its share by speaking two protocols. Every answer is
 * synchronous; each refusal is counted (`tributary_limit_refusals_total{limit, gateway}`)
 * and each failed authentication too (`tributary_auth_failures_total{gateway, reason}`).
 *
 * What the gateways ask, in order:
 * 1. `admitPeer(ip)` when a connection arrives (WebSocket upgrade, MQTT CONNECT): the
 *    address is not blocked for failed authentications, within its connect rate and its
 *    connection count. The lease is released when the connection closes (or found dead
 *    through `alive`).
 * 2. `authFailed(ip)` when its credentials are refused: how long to delay the refusal.
 * 3. `admitIdentity(identity)` once authenticated: within the identity's connection count.
 * 4. `publish(identity, bytes)` per message: within the identity's message and byte rates.
 *
 * And the HTTP router, per request: `httpRequest(ip)`, within the address's request rate.
 *
 * Per-identity limits apply to authenticated identities (token `sub`, password-file
 * user): anonymous clients and open mode are limited per address only.
 * All limits are off at 0 (the default), and then cost one comparison.
 */
export class ClientLimits {
  readonly #limits: TributaryConfig["limits"];
  readonly #metrics: Metrics;
  readonly #peers = new ConnectionCounter();
  readonly #identities = new ConnectionCounter();
  readonly #connectRate: BucketTable | null;
  readonly #httpRate: BucketTable | null;
  readonly #publishRate: BucketTable | null;
  readonly #publishBytes: BucketTable | null;
  readonly #backoff: AuthBackoff | null;
  /** Any publish limit configured (the hot path's one check). */
  readonly limitsPublish: boolean;
  /** `limits.httpRequestRatePerIp` configured (the HTTP router's one check per request). */
  readonly limitsHttpRequests: boolean;
  readonly #now: () => number;

  constructor(limits: TributaryConfig["limits"], metrics: Metrics, now: () => number = Date.now) {
    this.#limits = limits;
    this.#metrics = metrics;
    this.#now = now;
    this.#connectRate = buckets(limits.connectRatePerIp, limits.connectBurstPerIp || limits.connectRatePerIp);
    this.#httpRate = buckets(limits.httpRequestRatePerIp, limits.httpRequestBurstPerIp || limits.httpRequestRatePerIp);
    this.#publishRate = buckets(limits.publishRatePerIdentity, limits.publishRatePerIdentity);
    this.#publishBytes = buckets(limits.publishBytesPerIdentity, Math.max(limits.publishBytesPerIdentity, limits.maxRecordBytes));
    this.#backoff = limits.authFailuresBeforeBlock > 0 ? new AuthBackoff({ maxFailures: limits.authFailuresBeforeBlock, blockMs: limits.authBlockMs, maxEntries: MAX_ENTRIES }) : null;
    this.limitsPublish = this.#publishRate !== null || this.#publishBytes !== null;
    this.limitsHttpRequests = this.#httpRate !== null;
  }

  /**
   * A connection from `address` (any form: `::ffff:a.b.c.d`, `host:port`, IPv6) arrives.
   * Checked in this order: blocked for failed authentications, connect rate, connections.
   */
  admitPeer(address: string, gateway: GatewayLabel, alive: () => boolean): Admission {
    const l = this.#limits;
    if (this.#backoff === null && this.#connectRate === null && l.maxConnectionsPerIp === 0) return { ok: true, lease: NO_LEASE };
    const ip = peerKey(address);
    const now = this.#now();
    const blocked = this.#backoff?.blockedFor(ip, now) ?? 0;
    if (blocked > 0) {
      return this.#refuse("auth_blocked", gateway, `too many failed authentications from ${ip}: refused for ${Math.ceil(blocked / 1000)} s more (limits.authFailuresBeforeBlock, limits.authBlockMs)`, blocked);
    }
    const wait = this.#connectRate?.take(ip, 1, now) ?? 0;
    if (wait > 0) return this.#refuse("connect_rate_per_ip", gateway, `too many new connections from ${ip}: at most ${l.connectRatePerIp} per second (limits.connectRatePerIp)`, wait);
    if (l.maxConnectionsPerIp === 0) return { ok: true, lease: NO_LEASE };
    const lease = this.#peers.tryAcquire(ip, l.maxConnectionsPerIp, alive);
    if (lease === null) return this.#refuse("connections_per_ip", gateway, `too many connections from ${ip}: at most ${l.maxConnectionsPerIp} (limits.maxConnectionsPerIp)`, 5000);
    return { ok: true, lease };
  }

  /** Open connections counted for `address` (0 when maxConnectionsPerIp is off). */
  connectionsFrom(address: string): number {
    return this.#peers.count(peerKey(address));
  }

  /** Is `address` blocked for failed authentications (ms left, 0 = no)? Not counted as a refusal. */
  blockedFor(address: string): number {
    return this.#backoff?.blockedFor(peerKey(address), this.#now()) ?? 0;
  }

  /**
   * An authentication from `address` failed with `err` (UNAUTHORIZED / TOKEN_EXPIRED):
   * counted, and, when credentials were given, fed to the backoff. Returns how long to
   * delay the refusal (0: answer now).
   */
  authFailed(address: string | null, gateway: GatewayLabel, err: { code: string; context: Readonly<Record<string, unknown>> }): number {
    const reason = authFailureReason(err);
    this.#metrics.authFailures.inc({ gateway, reason });
    if (this.#backoff === null || address === null || reason === "missing") return 0;
    return this.#backoff.failed(peerKey(address), this.#now()).delayMs;
  }

  /** One more connection of `identity` (null / anonymous: not limited). */
  admitIdentity(identity: Identity | null, gateway: GatewayLabel, alive: () => boolean): Admission {
    const max = this.#limits.maxConnectionsPerIdentity;
    if (max === 0 || identity === null || identity.kind === "anonymous") return { ok: true, lease: NO_LEASE };
    const key = identityKey(identity);
    const lease = this.#identities.tryAcquire(key, max, alive);
    if (lease === null) return this.#refuse("connections_per_identity", gateway, `too many connections of ${key}: at most ${max} (limits.maxConnectionsPerIdentity)`, 5000);
    return { ok: true, lease };
  }

  /**
   * `identity` publishes `messages` messages (an HTTP batch: several) of `bytes` payload
   * bytes in all: null when within its rates (the tokens are taken), else the refusal.
   */
  publish(identity: Identity | null, bytes: number, gateway: GatewayLabel, messages = 1): LimitRefusal | null {
    if (!this.limitsPublish || identity === null || identity.kind === "anonymous") return null;
    const key = identityKey(identity);
    const now = this.#now();
    const rate = this.#publishRate;
    if (rate !== null) {
      const wait = rate.take(key, messages, now);
      if (wait > 0) {
        return this.#refusal("publish_rate_per_identity", gateway, `publish rate of ${key} exceeded: at most ${this.#limits.publishRatePerIdentity} messages per second (limits.publishRatePerIdentity); retry later`, wait);
      }
    }
    const volume = this.#publishBytes;
    if (volume !== null && bytes > 0) {
      const wait = volume.take(key, bytes, now);
      if (wait > 0) {
        return this.#refusal("publish_bytes_per_identity", gateway, `publish volume of ${key} exceeded: at most ${this.#limits.publishBytesPerIdentity} bytes per second (limits.publishBytesPerIdentity); retry later`, wait);
      }
    }
    return null;
  }

  /**
   * An HTTP request from `address` (any form, as `admitPeer`): null when within the
   * address's request rate (a token is taken), else the refusal (counted).
   */
  httpRequest(address: string, gateway: GatewayLabel = "http"): LimitRefusal | null {
    const rate = this.#httpRate;
    if (rate === null) return null;
    const ip = peerKey(address);
    const wait = rate.take(ip, 1, this.#now());
    if (wait === 0) return null;
    return this.#refusal("http_request_rate_per_ip", gateway, `too many HTTP requests from ${ip}: at most ${this.#limits.httpRequestRatePerIp} per second (limits.httpRequestRatePerIp); retry later`, wait);
  }

  #refuse(limit: LimitName, gateway: GatewayLabel, message: string, retryAfterMs: number): Admission {
    return { ok: false, refusal: this.#refusal(limit, gateway, message, retryAfterMs) };
  }

  #refusal(limit: LimitName, gateway: GatewayLabel, message: string, retryAfterMs: number): LimitRefusal {
    this.#metrics.limitRefusals.inc({ limit, gateway });
    return { limit, message, retryAfterMs };
  }
}

/** The bounded `reason` label of a failed authentication. */
export function authFailureReason(err: { code: string; context: Readonly<Record<string, unknown>> }): AuthFailureReason {
  if (err.code === "TOKEN_EXPIRED") return "expired";
  const reason = err.context.reason;
  if (reason === "missing") return "missing";
  if (reason === "password") return "bad_password";
  return "bad_token";
}

function identityKey(identity: Identity): string {
  return `${identity.kind}:${identity.subject ?? ""}`;
}

/** Seconds for a Retry-After header (at least 1). */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
