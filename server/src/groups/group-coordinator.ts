import { randomUUID } from "node:crypto";
import { TributaryError, isTributaryError } from "../errors.ts";
import type { LogEngine } from "../log/log-engine.ts";
import { defaultAssigners, type PartitionAssigner } from "./assigners/index.ts";
import { AssignmentEpochs } from "./assignment-epochs.ts";
import { systemClock, type Clock } from "./clock.ts";
import { CheckedGroupStore } from "./checked-group-store.ts";
import { assertCommitAllowed, validateCommitOffsets } from "./commit-fencing.ts";
import type {
  CommitRequest,
  GroupCoordinatorOptions,
  GroupDescription,
  GroupListing,
  JoinRequest,
  ResetOffsetsResult,
} from "./coordinator-types.ts";
import { GroupAdmin } from "./group-admin.ts";
import { reportGroupError, warnOnStderr, type GroupErrorHandler } from "./group-errors.ts";
import { checkGroupName } from "./group-name.ts";
import { InMemoryGroupStore, type GroupState, type GroupStateName, type GroupStore } from "./group-store.ts";
import { GroupInstrumentation, type GroupBackgroundTask, type LeaveReason } from "./instrumentation.ts";
import { KeyedMutex } from "./keyed-mutex.ts";
import { MemberChannels } from "./member-channels.ts";
import { Membership } from "./membership.ts";
import type { ResetTarget } from "./offsets.ts";
import { RebalanceScheduler } from "./rebalance-scheduler.ts";

export type {
  CommitRequest,
  GroupCoordinatorOptions,
  GroupDescription,
  GroupListing,
  GroupMemberChannel,
  GroupMemberDescription,
  GroupPartitionDescription,
  JoinRequest,
  MemberAssignment,
  MemberRevocation,
  ResetOffsetsResult,
} from "./coordinator-types.ts";

/**
 * The consumer-group coordinator: membership with generations, heartbeats and session
 * timeouts; rebalancing with pluggable strategies (eager or cooperative); commits fenced
 * by memberId + generation + ownership; admin (describe, list, reset offsets).
 *
 * Guarantees:
 * - A partition has at most one owner per group at any time, in every generation: a
 *   partition that changes owner is first revoked from the old owner and only assigned to
 *   the new one after the old owner confirmed (or left, or the rebalance timeout passed).
 * - With a cooperative strategy, partitions that stay with their owner are never revoked.
 * - Every rebalance round increments the generation; rounds of one group never overlap;
 *   a change during a round (join, leave, timeout) starts another round right after it.
 * - A commit is accepted only from a current member, carrying the generation of its
 *   latest assignment, for partitions it owns (revoking ones included); otherwise it fails
 *   with UNKNOWN_MEMBER, ILLEGAL_GENERATION or PARTITION_NOT_OWNED and nothing is written.
 * - Delivery is at-least-once: a new owner starts at the last committed offset.
 * - A member whose connection dropped keeps its partitions until its session timeout; a
 *   revoke it could not receive waits (up to the rebalance timeout) for it to re-bind, then
 *   goes to its new channel, so it commits what it processed before its partitions move.
 * - A failure of the group state store fails the operation that needed it with UNAVAILABLE
 *   (retriable); it is never taken for an empty group. Failures no caller sees (rounds,
 *   sweeps, channels) go to `onError` with a task and to a `group.error` event.
 *
 * Parts (internal): rebalance-scheduler.ts (rounds: plan, revoke-then-assign),
 * member-channels.ts (this node's member channels), commit-fencing.ts, group-admin.ts
 * (describe, list, reset offsets); the API types are in coordinator-types.ts.
 */
