/**
 * The WebSocket gateway's side of the auth layer (docs/security.md "For gateway authors"):
 *
 * - `hello`: the token (if any) proves the connection's identity once, for its lifetime.
 *   No token: the anonymous identity, if the node allows it. Failures are an `error`
 *   frame (UNAUTHORIZED / TOKEN_EXPIRED) and a close (4501 / 4003).
 * - Every op asks `allowed` (the Authorizer: synchronous, cached) before acting.
 * - Expiry: a timer per connection closes it with a `disconnect` TOKEN_EXPIRED (reconnect:
 *   true, close 4003) when the identity expires; a client refreshes its token and
 *   reconnects (SDK `getToken()`).
 * - Reloads (`auth.on("change")`): connections whose identity `validate()` refuses are
 *   closed; subscriptions (group members included) and presence watches no longer
 *   permitted are ended with a FORBIDDEN `error` frame.
 *
 * - Limits (docs/security.md#limits): an identity over `limits.maxConnectionsPerIdentity`
 *   is refused at `hello` with an `error` QUEUE_FULL frame and close 1013 (try again later);
 *   failed authentications are counted (`tributary_auth_failures_total{gateway="ws"}`).
 *
 * Without an AuthService (a gateway mounted without a node) every check passes: open mode.
 */
import { CLOSE_CODES } from "@tributary/client/protocol";
import type { AuthService, Identity } from "../../auth/index.ts";
import type { Authorizer } from "../../auth/index.ts";
import { isTributaryError, type TributaryError } from "../../errors.ts";
import type { Logger } from "../../logger.ts";
import { WS_CLOSE_TRY_AGAIN_LATER, type ClientLimits, type ConnectionLease } from "../limits/index.ts";
import { GroupSubscription } from "./group-subscription.ts";
import type { WsPresenceHub } from "./presence-hub.ts";
import type { WsConnection } from "./ws-connection.ts";

