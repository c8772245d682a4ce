import { TributaryError, isTributaryError } from "../errors.ts";
import type { LogEngine } from "../log/log-engine.ts";
import type { Clock } from "./clock.ts";
import type { GroupDescription, GroupListing, GroupMemberDescription, GroupPartitionDescription, ResetOffsetsResult } from "./coordinator-types.ts";
import { checkGroupName } from "./group-name.ts";
import type { GroupStore } from "./group-store.ts";
import type { GroupInstrumentation } from "./instrumentation.ts";
import type { KeyedMutex } from "./keyed-mutex.ts";
import type { MemberRecord, Membership } from "./membership.ts";
import { lagOf, resolveResetTarget, type ResetTarget } from "./offsets.ts";
import { sortTps, tpKey } from "./types.ts";

export interface GroupAdminDeps {
  engine: LogEngine;
  store: GroupStore;
  membership: Membership;
  clock: Clock;
  instrumentation: GroupInstrumentation;
  /** The coordinator's per-group lock (shared with joins, commits and rebalances). */
  lock: KeyedMutex;
  partitionCount: (topic: string) => Promise<number>;
}

/** Admin operations of `GroupCoordinator` (internal to it): describe, list, reset offsets. */
export class GroupAdmin {
  readonly #deps: GroupAdminDeps;

  constructor(deps: GroupAdminDeps) {
    this.#deps = deps;
  }

  async describe(group: string): Promise<GroupDescription> {
    const d = this.#deps;
    checkGroupName(group);
    const [state, records, committed] = await Promise.all([d.store.load(group), d.membership.members(group), d.engine.fetchGroupOffsets(group)]);
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
      const count = await d.partitionCount(topic);
      for (let p = 0; p < count; p++) numbers.add(p);
      for (const partition of [...numbers].sort((a, b) => a - b)) {
        let endOffset = 0;
        try {
          endOffset = (await d.engine.offsets(topic, partition)).endOffset;
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
  async list(): Promise<GroupListing[]> {
    const d = this.#deps;
    const names = new Set([...(await d.store.list()), ...(await d.engine.listGroups())]);
    const out: GroupListing[] = [];
    for (const group of [...names].sort()) {
      const state = await d.store.load(group);
      out.push({ group, state: state?.state ?? "Empty", generation: state?.generation ?? 0, members: Object.keys(state?.members ?? {}).length });
    }
    return out;
  }

  /** Moves the group's committed offsets on `topic`; GROUP_NOT_EMPTY while it has members. */
  async resetOffsets(group: string, topic: string, to: ResetTarget, partitions?: number[]): Promise<ResetOffsetsResult> {
    const d = this.#deps;
    checkGroupName(group);
    const started = d.clock.now();
    const result = await d.lock.run(group, async () => {
      const state = await d.store.load(group);
      const members = Object.keys(state?.members ?? {}).length;
      if (members > 0) {
        throw new TributaryError("GROUP_NOT_EMPTY", `group "${group}" has ${members} active member(s); stop its consumers before resetting offsets`, { group, members });
      }
      const count = (await d.engine.describeTopic(topic)).partitions;
      const targets = partitions ?? Array.from({ length: count }, (_, p) => p);
      for (const p of targets) {
        if (!Number.isInteger(p) || p < 0 || p >= count) throw new TributaryError("UNKNOWN_PARTITION", `topic "${topic}" has partitions 0..${count - 1}, not ${p}`, { topic, partition: p });
      }
      const out: ResetOffsetsResult = { group, topic, partitions: [] };
      for (const partition of targets) {
        const previous = (await d.engine.fetchOffset(group, topic, partition))?.offset ?? null;
        const { offset, epoch } = await resolveResetTarget(d.engine, { topic, partition }, to);
        await d.engine.commitOffset(group, topic, partition, offset, { epoch, metadata: "reset-offsets" });
        out.partitions.push({ partition, previous, offset });
      }
      return out;
    });
    d.instrumentation.emit("group.commit", { group, memberId: null, count: result.partitions.length, durationMs: d.clock.now() - started });
    return result;
  }
}
