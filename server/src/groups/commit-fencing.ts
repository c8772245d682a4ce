import { TributaryError } from "../errors.ts";
import { MAX_COMMIT_EPOCH_LENGTH } from "../log/commit-options.ts";
import type { CommitRequest } from "./coordinator-types.ts";
import type { GroupMemberState } from "./group-store.ts";
import { tpKey } from "./types.ts";

/** Fails BAD_REQUEST unless every offset of a commit names a topic, a partition >= 0, an integer offset >= 0 and, if any, a non-empty epoch. */
export function validateCommitOffsets(group: string, request: CommitRequest): void {
  for (const o of request.offsets) {
    if (typeof o.topic !== "string" || !Number.isSafeInteger(o.partition) || o.partition < 0 || !Number.isSafeInteger(o.offset) || o.offset < 0) {
      throw new TributaryError("BAD_REQUEST", "each committed offset needs a topic, a partition >= 0 and an integer offset >= 0", { group });
    }
    if (o.epoch !== undefined && (typeof o.epoch !== "string" || o.epoch.length === 0 || o.epoch.length > MAX_COMMIT_EPOCH_LENGTH)) {
      throw new TributaryError("BAD_REQUEST", `a committed epoch must be a non-empty string of at most ${MAX_COMMIT_EPOCH_LENGTH} characters`, { group, topic: o.topic, partition: o.partition });
    }
  }
}

/**
 * The commit fence (call under the group's lock): accepted only from a current member,
 * carrying the generation of its latest assignment, for partitions it owns (revoking ones
 * included); otherwise UNKNOWN_MEMBER, ILLEGAL_GENERATION or PARTITION_NOT_OWNED.
 */
export function assertCommitAllowed(group: string, member: GroupMemberState | undefined, request: CommitRequest): void {
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
}
