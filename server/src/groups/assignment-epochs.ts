import type { GroupMemberChannel, MemberAssignment } from "./coordinator-types.ts";
import type { GroupInstrumentation } from "./instrumentation.ts";
import { tpKey, type TopicPartition } from "./types.ts";

/**
 * The epoch of every partition in each member's latest assignment, as the coordinator
 * handed it out (internal to `GroupCoordinator`). A member consumes a partition from the
 * start position of its `assign`, so what it processed, and so what it commits, belongs to
 * that epoch's history: a commit that carries no epoch gets this one, whatever the
 * partition's epoch is by the time the commit arrives (a commit from before a rewrite must
 * read as stale, never as a position of the new history).
 *
 * It sees every assignment on its way to the member's channel (`track` wraps the channel at
 * join), which is also where the one report of a stale committed position is made, the same
 * for every protocol: a `group.stale_epoch` event (counted, logged by the node).
 */
export class AssignmentEpochs {
  readonly #instrumentation: GroupInstrumentation;
  /** `group \0 memberId` → tpKey → epoch of the partition's start. */
  readonly #members = new Map<string, Map<string, string>>();

  constructor(instrumentation: GroupInstrumentation) {
    this.#instrumentation = instrumentation;
  }

  /** The channel to bind for a (re-)joining member: its assignments are recorded, then passed on. */
  track(group: string, memberId: string, channel: GroupMemberChannel): GroupMemberChannel {
    const tracked: GroupMemberChannel = {
      assign: (a) => {
        this.#record(group, memberId, a);
        channel.assign(a);
      },
      revoke: (r) => channel.revoke(r),
    };
    if (channel.removed) tracked.removed = (reason) => channel.removed!(reason);
    return tracked;
  }

  /** Epoch of `tp` in the member's latest assignment; undefined if it was not assigned here. */
  epochOf(group: string, memberId: string, tp: TopicPartition): string | undefined {
    return this.#members.get(memberKey(group, memberId))?.get(tpKey(tp));
  }

  /** The member left or was removed. */
  forget(group: string, memberId: string): void {
    this.#members.delete(memberKey(group, memberId));
  }

  #record(group: string, memberId: string, a: MemberAssignment): void {
    const key = memberKey(group, memberId);
    const previous = this.#members.get(key);
    const epochs = new Map<string, string>();
    for (const tp of a.partitions) {
      const epoch = previous?.get(tpKey(tp));
      if (epoch !== undefined) epochs.set(tpKey(tp), epoch); // kept partitions keep their start's epoch
    }
    for (const p of a.added) {
      epochs.set(tpKey(p), p.epoch);
      if (p.reset?.reason !== "STALE_EPOCH") continue;
      this.#instrumentation.emit("group.stale_epoch", {
        group,
        memberId,
        topic: p.topic,
        partition: p.partition,
        committedEpoch: p.reset.requestedEpoch,
        committedOffset: p.reset.requested,
        epoch: p.epoch,
        offset: p.offset,
        policy: p.reset.policy,
      });
    }
    this.#members.set(key, epochs);
  }
}

function memberKey(group: string, memberId: string): string {
  return `${group}\u0000${memberId}`;
}
