import type { Clock } from "./clock.ts";
import type { GroupMemberChannel, MemberAssignment } from "./coordinator-types.ts";
import type { TopicPartition } from "./types.ts";

interface LocalMember {
  channel: GroupMemberChannel;
  /** Resolves when the member leaves, is removed, or re-binds to a new channel. */
  gone: Promise<void>;
  release: () => void;
}

/**
 * Channels of the members connected to this node, per group (internal to `GroupCoordinator`).
 * A member has at most one live channel: re-binding releases the old one, which ends its
 * pending revokes.
 */
export class MemberChannels {
  readonly #local = new Map<string, Map<string, LocalMember>>();

  bind(group: string, memberId: string, channel: GroupMemberChannel): void {
    let members = this.#local.get(group);
    if (!members) this.#local.set(group, (members = new Map()));
    members.get(memberId)?.release(); // a re-bound member's old channel is dead: its pending revokes end now
    let release!: () => void;
    const gone = new Promise<void>((resolve) => (release = resolve));
    members.set(memberId, { channel, gone, release });
  }

  /** Forgets the member's channel (its pending revokes end) and returns it. */
  unbind(group: string, memberId: string): GroupMemberChannel | undefined {
    const local = this.#local.get(group)?.get(memberId);
    this.#local.get(group)?.delete(memberId);
    local?.release();
    return local?.channel;
  }

  /** Forgets an emptied group. */
  dropGroup(group: string): void {
    this.#local.delete(group);
  }

  /** Releases every channel (coordinator closed). */
  releaseAll(): void {
    for (const members of this.#local.values()) for (const local of members.values()) local.release();
    this.#local.clear();
  }

  /**
   * Asks the member to give up `partitions`: "confirmed" when its revoke resolves, "gone"
   * when it has no channel here, the revoke fails or the member leaves, "timeout" after
   * `timeoutMs`.
   */
  async revoke(
    group: string,
    memberId: string,
    generation: number,
    partitions: TopicPartition[],
    clock: Clock,
    timeoutMs: number,
  ): Promise<"confirmed" | "gone" | "timeout"> {
    const local = this.#local.get(group)?.get(memberId);
    if (!local) return "gone";
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = clock.setTimeout(() => resolve("timeout"), timeoutMs)));
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

  /** Hands the member its assignment, if its channel is here; a throwing channel goes to `onError`. */
  deliver(group: string, memberId: string, assignment: MemberAssignment, onError: (err: unknown, group: string) => void): void {
    const local = this.#local.get(group)?.get(memberId);
    try {
      local?.channel.assign(assignment);
    } catch (err) {
      onError(err, group);
    }
  }
}
