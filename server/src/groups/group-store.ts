import type { OffsetResetPolicy, TopicPartition } from "./types.ts";

/**
 * Where the coordinator keeps each group's state (generation, strategy, members'
 * subscriptions and ownership). Member identity and liveness live in the Membership
 * (membership.ts); committed offsets live in the LogEngine.
 *
 * `InMemoryGroupStore` serves the single node (file engine). Multi-node (Redis engine) gets
 * a Redis-backed GroupStore next: one key per group holding this JSON, written with a
 * compare-and-set on `version` (Lua) so coordinators on several nodes can share a group;
 * the coordinator's per-group lock then becomes a Redis lease. Nothing above this
 * interface changes for that, which is why every method is async and `GroupState` is a
 * plain JSON-serialisable value.
 *
 * Guarantees: `load` returns a copy (mutating it changes nothing until `save`); `save`
 * replaces the whole state atomically; callers serialise writes to one group (the
 * coordinator holds its per-group lock around load → mutate → save).
 */
export interface GroupStore {
  load(group: string): Promise<GroupState | null>;
  save(state: GroupState): Promise<void>;
  delete(group: string): Promise<void>;
  /** Groups that have state (i.e. members), sorted. */
  list(): Promise<string[]>;
}

/** "Empty": no members. "Rebalancing": a new generation is being assigned. "Stable": every member has its assignment. */
export type GroupStateName = "Empty" | "Rebalancing" | "Stable";

export interface GroupState {
  group: string;
  /** Increments on every rebalance round; 0 before the first one. */
  generation: number;
  state: GroupStateName;
  /** Strategy of the current generation (null before the first rebalance). */
  strategy: string | null;
  /** Bumped on every save (the CAS token of a shared store). */
  version: number;
  members: Record<string, GroupMemberState>;
}

export interface GroupMemberState {
  memberId: string;
  topics: string[];
  /** Strategies the member supports, in preference order. */
  strategies: string[];
  reset: OffsetResetPolicy;
  /** Generation of the last assignment delivered to this member (0 = none yet); its commits must carry it. */
  generation: number;
  /** Partitions the member owns, including those being revoked until the revoke is confirmed. */
  owned: TopicPartition[];
  /** The part of `owned` being revoked right now. */
  revoking: TopicPartition[];
  /** The member re-bound after a reconnect: its next assignment re-sends every partition with start offsets. */
  resync: boolean;
}

export class InMemoryGroupStore implements GroupStore {
  readonly #groups = new Map<string, GroupState>();

  async load(group: string): Promise<GroupState | null> {
    const state = this.#groups.get(group);
    return state ? structuredClone(state) : null;
  }

  async save(state: GroupState): Promise<void> {
    this.#groups.set(state.group, structuredClone({ ...state, version: state.version + 1 }));
  }

  async delete(group: string): Promise<void> {
    this.#groups.delete(group);
  }

  async list(): Promise<string[]> {
    return [...this.#groups.keys()].sort();
  }
}
