import { randomUUID } from "node:crypto";
import { TributaryError, isTributaryError } from "../errors.ts";
import type { LogEngine } from "../log/log-engine.ts";
import { defaultAssigners, type PartitionAssigner } from "./assigners/index.ts";
import { systemClock, type Clock } from "./clock.ts";
import { InMemoryGroupStore, type GroupMemberState, type GroupState, type GroupStateName, type GroupStore } from "./group-store.ts";
import { GroupInstrumentation, type LeaveReason } from "./instrumentation.ts";
import { KeyedMutex } from "./keyed-mutex.ts";
import { Membership, type MemberRecord } from "./membership.ts";
import { lagOf, resolveResetTarget, resolveStartOffset, type ResetTarget } from "./offsets.ts";
import { sortTps, tpKey, type AssignedPartition, type OffsetResetPolicy, type TopicPartition } from "./types.ts";

/**
 * The per-member listener a gateway implements (WebSocket: `assign`/`revoke` frames;
 * MQTT `$share`: starts/stops tails inside the broker). Calls for one member never overlap
 * in a way that breaks order: a revoke always concerns the member's current generation
 * and the next `assign` comes only after every revoke of the round settled.
 */
export interface GroupMemberChannel {
  /**
   * The member's assignment in a new generation. `partitions` is its complete set;
   * `added` are the ones to start consuming now, each with its start offset (committed
   * offset or reset policy). Partitions in `partitions` but not in `added` keep flowing
   * untouched. Commits from now on must carry `generation`.
   */
  assign(assignment: MemberAssignment): void;
  /**
   * Stop consuming `partitions`, commit what was processed (with the member's current
   * generation; commits are still accepted for these partitions until the promise
   * resolves), then resolve. If the promise does not resolve within the coordinator's
   * `rebalanceTimeoutMs` the partitions are taken anyway and later commits are fenced.
   */
  revoke(revocation: MemberRevocation): Promise<void>;
  /** The coordinator removed the member (session timeout); it must join again. Optional. */
  removed?(reason: LeaveReason): void;
}

export interface MemberAssignment {
  group: string;
  memberId: string;
  generation: number;
  strategy: string;
  partitions: TopicPartition[];
  added: AssignedPartition[];
}

export interface MemberRevocation {
  group: string;
  memberId: string;
  /** The member's current generation (the one its revoke-time commits carry). */
  generation: number;
  partitions: TopicPartition[];
}

export interface JoinRequest {
  clientId: string;
  user?: string | null;
  node: string;
  topics: string[];
  /** Strategies the member supports, preferred first. Default ["cooperative-sticky", "range"]. */
  strategies?: string[];
  /** Start offset when the group has no commit for a partition. Default "latest" (Kafka's default). */
  reset?: OffsetResetPolicy;
  sessionTimeoutMs?: number;
  /** A member re-binding after a reconnect within its session timeout: keeps its id and partitions (no rebalance). */
  memberId?: string;
  channel: GroupMemberChannel;
}

export interface CommitRequest {
  memberId: string;
  generation: number;
  offsets: Array<{ topic: string; partition: number; offset: number; metadata?: string }>;
}

export interface GroupCoordinatorOptions {
  engine: LogEngine;
  groupStore?: GroupStore;
  membership?: Membership;
  clock?: Clock;
  instrumentation?: GroupInstrumentation;
  assigners?: Map<string, PartitionAssigner>;
  /** Partition count of a topic; default: the engine's description, 0 for an unknown topic. Gateways pass `broker.partitions` to auto-create. */
  partitionCount?: (topic: string) => Promise<number>;
  /** Default and bounds of a member's session timeout. Defaults 10 s, [50 ms, 5 min]. */
  sessionTimeoutMs?: number;
  minSessionTimeoutMs?: number;
  maxSessionTimeoutMs?: number;
  /** How long a revoke may take before the partitions are taken anyway. Default 30 s. */
  rebalanceTimeoutMs?: number;
  /** Called when a rebalance round fails (it is retried after `retryBackoffMs`). */
  onError?: (err: unknown, group: string) => void;
}

export interface GroupMemberDescription {
  memberId: string;
  clientId: string;
  user: string | null;
  node: string;
  joinedAt: number;
  lastSeen: number;
  topics: string[];
  strategies: string[];
  generation: number;
  assignment: TopicPartition[];
  revoking: TopicPartition[];
}

export interface GroupPartitionDescription {
  topic: string;
  partition: number;
  owner: string | null;
  committedOffset: number | null;
  endOffset: number;
  lag: number | null;
}