/** Longest timer Node accepts (~24.8 days); longer expiries are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class WsAuth {
  readonly service: AuthService | undefined;
  readonly #connections: ReadonlySet<WsConnection>;
  readonly #presence: WsPresenceHub;
  readonly #log: Logger;
  readonly #timers = new Map<WsConnection, NodeJS.Timeout>();
  readonly #unlisten: () => void;
  /** The node's limits tied to IP and identity (publish rates are asked by handlers/publish.ts); absent in gateway unit tests. */
  readonly limits: ClientLimits | undefined;
  readonly #leases = new Map<WsConnection, ConnectionLease>();

  constructor(service: AuthService | undefined, connections: ReadonlySet<WsConnection>, presence: WsPresenceHub, log: Logger, limits?: ClientLimits) {
    this.service = service;
    this.limits = limits;
    this.#connections = connections;
    this.#presence = presence;
    this.#log = log;
    this.#unlisten = service ? service.on("change", (change) => {
      if (change.error === null) this.recheckAll();
    }) : () => undefined;
  }

  /**
   * The identity for a `hello`: synchronous when no token has to be verified (open mode,
   * no token), else a promise. Throws / rejects with UNAUTHORIZED or TOKEN_EXPIRED.
   * Undefined: no auth layer (every check passes). A refused token counts against the
   * client's `address` like a refused MQTT password or HTTP Bearer token (docs/security.md
   * "Limits"): the rejection is delayed, and the address is blocked after
   * `limits.authFailuresBeforeBlock` failures (then its upgrades get 429).
   */
  authenticate(token: string | undefined, clientId: string, address: string | null = null): Identity | Promise<Identity> | undefined {
    const auth = this.service;
    if (!auth) return undefined;
    const limits = this.limits;
    try {
      if (auth.mode === "open" || token === undefined || token === "") return auth.anonymous(clientId);
    } catch (err) {
      if (limits && isTributaryError(err)) limits.authFailed(null, "ws", err);
      throw err;
    }
    const identity = auth.authenticateToken(token, clientId);
    if (!limits) return identity;
    return identity.catch(async (err: unknown) => {
      if (isTributaryError(err)) {
        const delayMs = limits.authFailed(address, "ws", err);
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
      throw err;
    });
  }

  /** Does the connection's identity pass `check`? True without an auth layer. */
  allowed(conn: WsConnection, check: (authorizer: Authorizer, identity: Identity) => boolean): boolean {
    if (!this.service || !conn.identity) return this.service === undefined;
    return check(this.service.authorizer, conn.identity);
  }

  /** May the connection read internal topics? Only an admin proved by credentials (not open mode's anonymous admin): broker/internal-topics.ts. */
  isAdminReader(conn: WsConnection): boolean {
    const id = conn.identity;
    return this.service !== undefined && id !== null && id.kind !== "anonymous" && this.service.authorizer.isAdmin(id);
  }

  /**
   * The connection is authenticated: take its place in the identity's connection count
   * (refused over `limits.maxConnectionsPerIdentity`: `error` QUEUE_FULL, close 1013; false)
   * and arm its expiry timer.
   */
  attach(conn: WsConnection): boolean {
    const auth = this.service;
    if (!auth || !conn.identity) return true;
    if (this.limits) {
      const admitted = this.limits.admitIdentity(conn.identity, "ws", () => conn.open);
      if (!admitted.ok) {
        this.#log.info("ws.hello.limited", { client: conn.clientId, limit: admitted.refusal.limit, error: admitted.refusal.message });
        conn.fail("QUEUE_FULL", admitted.refusal.message, WS_CLOSE_TRY_AGAIN_LATER);
        return false;
      }
      this.#leases.set(conn, admitted.lease);
    }
    this.#armExpiry(conn, auth, conn.identity);
    return true;
  }

  #armExpiry(conn: WsConnection, auth: AuthService, identity: Identity): void {
    const ms = auth.msUntilExpiry(identity);
    if (ms === null) return;
    const timer = setTimeout(() => {
      this.#timers.delete(conn);
      if (!conn.open || !conn.identity) return;
      const err = auth.validate(conn.identity);
      if (err) this.close(conn, err);
      else this.#armExpiry(conn, auth, conn.identity); // a timer capped at MAX_TIMER_MS fired early
    }, Math.min(ms, MAX_TIMER_MS));
    timer.unref?.();
    this.#timers.set(conn, timer);
  }

  /** The connection closed: forget its timer. */
  detach(conn: WsConnection): void {
    this.#leases.get(conn)?.release();
    this.#leases.delete(conn);
    const timer = this.#timers.get(conn);
    if (timer) clearTimeout(timer);
    this.#timers.delete(conn);
  }

  /** Closes `conn` for an identity that stopped being valid: `disconnect` then close 4003 (expired, reconnect with a fresh token) or 4501 (revoked). */
  close(conn: WsConnection, err: TributaryError): void {
    const expired = err.code === "TOKEN_EXPIRED";
    this.#log.info("ws.identity_invalid", { client: conn.clientId, session: conn.sessionId, code: err.code, reason: err.message });
    conn.disconnect(err.code, err.message, expired, expired ? CLOSE_CODES.TOKEN_EXPIRED : CLOSE_CODES.UNAUTHORIZED);
  }

  /** After a reload: close invalid identities, end what is no longer permitted. */
  recheckAll(): void {
    const auth = this.service;
    if (!auth) return;
    for (const conn of [...this.#connections]) {
      if (!conn.open || !conn.identity) continue;
      const err = auth.validate(conn.identity);
      if (err) {
        this.close(conn, err);
        continue;
      }
      this.#recheck(conn, auth.authorizer, conn.identity);
    }
  }

  #recheck(conn: WsConnection, authorizer: Authorizer, identity: Identity): void {
    for (const [id, sub] of [...conn.subscriptions]) {
      const group = sub instanceof GroupSubscription ? sub.group : null;
      const ok = authorizer.canConsume(identity, sub.spec) && (group === null || authorizer.canJoinGroup(identity, group));
      if (ok) continue;
      conn.subscriptions.delete(id);
      this.#presence.release(sub, true);
      if (sub instanceof GroupSubscription) void sub.leave();
      else sub.stop();
      const what = group === null ? `consume "${sub.spec}"` : `consume "${sub.spec}" in group "${group}"`;
      this.#log.info("ws.subscription_revoked", { client: conn.clientId, sub: id, topic: sub.spec, group });
      conn.sendError("FORBIDDEN", `permission revoked: may no longer ${what}; the subscription ended`, { sub: id });
    }
    for (const topic of this.#presence.watchedBy(conn)) {
      if (authorizer.canPresence(identity, topic)) continue;
      this.#presence.watch(conn, topic, false);
      conn.sendError("FORBIDDEN", `permission revoked: may no longer watch presence on "${topic}"; the watch ended`);
    }
  }

  /** The gateway closes: stop listening and clear the timers. */
  shutdown(): void {
    this.#unlisten();
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
