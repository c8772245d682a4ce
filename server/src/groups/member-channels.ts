import { isTributaryError } from "../errors.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import type { GroupMemberChannel, MemberAssignment, MemberRevocation } from "./coordinator-types.ts";
import type { GroupErrorHandler } from "./group-errors.ts";

/** How a revoke ended: the member confirmed it, the member is gone (left, timed out, coordinator closed), or the rebalance timeout passed. */
export type RevokeOutcome = "confirmed" | "gone" | "timeout";

/** Backoff of a revoke its channel could not deliver (ms): doubled from MIN up to MAX. */
const RESEND_MIN_MS = 50;
const RESEND_MAX_MS = 2000;

interface PendingRevoke {
  revocation: MemberRevocation;
  settle(outcome: RevokeOutcome): void;
  clock: Clock;
  /** Deliveries that failed so far (the backoff exponent). */
  failures: number;
  resend?: TimerHandle;
}

interface LocalMember {
  /** The member's current channel (the latest bind). */
  channel: GroupMemberChannel;
  /** Revokes the member has not confirmed yet; a re-bound channel gets them again. */
  revokes: Set<PendingRevoke>;
}

/**
 * Channels of the members connected to this node, per group (internal to `GroupCoordinator`).
 *
 * A member has one current channel. A revoke is settled only by the member confirming it
 * (on any of its channels), by the member leaving or timing out (`unbind`), or by the
 * rebalance timeout. A channel that cannot deliver it (the member's connection dropped, its
 * node is unreachable) rejects, and the revoke stays pending: it is sent again with backoff
 * to the member's current channel, and at once to the new channel when the member re-binds
 * after a reconnect, so the member commits what it processed before its partitions move.
 */
export class MemberChannels {
  readonly #local = new Map<string, Map<string, LocalMember>>();
  readonly #onError: GroupErrorHandler;

  constructor(onError: GroupErrorHandler) {
    this.#onError = onError;
  }

  /** Binds the member's channel; a re-bound member gets its pending revokes again on the new channel. */
  bind(group: string, memberId: string, channel: GroupMemberChannel): void {
    let members = this.#local.get(group);
    if (!members) this.#local.set(group, (members = new Map()));
    const known = members.get(memberId);
    if (!known) {
      members.set(memberId, { channel, revokes: new Set() });
      return;
    }
    known.channel = channel;
    for (const pending of known.revokes) this.#send(group, known, pending);
  }

  /** Forgets the member's channel (it left or timed out: its pending revokes end as "gone") and returns it. */
  unbind(group: string, memberId: string): GroupMemberChannel | undefined {
    const local = this.#local.get(group)?.get(memberId);
    this.#local.get(group)?.delete(memberId);
    if (local) for (const pending of [...local.revokes]) pending.settle("gone");
    return local?.channel;
  }

  /** Forgets an emptied group. */
  dropGroup(group: string): void {
    for (const memberId of [...(this.#local.get(group)?.keys() ?? [])]) this.unbind(group, memberId);
    this.#local.delete(group);
  }

  /** Ends every pending revoke (coordinator closed). */
  releaseAll(): void {
    for (const group of [...this.#local.keys()]) this.dropGroup(group);
  }

  /**
   * Asks the member to give up `partitions` and waits: "confirmed" when it confirms (after
   * committing), "gone" when it has no channel here or leaves / times out meanwhile,
   * "timeout" after `timeoutMs`. A disconnected member is waited for: its revoke is sent
   * again when it re-binds within its session timeout.
   */
  revoke(group: string, memberId: string, generation: number, partitions: MemberRevocation["partitions"], clock: Clock, timeoutMs: number): Promise<RevokeOutcome> {
    const local = this.#local.get(group)?.get(memberId);
    if (!local) return Promise.resolve("gone");
    return new Promise<RevokeOutcome>((resolve) => {
      let timer: { cancel(): void } | undefined;
      const pending: PendingRevoke = {
        revocation: { group, memberId, generation, partitions },
        settle: (outcome) => {
          if (!local.revokes.delete(pending)) return; // settled already
          timer?.cancel();
          pending.resend?.cancel();
          resolve(outcome);
        },
        clock,
        failures: 0,
      };
      local.revokes.add(pending);
      timer = clock.setTimeout(() => pending.settle("timeout"), timeoutMs);
      this.#send(group, local, pending);
    });
  }

  /** Hands the member its assignment, if its channel is here; a throwing channel is reported. */
  deliver(group: string, memberId: string, assignment: MemberAssignment): void {
    const local = this.#local.get(group)?.get(memberId);
    try {
      local?.channel.assign(assignment);
    } catch (err) {
      this.#onError(err, group, "group-channel");
    }
  }

  /**
   * Sends a pending revoke to the member's current channel. Its confirmation settles the
   * revoke. A channel that fails is asked again after a backoff while it is still the
   * member's channel (a re-bind sends at once to the new one); a failure that is not a
   * retriable TributaryError (the member unreachable for now) is also reported.
   */
  #send(group: string, local: LocalMember, pending: PendingRevoke): void {
    pending.resend?.cancel();
    pending.resend = undefined;
    const channel = local.channel;
    let answer: Promise<void>;
    try {
      answer = channel.revoke(pending.revocation);
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      () => pending.settle("confirmed"),
      (err: unknown) => {
        if (!local.revokes.has(pending)) return;
        if (!(isTributaryError(err) && err.retriable)) this.#onError(err, group, "group-channel");
        if (local.channel !== channel) return; // re-bound meanwhile: sent to the new channel already
        const delay = Math.min(RESEND_MAX_MS, RESEND_MIN_MS * 2 ** pending.failures++);
        pending.resend = pending.clock.setTimeout(() => {
          if (local.revokes.has(pending)) this.#send(group, local, pending);
        }, delay);
      },
    );
  }
}
