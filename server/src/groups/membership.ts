import type { Clock, TimerHandle } from "./clock.ts";
import { systemClock } from "./clock.ts";
import type { GroupBackgroundTask, LeaveReason } from "./instrumentation.ts";
import { warnOnStderr } from "./group-errors.ts";
import { InMemoryMembershipStore, type MemberRecord, type MembershipStore } from "./membership-store.ts";

export type { MemberRecord, MembershipStore } from "./membership-store.ts";

/**
 * The one membership model of Tributary, shared by consumer groups (scope = group name,
 * id = memberId) and presence (scope = topic, id = clientId): who is in a scope, since
 * when, on which node; heartbeats keep a member alive and a member that stops
 * heartbeating for `sessionTimeoutMs` is removed with reason "timeout".
 *
 * Guarantees:
 * - `join` of an id that is already present (a client reconnecting within its session
 *   timeout) refreshes the record and keeps `joinedAt`; it emits no `leave` and no `join`:
 *   members do not flap.
 * - Each removal (explicit `leave` or expiry) emits exactly one `leave` event.
 * - Expiry is detected by a sweep every `sweepIntervalMs` (an unref'd timer, started on the
 *   first join, stopped by `close`), so a dead member goes within
 *   `sessionTimeoutMs + sweepIntervalMs`.
 * - A sweep that fails (the store's `expire`) is reported to `onError` (task `group-expiry`)
 *   and tried again at the next interval: nobody is removed by a failed sweep.
 * - Listeners run after the store changed; a throwing listener is reported to `onError` and
 *   does not stop the others.
 */
export interface MembershipOptions {
  store?: MembershipStore;
  clock?: Clock;
  /** How often expired members are looked for; default 250 ms. */
  sweepIntervalMs?: number;
  /** Failures of the background sweep and of listeners (the owner logs and counts them). Default: logged at warn. */
  onError?: (err: unknown, task: GroupBackgroundTask) => void;
}

export interface JoinInput {
  id: string;
  clientId: string;
  user: string | null;
  node: string;
  sessionTimeoutMs: number;
}

export interface MembershipListener {
  join?(scope: string, member: MemberRecord): void;
  leave?(scope: string, member: MemberRecord, reason: LeaveReason): void;
}

export class Membership {
  readonly store: MembershipStore;
  readonly clock: Clock;
  readonly #sweepIntervalMs: number;
  readonly #onError: (err: unknown, task: GroupBackgroundTask) => void;
  readonly #listeners = new Set<MembershipListener>();
  #timer: TimerHandle | null = null;
  #closed = false;
  #sweeping: Promise<void> | null = null;

  constructor(options: MembershipOptions = {}) {
    this.store = options.store ?? new InMemoryMembershipStore();
    this.clock = options.clock ?? systemClock;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? 250;
    const warn = warnOnStderr("membership.error");
    this.#onError = options.onError ?? ((err, task) => warn(err, null, task));
  }

  listen(listener: MembershipListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Adds the member, or refreshes it if `id` is already in the scope (then `rejoined` is true and no event fires). */
  async join(scope: string, input: JoinInput): Promise<{ member: MemberRecord; rejoined: boolean }> {
    const now = this.clock.now();
    const existing = await this.store.get(scope, input.id);
    const member: MemberRecord = {
      ...input,
      joinedAt: existing?.joinedAt ?? now,
      lastSeen: now,
    };
    const previous = await this.store.put(scope, member);
    this.#ensureSweep();
    if (!previous) this.#emit((l) => l.join?.(scope, member));
    return { member, rejoined: previous !== null };
  }

  /** Keeps the member alive; false when it is not (or no longer) in the scope. */
  heartbeat(scope: string, id: string): Promise<boolean> {
    return this.store.touch(scope, id, this.clock.now());
  }

  /** Removes the member now (explicit leave); resolves with its record, or null if it was not there. */
  async leave(scope: string, id: string, reason: LeaveReason = "leave"): Promise<MemberRecord | null> {
    const member = await this.store.remove(scope, id);
    if (member) this.#emit((l) => l.leave?.(scope, member, reason));
    return member;
  }

  get(scope: string, id: string): Promise<MemberRecord | null> {
    return this.store.get(scope, id);
  }

  members(scope: string): Promise<MemberRecord[]> {
    return this.store.list(scope);
  }

  scopes(): Promise<string[]> {
    return this.store.scopes();
  }

  /** Removes every member whose session timed out now (the sweep calls this; tests may too). */
  sweep(): Promise<void> {
    if (this.#sweeping) return this.#sweeping;
    this.#sweeping = (async () => {
      try {
        const expired = await this.store.expire(this.clock.now());
        for (const { scope, member } of expired) this.#emit((l) => l.leave?.(scope, member, "timeout"));
      } finally {
        this.#sweeping = null;
      }
    })();
    return this.#sweeping;
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
  }

  #ensureSweep(): void {
    if (this.#timer || this.#closed) return;
    const tick = () => {
      this.#timer = null;
      if (this.#closed) return;
      void this.sweep()
        .then(async () => (await this.store.scopes()).length > 0)
        .catch((err: unknown) => {
          this.#onError(err, "group-membership");
          return true; // try again at the next interval
        })
        .then((again) => {
          if (again && !this.#closed) this.#ensureSweep();
        });
    };
    this.#timer = this.clock.setTimeout(tick, this.#sweepIntervalMs);
  }

  #emit(fn: (listener: MembershipListener) => void): void {
    for (const listener of [...this.#listeners]) {
      try {
        fn(listener);
      } catch (err) {
        this.#onError(err, "group-membership"); // a listener must not break membership (nor the other listeners)
      }
    }
  }
}
