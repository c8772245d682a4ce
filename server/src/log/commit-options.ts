import { TributaryError } from "../errors.ts";
import type { CommitOptions } from "./log-engine.ts";

/** Longest epoch a commit may carry (engine epochs are 16 hex digits; clients echo them). */
export const MAX_COMMIT_EPOCH_LENGTH = 128;

/** A commit after validation: what every engine stores with the offset. */
export interface ValidCommit {
  offset: number;
  epoch: string | null;
  metadata: string;
}

/**
 * Engines' shared commit rules: a non-empty group, an integer offset >= 0, an epoch that is
 * absent/null (unknown) or a non-empty string of at most MAX_COMMIT_EPOCH_LENGTH characters,
 * metadata a string. BAD_REQUEST otherwise.
 */
export function validateCommit(group: unknown, topic: string, partition: number, offset: unknown, options: CommitOptions | undefined): ValidCommit {
  if (typeof group !== "string" || group.length === 0) throw new TributaryError("BAD_REQUEST", "group must be a non-empty string", { group });
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
    throw new TributaryError("BAD_REQUEST", `committed offset must be a non-negative integer, got ${String(offset)}`, { group, topic, partition, offset });
  }
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TributaryError("BAD_REQUEST", "commit options must be an object {epoch?, metadata?}", { group, topic, partition });
  }
  const epoch = options?.epoch ?? null;
  if (epoch !== null && (typeof epoch !== "string" || epoch.length === 0 || epoch.length > MAX_COMMIT_EPOCH_LENGTH)) {
    throw new TributaryError("BAD_REQUEST", `a committed epoch must be a non-empty string of at most ${MAX_COMMIT_EPOCH_LENGTH} characters, or null`, { group, topic, partition });
  }
  const metadata = options?.metadata ?? "";
  if (typeof metadata !== "string") throw new TributaryError("BAD_REQUEST", "metadata must be a string", { group, topic, partition });
  return { offset, epoch, metadata };
}
