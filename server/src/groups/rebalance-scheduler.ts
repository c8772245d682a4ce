import type { LogEngine } from "../log/log-engine.ts";
import type { PartitionAssigner } from "./assigners/index.ts";
import type { Clock } from "./clock.ts";
import type { MemberAssignment } from "./coordinator-types.ts";
import type { GroupMemberState, GroupStore } from "./group-store.ts";
import type { GroupInstrumentation } from "./instrumentation.ts";
import type { KeyedMutex } from "./keyed-mutex.ts";
import type { MemberChannels } from "./member-channels.ts";
import { resolveStartOffset } from "./offsets.ts";
import { sortTps, tpKey, type TopicPartition } from "./types.ts";

const RETRY_BACKOFF_MS = 1000;

export interface RebalanceSchedulerDeps {
  engine: LogEngine;
  store: GroupStore;
  clock: Clock;
  instrumentation: GroupInstrumentation;
  /** The coordinator's per-group lock (shared with joins, commits and admin). */
  lock: KeyedMutex;
  assigners: Map<string, PartitionAssigner>;
  partitionCount: (topic: string) => Promise<number>;
  channels: MemberChannels;
  rebalanceTimeoutMs: number;
  onError: (err: unknown, group: string) => void;
  isClosed: () => boolean;
}

/**
 * Rebalance rounds of `GroupCoordinator` (internal to it): one runner per group, so rounds of
 * a group never overlap; a trigger during a round marks the group dirty and another round
 * follows. A round plans the target with the group's strategy and bumps the generation,
 * revokes what moves (eager: everything) and waits for each revoke (confirmed, member gone,
 * or rebalance timeout), then assigns the new generation, unless membership changed meanwhile.
 */
export class RebalanceScheduler {
  readonly #deps: RebalanceSchedulerDeps;
  readonly #dirty = new Set<string>();
  readonly #running = new Map<string, Promise<void>>();

  constructor(deps: RebalanceSchedulerDeps) {
    this.#deps = deps;
  }

  /** Whether a round of `group` is running or pending. */
  isRunning(group: string): boolean {
    return this.#running.has(group);
  }

  /** Resolves when no rebalance of `group` is running or pending. */
  async settled(group: string): Promise<void> {
    for (;;) {
      const running = this.#running.get(group);
      if (!running) return;
      await running;
    }
  }

  trigger(group: string): void {
    const d = this.#deps;
    if (d.isClosed()) return;
    this.#dirty.add(group);
    if (this.#running.has(group)) return;
    const run = (async () => {
      while (this.#dirty.has(group) && !d.isClosed()) {
        this.#dirty.delete(group);
        try {
          await this.#round(group);
        } catch (err) {
          d.onError(err, group);
          d.clock.setTimeout(() => this.trigger(group), RETRY_BACKOFF_MS);
          break;
        }
      }
    })().finally(() => this.#running.delete(group));
    this.#running.set(group, run);
  }

  /** Re-sends a re-bound member its current assignment, every partition with its start offset. */
  async resync(group: string, memberId: string): Promise<void> {
    const d = this.#deps;
    await d.lock.run(group, async () => {
      const state = await d.store.load(group);
      const m = state?.members[memberId];
      if (!state || !m || state.state !== "Stable") return this.trigger(group);
      const partitions = sortTps(m.owned);
      const added = await Promise.all(partitions.map((tp) => resolveStartOffset(d.engine, group, tp, m.reset)));
      m.resync = false;
      await d.store.save(state);
      d.channels.deliver(group, memberId, { group, memberId, generation: m.generation, strategy: state.strategy ?? "", partitions, added });
    });
  }

  /** One rebalance round: compute the target, revoke what moves, then assign the new generation. */
  async #round(group: string): Promise<void> {
    const d = this.#deps;
    const started = d.clock.now();
    const plan = await d.lock.run(group, async () => {
      const state = await d.store.load(group);
      if (!state) return null;
      const members = Object.values(state.members).sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
      if (members.length === 0) {
        await d.store.delete(group);
        d.channels.dropGroup(group);
        return null;
      }
      const strategy = chooseStrategy(members);
      const assigner = d.assigners.get(strategy)!;
      const counts = new Map<string, number>();
      for (const topic of new Set(members.flatMap((m) => m.topics))) counts.set(topic, await d.partitionCount(topic));
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
      await d.store.save(state);
      const generations = new Map(members.map((m) => [m.memberId, m.generation]));
      return { generation: state.generation, strategy, target, revokes, generations };
    });
    if (!plan) return;

    let revokeTimeouts = 0;
    let revoked = 0;
    await Promise.all(
      [...plan.revokes].map(async ([memberId, partitions]) => {
        revoked += partitions.length;
        const outcome = await d.channels.revoke(group, memberId, plan.generations.get(memberId) ?? 0, partitions, d.clock, d.rebalanceTimeoutMs);
        if (outcome === "timeout") revokeTimeouts++;
        await d.lock.run(group, async () => {
          const state = await d.store.load(group);
          const m = state?.members[memberId];
          if (!state || !m) return;
          const gone = new Set(partitions.map(tpKey));
          m.owned = m.owned.filter((tp) => !gone.has(tpKey(tp)));
          m.revoking = m.revoking.filter((tp) => !gone.has(tpKey(tp)));
          await d.store.save(state);
        });
      }),
    );
    if (this.#dirty.has(group) || d.isClosed()) return; // membership changed meanwhile: the next round re-plans

    await d.lock.run(group, async () => {
      const state = await d.store.load(group);
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
        const added = await Promise.all(addedTps.map((tp) => resolveStartOffset(d.engine, group, tp, m.reset)));
        m.owned = partitions;
        m.revoking = [];
        m.generation = plan.generation;
        m.resync = false;
        out.push({ memberId: m.memberId, assignment: { group, memberId: m.memberId, generation: plan.generation, strategy: plan.strategy, partitions, added } });
      }
      state.state = "Stable";
      await d.store.save(state);
      for (const { memberId, assignment } of out) d.channels.deliver(group, memberId, assignment);
      d.instrumentation.emit("group.rebalance", {
        group,
        generation: plan.generation,
        strategy: plan.strategy,
        members: out.length,
        revoked,
        assigned,
        revokeTimeouts,
        durationMs: d.clock.now() - started,
      });
    });
  }
}

/** The first strategy in the preference list of the first member (by memberId) that every member supports. */
function chooseStrategy(members: GroupMemberState[]): string {
  const first = members[0]!;
  return first.strategies.find((s) => members.every((m) => m.strategies.includes(s))) ?? first.strategies[0]!;
}
