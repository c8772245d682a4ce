/**
 * Test support for the group layer's unit tests (server/src/groups/*.test.ts): a real
 * FileLogEngine in a temp dir and a recording member channel. Test-only: it lives outside
 * server/src so nothing in production can import it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FileLogEngine } from "../../server/src/log/file/file-log-engine.ts";
import type { GroupMemberChannel, MemberAssignment, MemberRevocation } from "../../server/src/groups/group-coordinator.ts";
import type { LeaveReason } from "../../server/src/groups/instrumentation.ts";
import { tpKey, type TopicPartition } from "../../server/src/groups/types.ts";
import { waitFor as waitUntil } from "./wait.ts";

export interface TempEngine {
  engine: FileLogEngine;
  cleanup(): Promise<void>;
}

export async function openTempEngine(): Promise<TempEngine> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-groups-"));
  const engine = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0 });
  return {
    engine,
    async cleanup() {
      await engine.close().catch(() => undefined);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A member's side of the protocol as a gateway would drive it: tracks which partitions the
 * member believes it owns, confirms revokes (after an optional hook, e.g. a commit), or
 * never confirms them once `crashed`.
 */
export class RecordingChannel implements GroupMemberChannel {
  readonly assignments: MemberAssignment[] = [];
  readonly revocations: MemberRevocation[] = [];
  readonly removedReasons: LeaveReason[] = [];
  /** Partitions the member believes it owns right now. */
  readonly owned = new Set<string>();
  generation = 0;
  crashed = false;
  onRevoke: ((revocation: MemberRevocation) => Promise<void> | void) | null = null;
  onAssign: ((assignment: MemberAssignment) => void) | null = null;

  assign(assignment: MemberAssignment): void {
    if (this.crashed) return;
    this.assignments.push(assignment);
    this.generation = assignment.generation;
    this.owned.clear();
    for (const tp of assignment.partitions) this.owned.add(tpKey(tp));
    this.onAssign?.(assignment);
  }

  async revoke(revocation: MemberRevocation): Promise<void> {
    this.revocations.push(revocation);
    if (this.crashed) return new Promise<void>(() => undefined);
    await this.onRevoke?.(revocation);
    for (const tp of revocation.partitions) this.owned.delete(tpKey(tp));
  }

  removed(reason: LeaveReason): void {
    this.removedReasons.push(reason);
  }

  partitions(): TopicPartition[] {
    return this.assignments.at(-1)?.partitions ?? [];
  }
}

/** `waitFor` of test/helpers/wait.ts with this file's argument order: polls `check` until true, fails after `timeoutMs` naming `what`. */
export function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  return waitUntil(check, { timeoutMs, what });
}
