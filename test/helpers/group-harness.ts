/** Test support for the group layer (used by *.test.ts only): a real FileLogEngine in a temp dir and a recording member channel. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FileLogEngine } from "../log/file/file-log-engine.ts";
import type { GroupMemberChannel, MemberAssignment, MemberRevocation } from "./group-coordinator.ts";
import type { LeaveReason } from "./instrumentation.ts";
import { tpKey, type TopicPartition } from "./types.ts";

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

/** Waits until `check` returns true (polling), or fails after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