export class GroupCoordinator {
  readonly engine: LogEngine;
  readonly membership: Membership;
  readonly instrumentation: GroupInstrumentation;
  readonly store: GroupStore;
  readonly clock: Clock;
  readonly #assigners: Map<string, PartitionAssigner>;
  readonly #partitionCount: (topic: string) => Promise<number>;
  readonly #lock = new KeyedMutex();
  readonly #channels: MemberChannels;
  /** Epoch of each member's assigned partitions: the epoch of commits that carry none. */
  readonly #epochs: AssignmentEpochs;
  readonly #rebalancer: RebalanceScheduler;
  readonly #admin: GroupAdmin;
  readonly #options: Required<Pick<GroupCoordinatorOptions, "sessionTimeoutMs" | "minSessionTimeoutMs" | "maxSessionTimeoutMs" | "rebalanceTimeoutMs">>;
  readonly #onError: GroupErrorHandler;
  readonly #unlisten: () => void;
  #closed = false;

  constructor(options: GroupCoordinatorOptions) {
    this.engine = options.engine;
    this.clock = options.clock ?? systemClock;
    this.instrumentation = options.instrumentation ?? new GroupInstrumentation(() => this.clock.now());
    this.#epochs = new AssignmentEpochs(this.instrumentation);
    this.#onError = options.onError ?? warnOnStderr("group.error");
    this.store = new CheckedGroupStore(options.groupStore ?? new InMemoryGroupStore(), (err, group) => this.#report(err, group, "group-state"));
    this.membership = options.membership ?? new Membership({ clock: this.clock, onError: (err, task) => this.#report(err, null, task) });
    this.#channels = new MemberChannels((err, group, task) => this.#report(err, group, task));
    this.#assigners = options.assigners ?? defaultAssigners();
    this.#partitionCount =
      options.partitionCount ??
      (async (topic) => {
        try {
          return (await this.engine.describeTopic(topic)).partitions;
        } catch (err) {
          if (isTributaryError(err, "UNKNOWN_TOPIC")) return 0;
          throw err;
        }
      });
    this.#options = {
      sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
      minSessionTimeoutMs: options.minSessionTimeoutMs ?? 50,
      maxSessionTimeoutMs: options.maxSessionTimeoutMs ?? 300_000,
      rebalanceTimeoutMs: options.rebalanceTimeoutMs ?? 30_000,
    };
    this.#rebalancer = new RebalanceScheduler({
      engine: this.engine,
      store: this.store,
      clock: this.clock,
      instrumentation: this.instrumentation,
      lock: this.#lock,
      assigners: this.#assigners,
      partitionCount: this.#partitionCount,
      channels: this.#channels,
      rebalanceTimeoutMs: this.#options.rebalanceTimeoutMs,
      onError: (err, group) => this.#report(err, group, "group-rebalance"),
      isClosed: () => this.#closed,
    });
    this.#admin = new GroupAdmin({
      engine: this.engine,
      store: this.store,
      membership: this.membership,
      clock: this.clock,
      instrumentation: this.instrumentation,
      lock: this.#lock,
      partitionCount: this.#partitionCount,
    });
    this.#unlisten = this.membership.listen({
      leave: (group, member, reason) => {
        if (reason !== "timeout") return;
        const removal = this.#removeMember(group, member.id, "timeout").then(
          () => undefined,
          (err: unknown) => this.#report(err, group, "group-membership"),
        );
        let pending = this.#removals.get(group);
        if (!pending) this.#removals.set(group, (pending = new Set()));
        pending.add(removal);
        void removal.finally(() => {
          pending.delete(removal);
          if (pending.size === 0 && this.#removals.get(group) === pending) this.#removals.delete(group);
        });
      },
    });
  }

  /** Strategy names this coordinator knows. */
  strategies(): string[] {
    return [...this.#assigners.keys()];
  }

  /**
   * Adds a member (or re-binds a known `memberId` after a reconnect). Resolves with the
   * memberId once the member is registered; its assignment arrives on `channel.assign`
   * when the rebalance this join starts completes.
   */
  async join(group: string, request: JoinRequest): Promise<{ memberId: string; generation: number }> {
    this.#checkOpen();
    checkGroupName(group);
    const topics = [...new Set(request.topics)].sort();
    if (topics.length === 0 || topics.some((t) => typeof t !== "string" || t.length === 0)) {
      throw new TributaryError("BAD_REQUEST", "a group member must subscribe to at least one topic", { group });
    }
    const strategies = (request.strategies ?? ["cooperative-sticky", "range"]).filter((s) => this.#assigners.has(s));
    if (strategies.length === 0) {
      throw new TributaryError("INCONSISTENT_GROUP_PROTOCOL", `none of the strategies ${JSON.stringify(request.strategies)} is supported; use ${this.strategies().join(", ")}`, { group });
    }
    const sessionTimeoutMs = request.sessionTimeoutMs ?? this.#options.sessionTimeoutMs;
    if (sessionTimeoutMs < this.#options.minSessionTimeoutMs || sessionTimeoutMs > this.#options.maxSessionTimeoutMs) {
      throw new TributaryError("BAD_REQUEST", `sessionTimeoutMs must be within [${this.#options.minSessionTimeoutMs}, ${this.#options.maxSessionTimeoutMs}]`, { group, sessionTimeoutMs });
    }
    const reset = request.reset ?? "latest";
    let deliverNow = false;
    const result = await this.#lock.run(group, async () => {
      const state = (await this.store.load(group)) ?? newGroupState(group);
      const known = request.memberId !== undefined ? state.members[request.memberId] : undefined;
      const memberId = known ? known.memberId : `${request.clientId}-${randomUUID()}`;
      const others = Object.values(state.members).filter((m) => m.memberId !== memberId);
      if (others.length > 0 && !strategies.some((s) => others.every((m) => m.strategies.includes(s)))) {
        throw new TributaryError("INCONSISTENT_GROUP_PROTOCOL", `strategies ${strategies.join(", ")} share none with the members of group "${group}"`, { group });
      }
      const changed = !known || known.topics.join() !== topics.join() || known.strategies.join() !== strategies.join();
      state.members[memberId] = {
        memberId,
        topics,
        strategies,
        reset,
        generation: known?.generation ?? 0,
        owned: known?.owned ?? [],
        revoking: known?.revoking ?? [],
        resync: known !== undefined,
      };
      await this.store.save(state);
      await this.membership.join(group, { id: memberId, clientId: request.clientId, user: request.user ?? null, node: request.node, sessionTimeoutMs });
      this.#channels.bind(group, memberId, this.#epochs.track(group, memberId, request.channel));
      deliverNow = known !== undefined && !changed && state.state === "Stable" && !this.#rebalancer.isRunning(group);
      this.instrumentation.emit("group.join", { group, memberId, clientId: request.clientId, node: request.node, members: Object.keys(state.members).length, rejoin: known !== undefined });
      return { memberId, generation: state.generation };
    });
    if (deliverNow) await this.#rebalancer.resync(group, result.memberId);
    else this.#rebalancer.trigger(group);
    return result;
  }

  /** The member leaves (it should have committed first). Idempotent: false when it was not a member. */
  async leave(group: string, memberId: string): Promise<boolean> {
    const removed = await this.membership.leave(group, memberId, "leave");
    return (await this.#removeMember(group, memberId, "leave")) || removed !== null;
  }

  /** Keeps the member alive. Fails with UNKNOWN_MEMBER when it is no longer in the group (join again). */
  async heartbeat(group: string, memberId: string): Promise<{ generation: number; state: GroupStateName }> {
    if (!(await this.membership.heartbeat(group, memberId))) {
      throw new TributaryError("UNKNOWN_MEMBER", `member ${memberId} is not in group "${group}" (session timed out or left); join again`, { group, memberId });
    }
    const state = await this.store.load(group);
    return { generation: state?.generation ?? 0, state: state?.state ?? "Empty" };
  }

  /** Commits offsets (next offset to consume) for partitions the member owns; fenced as described on the class. */
  async commit(group: string, request: CommitRequest): Promise<void> {
    this.#checkOpen();
    const started = this.clock.now();
    validateCommitOffsets(group, request);
    await this.#lock.run(group, async () => {
      assertCommitAllowed(group, (await this.store.load(group))?.members[request.memberId], request);
      await this.membership.heartbeat(group, request.memberId);
      // A position carries its epoch: the member's own, else the one of the partition in its latest assignment.
      await Promise.all(
        request.offsets.map((o) =>
          this.engine.commitOffset(group, o.topic, o.partition, o.offset, { epoch: o.epoch ?? this.#epochs.epochOf(group, request.memberId, o) ?? null, metadata: o.metadata }),
        ),
      );
    });
    this.instrumentation.emit("group.commit", { group, memberId: request.memberId, count: request.offsets.length, durationMs: this.clock.now() - started });
  }

  /** Starts a rebalance round (e.g. after a subscribed topic was created or got more partitions). */
  rebalance(group: string): void {
    this.#rebalancer.trigger(group);
  }

  /** Resolves when no rebalance of `group` is running or pending. */
  async settled(group: string): Promise<void> {
    // A member that timed out is removed asynchronously (the sweep only finds it): its
    // removal triggers the round that reassigns its partitions, so wait for it first.
    for (;;) {
      const removals = this.#removals.get(group);
      if (removals && removals.size > 0) await Promise.all(removals);
      await this.#rebalancer.settled(group);
      if (!this.#removals.get(group)?.size) return;
    }
  }

  /** Removals of timed-out members in progress, per group (see `settled`). */
  readonly #removals = new Map<string, Set<Promise<void>>>();

  /** Runs the session-timeout sweep now (tests with a ManualClock call it after advancing time). */
  sweep(): Promise<void> {
    return this.membership.sweep();
  }

  // ---- admin -----------------------------------------------------------------------------

  async describeGroup(group: string): Promise<GroupDescription> {
    return this.#admin.describe(group);
  }

  /** Groups with members or committed offsets. */
  async listGroups(): Promise<GroupListing[]> {
    return this.#admin.list();
  }

  /**
   * Moves the group's committed offsets on `topic` (all partitions, or `partitions`).
   * Only while the group has no members (Kafka semantics): GROUP_NOT_EMPTY otherwise.
   */
  async resetOffsets(group: string, topic: string, to: ResetTarget, partitions?: number[]): Promise<ResetOffsetsResult> {
    this.#checkOpen();
    return this.#admin.resetOffsets(group, topic, to, partitions);
  }

  /** Stops timers; pending rebalances finish without further rounds. */
  close(): void {
    this.#closed = true;
    this.#unlisten();
    this.membership.close();
    this.#channels.releaseAll();
  }

  // ---- internals -------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw new TributaryError("UNAVAILABLE", "the group coordinator is closed");
  }

  /** A failure no caller sees (or one to log with its context): to `onError` and a `group.error` event. */
  #report(err: unknown, group: string | null, task: GroupBackgroundTask): void {
    reportGroupError(this.#onError, this.instrumentation, err, group, task);
  }

  async #removeMember(group: string, memberId: string, reason: LeaveReason): Promise<boolean> {
    const removed = await this.#lock.run(group, async () => {
      const state = await this.store.load(group);
      if (!state?.members[memberId]) return false;
      delete state.members[memberId];
      await this.store.save(state);
      const record = await this.membership.get(group, memberId);
      const channel = this.#channels.unbind(group, memberId);
      this.#epochs.forget(group, memberId);
      if (reason === "timeout") {
        try {
          channel?.removed?.(reason);
        } catch (err) {
          this.#report(err, group, "group-channel");
        }
      }
      this.instrumentation.emit("group.leave", { group, memberId, clientId: record?.clientId ?? memberId.replace(/-[0-9a-f-]{36}$/, ""), reason, members: Object.keys(state.members).length });
      return true;
    });
    if (removed) this.#rebalancer.trigger(group);
    return removed;
  }
}

function newGroupState(group: string): GroupState {
  return { group, generation: 0, state: "Empty", strategy: null, version: 0, members: {} };
}