export interface GroupDescription {
  group: string;
  state: GroupStateName;
  generation: number;
  strategy: string | null;
  members: GroupMemberDescription[];
  partitions: GroupPartitionDescription[];
  /** Sum of the partitions' lag (partitions without a commit count 0). */
  totalLag: number;
}

export interface GroupListing {
  group: string;
  state: GroupStateName;
  generation: number;
  members: number;
}

export interface ResetOffsetsResult {
  group: string;
  topic: string;
  partitions: Array<{ partition: number; previous: number | null; offset: number }>;
}

const GROUP_NAME = /^[a-zA-Z0-9._\-:$]{1,249}$/;
const RETRY_BACKOFF_MS = 1000;

interface LocalMember {
  channel: GroupMemberChannel;
  /** Resolves when the member leaves, is removed, or re-binds to a new channel. */
  gone: Promise<void>;
  release: () => void;
}

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
 *
 * State lives behind `GroupStore` and `Membership` (in-process now; Redis-backed next for
 * multi-node), channels are local to the node holding the member's connection.
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
  readonly #local = new Map<string, Map<string, LocalMember>>();
  readonly #dirty = new Set<string>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #options: Required<Pick<GroupCoordinatorOptions, "sessionTimeoutMs" | "minSessionTimeoutMs" | "maxSessionTimeoutMs" | "rebalanceTimeoutMs">>;
  readonly #onError: (err: unknown, group: string) => void;
  readonly #unlisten: () => void;
  #closed = false;

  constructor(options: GroupCoordinatorOptions) {
    this.engine = options.engine;
    this.clock = options.clock ?? systemClock;
    this.store = options.groupStore ?? new InMemoryGroupStore();
    this.membership = options.membership ?? new Membership({ clock: this.clock });
    this.instrumentation = options.instrumentation ?? new GroupInstrumentation(() => this.clock.now());
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
    this.#onError = options.onError ?? (() => undefined);
    this.#unlisten = this.membership.listen({
      leave: (group, member, reason) => {
        if (reason === "timeout") void this.#removeMember(group, member.id, "timeout").catch((err) => this.#onError(err, group));
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
      this.#bind(group, memberId, request.channel);
      deliverNow = known !== undefined && !changed && state.state === "Stable" && !this.#running.has(group);
      this.instrumentation.emit("group.join", { group, memberId, clientId: request.clientId, node: request.node, members: Object.keys(state.members).length, rejoin: known !== undefined });
      return { memberId, generation: state.generation };
    });
    if (deliverNow) await this.#resync(group, result.memberId);
    else this.#trigger(group);
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
    for (const o of request.offsets) {
      if (typeof o.topic !== "string" || !Number.isSafeInteger(o.partition) || o.partition < 0 || !Number.isSafeInteger(o.offset) || o.offset < 0) {
        throw new TributaryError("BAD_REQUEST", "each committed offset needs a topic, a partition >= 0 and an integer offset >= 0", { group });
      }
    }
    await this.#lock.run(group, async () => {
      const member = (await this.store.load(group))?.members[request.memberId];
      if (!member) {
        throw new TributaryError("UNKNOWN_MEMBER", `member ${request.memberId} is not in group "${group}"; its commit is fenced`, { group, memberId: request.memberId });
      }
      if (request.generation !== member.generation) {
        throw new TributaryError("ILLEGAL_GENERATION", `commit carries generation ${request.generation} but member ${request.memberId} is in generation ${member.generation}`, { group, memberId: request.memberId, generation: request.generation, current: member.generation });
      }
      const owned = new Set(member.owned.map(tpKey));
      for (const o of request.offsets) {
        if (!owned.has(tpKey(o))) {
          throw new TributaryError("PARTITION_NOT_OWNED", `member ${request.memberId} does not own ${o.topic}/${o.partition} in generation ${member.generation}; its commit is fenced`, { group, memberId: request.memberId, topic: o.topic, partition: o.partition });
        }
      }
      await this.membership.heartbeat(group, request.memberId);
      await Promise.all(request.offsets.map((o) => this.engine.commitOffset(group, o.topic, o.partition, o.offset, o.metadata)));
    });
    this.instrumentation.emit("group.commit", { group, memberId: request.memberId, count: request.offsets.length, durationMs: this.clock.now() - started });
  }

  /** Starts a rebalance round (e.g. after a subscribed topic was created or got more partitions). */
  rebalance(group: string): void {
    this.#trigger(group);
  }

  /** Resolves when no rebalance of `group` is running or pending. */
  async settled(group: string): Promise<void> {
    for (;;) {
      const running = this.#running.get(group);
      if (!running) return;
      await running;
    }
  }

  /** Runs the session-timeout sweep now (tests with a ManualClock call it after advancing time). */
  sweep(): Promise<void> {
    return this.membership.sweep();
  }

  // ---- admin -----------------------------------------------------------------------------

  async describeGroup(group: string): Promise<GroupDescription> {
    checkGroupName(group);
    const [state, records, committed] = await Promise.all([this.store.load(group), this.membership.members(group), this.engine.fetchGroupOffsets(group)]);
    if (!state && committed.size === 0) throw new TributaryError("UNKNOWN_GROUP", `group "${group}" has no members and no committed offsets`, { group });
    const identity = new Map<string, MemberRecord>(records.map((r) => [r.id, r]));
    const owners = new Map<string, string>();
    const members: GroupMemberDescription[] = [];
    for (const m of Object.values(state?.members ?? {})) {
      for (const tp of m.owned) owners.set(tpKey(tp), m.memberId);
      const id = identity.get(m.memberId);
      members.push({
        memberId: m.memberId,
        clientId: id?.clientId ?? "",
        user: id?.user ?? null,
        node: id?.node ?? "",
        joinedAt: id?.joinedAt ?? 0,
        lastSeen: id?.lastSeen ?? 0,
        topics: m.topics,
        strategies: m.strategies,
        generation: m.generation,
        assignment: sortTps(m.owned),
        revoking: sortTps(m.revoking),
      });
    }
    members.sort((a, b) => a.joinedAt - b.joinedAt || (a.memberId < b.memberId ? -1 : 1));
    const topics = new Set<string>(committed.keys());
    for (const m of members) for (const t of m.topics) topics.add(t);
    const partitions: GroupPartitionDescription[] = [];
    for (const topic of [...topics].sort()) {
      const numbers = new Set<number>(committed.get(topic)?.keys() ?? []);
      const count = await this.#partitionCount(topic);
      for (let p = 0; p < count; p++) numbers.add(p);
      for (const partition of [...numbers].sort((a, b) => a - b)) {
        let endOffset = 0;
        try {
          endOffset = (await this.engine.offsets(topic, partition)).endOffset;
        } catch (err) {
          if (!isTributaryError(err, "UNKNOWN_TOPIC") && !isTributaryError(err, "UNKNOWN_PARTITION")) throw err;
        }
        const committedOffset = committed.get(topic)?.get(partition)?.offset ?? null;
        partitions.push({ topic, partition, owner: owners.get(tpKey({ topic, partition })) ?? null, committedOffset, endOffset, lag: lagOf(endOffset, committedOffset) });
      }
    }
    return {
      group,
      state: state?.state ?? "Empty",
      generation: state?.generation ?? 0,
      strategy: state?.strategy ?? null,
      members,
      partitions,
      totalLag: partitions.reduce((sum, p) => sum + (p.lag ?? 0), 0),
    };
  }

  /** Groups with members or committed offsets. */
  async listGroups(): Promise<GroupListing[]> {
    const names = new Set([...(await this.store.list()), ...(await this.engine.listGroups())]);
    const out: GroupListing[] = [];
    for (const group of [...names].sort()) {
      const state = await this.store.load(group);
      out.push({ group, state: state?.state ?? "Empty", generation: state?.generation ?? 0, members: Object.keys(state?.members ?? {}).length });
    }
    return out;
  }

  /**
   * Moves the group's committed offsets on `topic` (all partitions, or `partitions`).
   * Only while the group has no members (Kafka semantics): GROUP_NOT_EMPTY otherwise.
   */
  async resetOffsets(group: string, topic: string, to: ResetTarget, partitions?: number[]): Promise<ResetOffsetsResult> {
    this.#checkOpen();
    checkGroupName(group);
    const started = this.clock.now();
    const result = await this.#lock.run(group, async () => {
      const state = await this.store.load(group);
      const members = Object.keys(state?.members ?? {}).length;
      if (members > 0) {
        throw new TributaryError("GROUP_NOT_EMPTY", `group "${group}" has ${members} active member(s); stop its consumers before resetting offsets`, { group, members });
      }
      const count = (await this.engine.describeTopic(topic)).partitions;
      const targets = partitions ?? Array.from({ length: count }, (_, p) => p);
      for (const p of targets) {
        if (!Number.isInteger(p) || p < 0 || p >= count) throw new TributaryError("UNKNOWN_PARTITION", `topic "${topic}" has partitions 0..${count - 1}, not ${p}`, { topic, partition: p });
      }
      const out: ResetOffsetsResult = { group, topic, partitions: [] };
      for (const partition of targets) {
        const previous = (await this.engine.fetchOffset(group, topic, partition))?.offset ?? null;
        const offset = await resolveResetTarget(this.engine, { topic, partition }, to);
        await this.engine.commitOffset(group, topic, partition, offset, "reset-offsets");
        out.partitions.push({ partition, previous, offset });
      }
      return out;
    });
    this.instrumentation.emit("group.commit", { group, memberId: null, count: result.partitions.length, durationMs: this.clock.now() - started });
    return result;
  }

  /** Stops timers; pending rebalances finish without further rounds. */
  close(): void {
    this.#closed = true;
    this.#unlisten();
    this.membership.close();
    for (const members of this.#local.values()) for (const local of members.values()) local.release();
    this.#local.clear();
  }

  // ---- internals -------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw new TributaryError("UNAVAILABLE", "the group coordinator is closed");
  }

  #bind(group: string, memberId: string, channel: GroupMemberChannel): void {
    let members = this.#local.get(group);
    if (!members) this.#local.set(group, (members = new Map()));
    members.get(memberId)?.release(); // a re-bound member's old channel is dead: its pending revokes end now
    let release!: () => void;
    const gone = new Promise<void>((resolve) => (release = resolve));
    members.set(memberId, { channel, gone, release });
  }

  async #removeMember(group: string, memberId: string, reason: LeaveReason): Promise<boolean> {
    const removed = await this.#lock.run(group, async () => {
      const state = await this.store.load(group);
      if (!state?.members[memberId]) return false;
      delete state.members[memberId];
      await this.store.save(state);
      const record = await this.membership.get(group, memberId);
      const local = this.#local.get(group)?.get(memberId);
      this.#local.get(group)?.delete(memberId);
      local?.release();
      if (reason === "timeout") {
        try {
          local?.channel.removed?.(reason);
        } catch {
          // the gateway's problem
        }
      }
      this.instrumentation.emit("group.leave", { group, memberId, clientId: record?.clientId ?? memberId.replace(/-[0-9a-f-]{36}$/, ""), reason, members: Object.keys(state.members).length });
      return true;
    });
    if (removed) this.#trigger(group);
    return removed;
  }

  #trigger(group: string): void {
    if (this.#closed) return;
    this.#dirty.add(group);
    if (this.#running.has(group)) return;
    const run = (async () => {
      while (this.#dirty.has(group) && !this.#closed) {
        this.#dirty.delete(group);
        try {
          await this.#round(group);
        } catch (err) {
          this.#onError(err, group);
          this.clock.setTimeout(() => this.#trigger(group), RETRY_BACKOFF_MS);
          break;
        }
      }
    })().finally(() => this.#running.delete(group));
    this.#running.set(group, run);
  }

  /** One rebalance round: compute the target, revoke what moves, then assign the new generation. */
  async #round(group: string): Promise<void> {
    const started = this.clock.now();
    const plan = await this.#lock.run(group, async () => {
      const state = await this.store.load(group);
      if (!state) return null;
      const members = Object.values(state.members).sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
      if (members.length === 0) {
        await this.store.delete(group);
        this.#local.delete(group);
        return null;
      }
      const strategy = chooseStrategy(members);
      const assigner = this.#assigners.get(strategy)!;
      const counts = new Map<string, number>();
      for (const topic of new Set(members.flatMap((m) => m.topics))) counts.set(topic, await this.#partitionCount(topic));
      const target = assigner.assign({ members: members.map((m) => ({ memberId: m.memberId, topics: m.topics, owned: m.owned })), partitions: counts });
      const revokes = new Map<string, TopicPartition[]>();
      for (const m of members) {
        const keep = new Set((target.get(m.memberId) ?? []).map(tpKey));
        const revoke = assigner.protocol === "eager" ? m.owned : m.owned.filter((tp) => !keep.has(tpKey(tp)));
        m.revoking = sortTps(revoke);
        if (revoke.length > 0) revokes.set(m.memberId, m.revoking);
      }
      state.generation += 1;
      state.state = "Rebalancing";
      state.strategy = strategy;
      await this.store.save(state);
      const generations = new Map(members.map((m) => [m.memberId, m.generation]));
      return { generation: state.generation, strategy, target, revokes, generations };
    });
    if (!plan) return;

    let revokeTimeouts = 0;
    let revoked = 0;
    await Promise.all(
      [...plan.revokes].map(async ([memberId, partitions]) => {
        revoked += partitions.length;
        const outcome = await this.#revoke(group, memberId, plan.generations.get(memberId) ?? 0, partitions);
        if (outcome === "timeout") revokeTimeouts++;
        await this.#lock.run(group, async () => {
          const state = await this.store.load(group);
          const m = state?.members[memberId];
          if (!state || !m) return;
          const gone = new Set(partitions.map(tpKey));
          m.owned = m.owned.filter((tp) => !gone.has(tpKey(tp)));
          m.revoking = m.revoking.filter((tp) => !gone.has(tpKey(tp)));
          await this.store.save(state);
        });
      }),
    );
    if (this.#dirty.has(group) || this.#closed) return; // membership changed meanwhile: the next round re-plans

    await this.#lock.run(group, async () => {
      const state = await this.store.load(group);
      if (!state || state.generation !== plan.generation) return;
      const owner = new Map<string, string>();
      for (const m of Object.values(state.members)) for (const tp of m.owned) owner.set(tpKey(tp), m.memberId);
      const out: Array<{ memberId: string; assignment: MemberAssignment }> = [];
      let assigned = 0;
      for (const m of Object.values(state.members)) {
        const before = new Set(m.owned.map(tpKey));
        // Defensive: never hand out a partition another member still owns.
        const partitions = sortTps((plan.target.get(m.memberId) ?? []).filter((tp) => (owner.get(tpKey(tp)) ?? m.memberId) === m.memberId));
        const addedTps = m.resync ? partitions : partitions.filter((tp) => !before.has(tpKey(tp)));
        assigned += partitions.filter((tp) => !before.has(tpKey(tp))).length;
        const added = await Promise.all(addedTps.map((tp) => resolveStartOffset(this.engine, group, tp, m.reset)));
        m.owned = partitions;
        m.revoking = [];
        m.generation = plan.generation;
        m.resync = false;
        out.push({ memberId: m.memberId, assignment: { group, memberId: m.memberId, generation: plan.generation, strategy: plan.strategy, partitions, added } });
      }
      state.state = "Stable";
      await this.store.save(state);
      for (const { memberId, assignment } of out) this.#deliver(group, memberId, assignment);
      this.instrumentation.emit("group.rebalance", {
        group,
        generation: plan.generation,
        strategy: plan.strategy,
        members: out.length,
        revoked,
        assigned,
        revokeTimeouts,
        durationMs: this.clock.now() - started,
      });
    });
  }

  async #revoke(group: string, memberId: string, generation: number, partitions: TopicPartition[]): Promise<"confirmed" | "gone" | "timeout"> {
    const local = this.#local.get(group)?.get(memberId);
    if (!local) return "gone";
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = this.clock.setTimeout(() => resolve("timeout"), this.#options.rebalanceTimeoutMs)));
    let confirmed: Promise<"confirmed" | "gone">;
    try {
      confirmed = local.channel.revoke({ group, memberId, generation, partitions }).then(
        () => "confirmed" as const,
        () => "gone" as const,
      );
    } catch {
      confirmed = Promise.resolve("gone");
    }
    const outcome = await Promise.race([confirmed, local.gone.then(() => "gone" as const), timeout]);
    timer?.cancel();
    return outcome;
  }

  /** Re-sends a re-bound member its current assignment, every partition with its start offset. */
  async #resync(group: string, memberId: string): Promise<void> {
    await this.#lock.run(group, async () => {
      const state = await this.store.load(group);
      const m = state?.members[memberId];
      if (!state || !m || state.state !== "Stable") return this.#trigger(group);
      const partitions = sortTps(m.owned);
      const added = await Promise.all(partitions.map((tp) => resolveStartOffset(this.engine, group, tp, m.reset)));
      m.resync = false;
      await this.store.save(state);
      this.#deliver(group, memberId, { group, memberId, generation: m.generation, strategy: state.strategy ?? "", partitions, added });
    });
  }

  #deliver(group: string, memberId: string, assignment: MemberAssignment): void {
    const local = this.#local.get(group)?.get(memberId);
    try {
      local?.channel.assign(assignment);
    } catch (err) {
      this.#onError(err, group);
    }
  }
}

function newGroupState(group: string): GroupState {
  return { group, generation: 0, state: "Empty", strategy: null, version: 0, members: {} };
}

/** The first strategy in the preference list of the first member (by memberId) that every member supports. */
function chooseStrategy(members: GroupMemberState[]): string {
  const first = members[0]!;
  return first.strategies.find((s) => members.every((m) => m.strategies.includes(s))) ?? first.strategies[0]!;
}

function checkGroupName(group: string): void {
  if (typeof group !== "string" || !GROUP_NAME.test(group)) {
    throw new TributaryError("BAD_REQUEST", `group name must match ${GROUP_NAME.source}`, { group });
  }
}

