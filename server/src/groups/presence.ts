import type { Clock } from "./clock.ts";
import { reportGroupError, warnOnStderr, type GroupErrorHandler } from "./group-errors.ts";
import { GroupInstrumentation, type GroupBackgroundTask, type LeaveReason } from "./instrumentation.ts";
import { Membership, type MemberRecord, type MembershipStore } from "./membership.ts";

/** One client present on a topic. */
export interface PresenceEntry {
  clientId: string;
  user: string | null;
  node: string;
  joinedAt: number;
}

export interface PresenceListener {
  /** A client became present on `topic` (not fired when a present client reconnects). */
  join?(topic: string, entry: PresenceEntry): void;
  /** A client is gone from `topic`: it unsubscribed ("leave") or vanished for the session timeout ("timeout"). */
  leave?(topic: string, entry: PresenceEntry, reason: LeaveReason): void;
}

export interface PresenceRegistryOptions {
  /** A Membership of its own (do not share the groups' one: scopes would collide). */
  membership?: Membership;
  store?: MembershipStore;
  clock?: Clock;
  /** How long a client stays present without a heartbeat. Default 15 s. */
  sessionTimeoutMs?: number;
  sweepIntervalMs?: number;
  instrumentation?: GroupInstrumentation;
  /** Failures no caller sees (the session-timeout sweep, counting members for an event), with the topic and a task. Default: a warn line on stderr. */
  onError?: GroupErrorHandler;
}

/**
 * Who is subscribed to a topic, on the same membership model as consumer groups
 * (Membership: scope = topic, id = clientId).
 *
 * Gateways call `join` when a client subscribes with presence, `heartbeat` (or
 * `heartbeatClient`) while its connection is alive, `leave` on unsubscribe, and nothing
 * when the connection drops: the client then leaves after the session timeout unless it
 * reconnects and joins again with the same clientId first, in which case nobody sees a
 * leave + join (no flapping) and `joinedAt` is kept. Presence identity is the clientId: two
 * connections with one clientId are one presence entry.
 */
export class PresenceRegistry {
  readonly membership: Membership;
  readonly instrumentation: GroupInstrumentation;
  readonly #sessionTimeoutMs: number;
  readonly #listeners = new Set<PresenceListener>();
  readonly #unlisten: () => void;
  readonly #onError: GroupErrorHandler;

  constructor(options: PresenceRegistryOptions = {}) {
    this.#onError = options.onError ?? warnOnStderr("presence.error");
    this.membership =
      options.membership ?? new Membership({ store: options.store, clock: options.clock, sweepIntervalMs: options.sweepIntervalMs, onError: (err, task) => this.#report(err, null, task) });
    this.instrumentation = options.instrumentation ?? new GroupInstrumentation();
    this.#sessionTimeoutMs = options.sessionTimeoutMs ?? 15_000;
    this.#unlisten = this.membership.listen({
      join: (topic, member) => {
        void this.#count(topic).then((members) => this.instrumentation.emit("presence.join", { topic, clientId: member.clientId, node: member.node, members }), (err: unknown) => this.#report(err, topic, "presence-event"));
        this.#emit((l) => l.join?.(topic, entryOf(member)));
      },
      leave: (topic, member, reason) => {
        void this.#count(topic).then((members) => this.instrumentation.emit("presence.leave", { topic, clientId: member.clientId, reason, members }), (err: unknown) => this.#report(err, topic, "presence-event"));
        this.#emit((l) => l.leave?.(topic, entryOf(member), reason));
      },
    });
  }

  /** How long a client stays present without a heartbeat (gateways heartbeat at a third of it). */
  get sessionTimeoutMs(): number {
    return this.#sessionTimeoutMs;
  }

  on(listener: PresenceListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Marks the client present on `topic`; `rejoined` is true when it already was (a reconnect: no event). */
  async join(topic: string, client: { clientId: string; user?: string | null; node: string }): Promise<{ entry: PresenceEntry; rejoined: boolean }> {
    const { member, rejoined } = await this.membership.join(topic, {
      id: client.clientId,
      clientId: client.clientId,
      user: client.user ?? null,
      node: client.node,
      sessionTimeoutMs: this.#sessionTimeoutMs,
    });
    return { entry: entryOf(member), rejoined };
  }

  /** Keeps the client present on `topic`; false when it is not (join again). */
  heartbeat(topic: string, clientId: string): Promise<boolean> {
    return this.membership.heartbeat(topic, clientId);
  }

  /** Keeps the client present on every topic in `topics` (a connection's heartbeat). */
  async heartbeatClient(clientId: string, topics: Iterable<string>): Promise<void> {
    await Promise.all([...topics].map((t) => this.membership.heartbeat(t, clientId)));
  }

  /** Explicit unsubscribe: the client leaves `topic` now. */
  async leave(topic: string, clientId: string): Promise<boolean> {
    return (await this.membership.leave(topic, clientId, "leave")) !== null;
  }

  async members(topic: string): Promise<PresenceEntry[]> {
    return (await this.membership.members(topic)).map(entryOf);
  }

  /** Runs the session-timeout sweep now (tests with a ManualClock). */
  sweep(): Promise<void> {
    return this.membership.sweep();
  }

  close(): void {
    this.#unlisten();
    this.membership.close();
  }

  #report(err: unknown, topic: string | null, task: GroupBackgroundTask): void {
    reportGroupError(this.#onError, this.instrumentation, err, topic, task);
  }

  async #count(topic: string): Promise<number> {
    return (await this.membership.members(topic)).length;
  }

  #emit(fn: (listener: PresenceListener) => void): void {
    for (const listener of [...this.#listeners]) {
      try {
        fn(listener);
      } catch (err) {
        this.#report(err, null, "group-membership"); // a listener must not break presence (nor the other listeners)
      }
    }
  }
}

function entryOf(member: MemberRecord): PresenceEntry {
  return { clientId: member.clientId, user: member.user, node: member.node, joinedAt: member.joinedAt };
}
