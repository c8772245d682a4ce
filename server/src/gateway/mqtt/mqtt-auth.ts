import { disconnectReasonFor, type AuthService, type Identity } from "../../auth/index.ts";
import type { Logger } from "../../logger.ts";
import type { MqttConnection } from "./connection.ts";
import type { Subscription } from "./session/subscription.ts";
import type { WillMessage } from "./session/session-manager.ts";

/** setTimeout's longest delay; a later expiry is re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The MQTT gateway's side of the auth layer (docs/security.md "For gateway authors"):
 * the permission questions the handlers ask, closing a connection when its identity
 * expires, and applying a reload (`auth.on("change")`) to live connections.
 *
 * Exists only when the node enforces authentication (`AuthService.mode === "enforced"`):
 * in "open" mode the gateway holds no MqttAuth and asks nothing, exactly as before
 * authentication existed.
 *
 * Guarantees:
 * - A subscription is judged once, at SUBSCRIBE (or when a stored session's subscription
 *   is restored at reconnect), and again after every reload; delivery asks nothing
 *   per message (a permitted filter only matches permitted topics, auth/authorizer.ts).
 * - PUBLISH asks `canPublish` per packet; the authorizer caches decisions per identity and
 *   topic, so a device repeating its topic costs one map lookup.
 * - After a reload: a connection whose identity `validate()` refuses is closed (MQTT 5
 *   DISCONNECT 0x87, or 0xA0 if it expired; 3.1.1 a plain close); on the others each
 *   subscription no longer permitted is removed (its cursors and group membership with
 *   it: nothing more is delivered from it) and a will no longer publishable is dropped.
 */
export class MqttAuth {
  readonly service: AuthService;
  readonly #log: Logger;
  readonly #unlisten: () => void;

  constructor(service: AuthService, log: Logger, connections: () => Iterable<MqttConnection>) {
    this.service = service;
    this.#log = log;
    this.#unlisten = service.on("change", (change) => {
      if (change.error === null) this.#recheck(connections());
    });
  }

  authenticate(username: string | undefined, password: Buffer | string | undefined, clientId: string): Promise<Identity> {
    return this.service.authenticateMqtt({ username: username ?? null, password: password ?? null, clientId });
  }

  canPublish(identity: Identity, topic: string): boolean {
    return this.service.authorizer.canPublish(identity, topic);
  }

  /** A will is judged like a PUBLISH of its topic. */
  canWill(identity: Identity, will: WillMessage): boolean {
    return this.service.authorizer.canPublish(identity, will.topic);
  }

  /**
   * May `identity` hold subscription `filter` (`sub.share`: a `$share/<share>/<filter>`)?
   * The filter is judged by canSubscribe (the inner filter of a `$share`), and a `$share`
   * also needs canJoinGroup of its share name (which is the consumer group's name when the
   * filter is a whole log topic, `$share/billing/orders/#`; the prefix of the derived
   * group name `mqtt:billing:<h>` otherwise; docs/mqtt.md "Authentication").
   */
  permits(identity: Identity, sub: Pick<Subscription, "filter" | "share">): boolean {
    const authorizer = this.service.authorizer;
    if (!authorizer.canSubscribe(identity, sub.filter)) return false;
    return sub.share === undefined || authorizer.canJoinGroup(identity, sub.share);
  }

  /** Closes `conn` when its identity expires (TOKEN_EXPIRED: MQTT 5 DISCONNECT 0xA0, 3.1.1 a plain close). */
  armExpiry(conn: MqttConnection): void {
    const identity = conn.identity;
    if (identity === null) return;
    const ms = this.service.msUntilExpiry(identity);
    if (ms === null) return;
    conn.expiryTimer = setTimeout(() => {
      conn.expiryTimer = null;
      if (conn.closed) return;
      const err = this.service.validate(identity);
      if (err === null) {
        this.armExpiry(conn); // a timer shorter than the expiry (over 24 days away): wait again
        return;
      }
      this.#log.info("mqtt.identity.expired", { client: conn.clientId, remote: conn.transport.remoteAddress, error: err.message });
      conn.disconnect(disconnectReasonFor(err.code), err.message);
    }, Math.min(ms, MAX_TIMER_MS));
    conn.expiryTimer.unref();
  }

  close(): void {
    this.#unlisten();
  }

  #recheck(connections: Iterable<MqttConnection>): void {
    for (const conn of [...connections]) {
      const identity = conn.identity;
      if (!conn.connected || conn.closed || identity === null) continue;
      const err = this.service.validate(identity);
      if (err !== null) {
        this.#log.info("mqtt.identity.revoked", { client: conn.clientId, remote: conn.transport.remoteAddress, code: err.code, error: err.message });
        conn.disconnect(disconnectReasonFor(err.code), err.message);
        continue;
      }
      const session = conn.session;
      if (session !== null) {
        for (const sub of [...session.subs.values()]) {
          if (this.permits(identity, sub)) continue;
          conn.core.sessions.unsubscribe(session, sub.filter);
          this.#log.info("mqtt.subscription.revoked", { client: conn.clientId, filter: sub.filter });
        }
      }
      if (conn.will !== null && !this.canWill(identity, conn.will)) {
        this.#log.info("mqtt.will.revoked", { client: conn.clientId, topic: conn.will.topic });
        conn.will = null;
      }
    }
  }
}
