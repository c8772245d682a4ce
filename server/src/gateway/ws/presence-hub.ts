import type { PresenceEventFrame } from "@tributary/client/protocol";
import type { PresenceRegistry } from "../../groups/index.ts";
import type { Logger } from "../../logger.ts";
import type { WsConnection } from "./ws-connection.ts";
import type { WsSubscription } from "./ws-subscription.ts";

const SEP = "\u0000";

/**
 * The WebSocket gateway's side of presence (PresenceRegistry, docs/consumer-groups.md):
 *
 * - Subscriptions with `presence: true` make their client present on the topic. A
 *   (topic, clientId) pair is present while at least one such subscription lives on this
 *   node; the hub heartbeats every live pair at a third of the registry's session timeout.
 * - An explicit `unsubscribe` of the last one leaves at once; a closed socket does not: the
 *   client stays present until the session timeout, so a reconnect (same clientId) that
 *   subscribes again first is seen by nobody (no leave + join flapping).
 * - Connections that `watch` a topic get `presence_event` frames for its joins and leaves.
 */
export class WsPresenceHub {
  readonly registry: PresenceRegistry | undefined;
  readonly #nodeId: string;
  readonly #log: Logger;
  /** topic\0clientId → live presence subscriptions on this node. */
  readonly #live = new Map<string, Set<WsSubscription>>();
  readonly #watchers = new Map<string, Set<WsConnection>>();
  readonly #watching = new Map<WsConnection, Set<string>>();
  readonly #users = new WeakMap<WsConnection, string | null>();
  readonly #timer: NodeJS.Timeout | null = null;
  readonly #unlisten: () => void = () => undefined;
  readonly #onError: (() => void) | undefined;

  /** `onError`: counts a failure of the hub's background work (it is logged here). */
  constructor(registry: PresenceRegistry | undefined, nodeId: string, log: Logger, onError?: () => void) {
    this.registry = registry;
    this.#nodeId = nodeId;
    this.#log = log;
    this.#onError = onError;
    if (!registry) return;
    this.#timer = setInterval(() => this.#heartbeat(), Math.max(25, Math.floor(registry.sessionTimeoutMs / 3)));
    this.#timer.unref?.();
    this.#unlisten = registry.on({
      join: (topic, entry) => this.#broadcast(topic, { op: "presence_event", topic, event: "join", clientId: entry.clientId, user: entry.user, node: entry.node }),
      leave: (topic, entry, reason) =>
        this.#broadcast(topic, { op: "presence_event", topic, event: "leave", clientId: entry.clientId, user: entry.user, node: entry.node, reason }),
    });
  }

  /** The `user` a connection announced in `hello` (shown in presence). */
  setUser(conn: WsConnection, user: string | null): void {
    this.#users.set(conn, user);
  }

  userOf(conn: WsConnection): string | null {
    return this.#users.get(conn) ?? null;
  }

  /** Makes the subscription's client present on its topic until the subscription stops. */
  async track(sub: WsSubscription): Promise<void> {
    const registry = this.registry;
    if (!registry || !sub.active) return;
    const key = sub.topic + SEP + sub.conn.clientId;
    let subs = this.#live.get(key);
    if (!subs) this.#live.set(key, (subs = new Set()));
    subs.add(sub);
    sub.onStop = () => this.release(sub, false);
    await registry.join(sub.topic, { clientId: sub.conn.clientId, user: this.#users.get(sub.conn) ?? null, node: this.#nodeId });
  }

  /** The subscription ended; `explicit` (unsubscribe) leaves now when it was the client's last one on the topic. */
  release(sub: WsSubscription, explicit: boolean): void {
    const key = sub.topic + SEP + sub.conn.clientId;
    const subs = this.#live.get(key);
    if (!subs?.delete(sub)) return;
    if (subs.size > 0) return;
    this.#live.delete(key);
    if (explicit) {
      void this.registry?.leave(sub.topic, sub.conn.clientId).catch((err: unknown) => {
        this.#log.warn("presence.leave_failed", { topic: sub.topic, client: sub.conn.clientId, message: String(err) });
        this.#onError?.();
      });
    }
  }

  watch(conn: WsConnection, topic: string, on: boolean): void {
    let conns = this.#watchers.get(topic);
    let topics = this.#watching.get(conn);
    if (on) {
      if (!conns) this.#watchers.set(topic, (conns = new Set()));
      if (!topics) this.#watching.set(conn, (topics = new Set()));
      conns.add(conn);
      topics.add(topic);
      return;
    }
    conns?.delete(conn);
    if (conns?.size === 0) this.#watchers.delete(topic);
    topics?.delete(topic);
  }

  /** The topics whose presence `conn` watches. */
  watchedBy(conn: WsConnection): string[] {
    return [...(this.#watching.get(conn) ?? [])];
  }

  /** The connection closed: it watches nothing any more. */
  connectionGone(conn: WsConnection): void {
    for (const topic of this.#watching.get(conn) ?? []) this.watch(conn, topic, false);
    this.#watching.delete(conn);
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#unlisten();
  }

  #broadcast(topic: string, frame: PresenceEventFrame): void {
    const conns = this.#watchers.get(topic);
    if (!conns) return;
    for (const conn of conns) conn.send(frame);
  }

  #heartbeat(): void {
    const registry = this.registry!;
    for (const [key, subs] of this.#live) {
      const i = key.indexOf(SEP);
      const topic = key.slice(0, i);
      const clientId = key.slice(i + 1);
      registry.heartbeat(topic, clientId).then(
        (alive) => {
          // Expired meanwhile (e.g. a long event-loop stall): present again.
          const sub = [...subs][0];
          if (!alive && sub?.active) void registry.join(topic, { clientId, user: this.#users.get(sub.conn) ?? null, node: this.#nodeId });
        },
        (err: unknown) => this.#log.warn("presence.heartbeat_failed", { topic, message: String(err) }),
      );
    }
  }
}
