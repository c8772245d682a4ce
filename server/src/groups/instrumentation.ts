/**
 * Namespaced instrumentation events of the group layer, emitted from one place (kafkajs
 * `instrumentationEvents` style). Metrics and logs subscribe here instead of being
 * sprinkled through the coordinator. Every event carries `type`, `timestamp` and a payload;
 * `counts()` gives a running count per type.
 */
import type { OffsetResetPolicy } from "./types.ts";

export interface GroupInstrumentationPayloads {
  /** A member joined a group (new member, or a known member re-binding after a reconnect). */
  "group.join": { group: string; memberId: string; clientId: string; node: string; members: number; rejoin: boolean };
  /** A member left: explicit leave, session timeout, or removal by the node (connection closed). */
  "group.leave": { group: string; memberId: string; clientId: string; reason: LeaveReason; members: number };
  /** A rebalance round completed: the group is in `generation` with the given assignment. */
  "group.rebalance": {
    group: string;
    generation: number;
    strategy: string | null;
    members: number;
    /** Partitions revoked from their previous owner in this round. */
    revoked: number;
    /** Partitions given to a member that did not own them before. */
    assigned: number;
    /** Revocations that were not confirmed in time (the partition was taken anyway). */
    revokeTimeouts: number;
    durationMs: number;
  };
  /** Offsets were committed (by a member, or by an admin reset). */
  "group.commit": { group: string; memberId: string | null; count: number; durationMs: number };
  /**
   * A member was given a partition whose committed position belongs to another epoch (the
   * partition's history was rewritten since: topic re-created, a tail lost by the storage):
   * it starts at `offset` of `epoch`, chosen by its reset `policy`, not at the committed one.
   */
  "group.stale_epoch": {
    group: string;
    memberId: string;
    topic: string;
    partition: number;
    committedEpoch: string | null;
    committedOffset: number;
    epoch: string;
    offset: number;
    policy: OffsetResetPolicy;
  };
  /**
   * Work the coordinator or presence does on its own failed (no request saw it): logged by
   * the `onError` hook and counted in `tributary_background_errors_total{task}`.
   */
  "group.error": { group: string | null; task: GroupBackgroundTask; code: string; message: string };
  "presence.join": { topic: string; clientId: string; node: string; members: number };
  "presence.leave": { topic: string; clientId: string; reason: LeaveReason; members: number };
}

export type LeaveReason = "leave" | "timeout";

/**
 * Background work of the group layer: the `task` of a `group.error` (and the label of
 * `tributary_background_errors_total`), a bounded set.
 * - `group-state`: the group state store failed a load or save (the operation that needed it
 *   failed with UNAVAILABLE: a request's caller retries, a rebalance round runs again).
 * - `group-rebalance`: a rebalance round or a re-bound member's resync failed (retried after a backoff).
 * - `group-channel`: a member channel threw when handed its assignment or its removal, or could not
 *   take a revoke (the revoke stays pending: a re-bind, the member's removal or the rebalance timeout ends it).
 * - `group-membership`: the session-timeout sweep, removing a timed-out member, or a membership
 *   listener failed (groups and presence; the sweep runs again at its next interval).
 * - `presence-event`: counting a topic's members for a presence event failed (the listeners were told anyway).
 */
export const GROUP_BACKGROUND_TASKS = ["group-state", "group-rebalance", "group-channel", "group-membership", "presence-event"] as const;

export type GroupBackgroundTask = (typeof GROUP_BACKGROUND_TASKS)[number];

export type GroupInstrumentationType = keyof GroupInstrumentationPayloads;

export interface GroupInstrumentationEvent<T extends GroupInstrumentationType = GroupInstrumentationType> {
  type: T;
  timestamp: number;
  payload: GroupInstrumentationPayloads[T];
}

type Listener<T extends GroupInstrumentationType> = (event: GroupInstrumentationEvent<T>) => void;

export class GroupInstrumentation {
  readonly #listeners = new Map<string, Set<(event: GroupInstrumentationEvent) => void>>();
  readonly #counts = new Map<GroupInstrumentationType, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Subscribes to one event type, or to every type with `"*"`. Returns the unsubscribe function. */
  on<T extends GroupInstrumentationType>(type: T, listener: Listener<T>): () => void;
  on(type: "*", listener: (event: GroupInstrumentationEvent) => void): () => void;
  on(type: string, listener: (event: never) => void): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    const fn = listener as (event: GroupInstrumentationEvent) => void;
    set.add(fn);
    return () => void set.delete(fn);
  }

  emit<T extends GroupInstrumentationType>(type: T, payload: GroupInstrumentationPayloads[T]): void {
    this.#counts.set(type, (this.#counts.get(type) ?? 0) + 1);
    const event: GroupInstrumentationEvent<T> = { type, timestamp: this.#now(), payload };
    for (const key of [type, "*"]) {
      const set = this.#listeners.get(key);
      if (!set) continue;
      for (const listener of [...set]) {
        try {
          listener(event as GroupInstrumentationEvent);
        } catch {
          // An observer must never break the coordinator.
        }
      }
    }
  }

  /** Events emitted so far, per type. */
  counts(): Record<GroupInstrumentationType, number> {
    const out = {} as Record<GroupInstrumentationType, number>;
    for (const type of ["group.join", "group.leave", "group.rebalance", "group.commit", "group.stale_epoch", "group.error", "presence.join", "presence.leave"] as const) {
      out[type] = this.#counts.get(type) ?? 0;
    }
    return out;
  }
}
