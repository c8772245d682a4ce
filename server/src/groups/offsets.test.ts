import fs from "node:fs";
import { waitFor } from "../../../test/helpers/wait.ts";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileLogEngine } from "../log/file/file-log-engine.ts";
import { GroupCoordinator, type GroupMemberChannel, type MemberAssignment } from "./group-coordinator.ts";
import type { GroupInstrumentationEvent } from "./instrumentation.ts";
import { resolveStartOffset } from "./offsets.ts";

const enc = new TextEncoder();
let dataDir: string;
let engine: FileLogEngine;
let coordinator: GroupCoordinator | undefined;

beforeEach(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tributary-epochs-"));
  engine = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0 });
});

afterEach(async () => {
  coordinator?.close();
  coordinator = undefined;
  await engine.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function produce(topic: string, n: number): Promise<void> {
  await engine.append(topic, 0, Array.from({ length: n }, (_, i) => ({ key: null, value: enc.encode(`v${i}`) })));
}

/** Re-creates `topic` (1 partition) with `n` records: a new history under a new epoch. */
async function recreate(topic: string, n: number): Promise<string> {
  await engine.deleteTopic(topic);
  await engine.createTopic(topic, { partitions: 1 });
  await produce(topic, n);
  return (await engine.offsets(topic, 0)).epoch;
}

class Channel implements GroupMemberChannel {
  readonly assignments: MemberAssignment[] = [];
  assign(a: MemberAssignment): void {
    this.assignments.push(a);
  }
  async revoke(): Promise<void> {}
}

const until = (check: () => boolean, what: string): Promise<void> => waitFor(check, { timeoutMs: 5000, what, intervalMs: 5 });

describe("start positions carry epochs", () => {
  it("uses-a-commit-of-the-current-epoch-or-of-unknown-epoch-and-resets-a-commit-of-another-epoch-by-policy", async () => {
    await engine.createTopic("orders", { partitions: 1 });
    await produce("orders", 10);
    const e1 = (await engine.offsets("orders", 0)).epoch;
    const tp = { topic: "orders", partition: 0 };
    await engine.commitOffset("g", "orders", 0, 4, { epoch: e1 });
    expect(await resolveStartOffset(engine, "g", tp, "earliest")).toEqual({ ...tp, offset: 4, epoch: e1, committed: true });
    await engine.commitOffset("g", "orders", 0, 6); // committed without an epoch (older code): trusted when in range
    expect(await resolveStartOffset(engine, "g", tp, "earliest")).toEqual({ ...tp, offset: 6, epoch: e1, committed: true });
    await engine.commitOffset("g", "orders", 0, 7, { epoch: "before-the-rewrite" });
    const stale = { reason: "STALE_EPOCH", requested: 7, requestedEpoch: "before-the-rewrite" };
    expect(await resolveStartOffset(engine, "g", tp, "earliest")).toEqual({ ...tp, offset: 0, epoch: e1, committed: false, reset: { ...stale, policy: "earliest" } });
    expect(await resolveStartOffset(engine, "g", tp, "latest")).toEqual({ ...tp, offset: 10, epoch: e1, committed: false, reset: { ...stale, policy: "latest" } });
    expect(await resolveStartOffset(engine, "g", tp, "error")).toEqual({ ...tp, offset: 10, epoch: e1, committed: false, reset: { ...stale, policy: "error" } });
    await engine.commitOffset("g", "orders", 0, 11, { epoch: e1 });
    expect((await resolveStartOffset(engine, "g", tp, "earliest")).reset).toEqual({ reason: "OFFSET_OUT_OF_RANGE", requested: 11, requestedEpoch: e1, policy: "earliest" });
    expect(await resolveStartOffset(engine, "other", tp, "earliest")).toEqual({ ...tp, offset: 0, epoch: e1, committed: false }); // no commit: no reset to report
  });

  it("a-commit-without-epoch-gets-the-assignments-epoch-so-a-commit-from-before-a-rewrite-reads-as-stale-and-is-reported", async () => {
    await engine.createTopic("orders", { partitions: 1 });
    await produce("orders", 10);
    const e1 = (await engine.offsets("orders", 0)).epoch;
    coordinator = new GroupCoordinator({ engine });
    const events: GroupInstrumentationEvent<"group.stale_epoch">[] = [];
    coordinator.instrumentation.on("group.stale_epoch", (e) => events.push(e));

    const a = new Channel();
    const { memberId } = await coordinator.join("g", { clientId: "a", node: "n1", topics: ["orders"], reset: "earliest", channel: a });
    await until(() => a.assignments.length === 1, "assignment");
    const generation = a.assignments[0]!.generation;
    expect(a.assignments[0]!.added).toEqual([{ topic: "orders", partition: 0, offset: 0, epoch: e1, committed: false }]);
    await coordinator.commit("g", { memberId, generation, offsets: [{ topic: "orders", partition: 0, offset: 4 }] });
    expect(await engine.fetchOffset("g", "orders", 0)).toMatchObject({ offset: 4, epoch: e1 });

    // The topic is re-created while the member still holds the partition; it commits what it processed of the old history.
    const e2 = await recreate("orders", 8);
    await coordinator.commit("g", { memberId, generation, offsets: [{ topic: "orders", partition: 0, offset: 6 }] });
    expect(await engine.fetchOffset("g", "orders", 0)).toMatchObject({ offset: 6, epoch: e1 }); // not e2: offset 6 of e2 names other records
    await coordinator.leave("g", memberId);

    const b = new Channel();
    const joined = await coordinator.join("g", { clientId: "b", node: "n1", topics: ["orders"], reset: "earliest", channel: b });
    await until(() => b.assignments.length === 1, "assignment of b");
    expect(b.assignments[0]!.added).toEqual([
      { topic: "orders", partition: 0, offset: 0, epoch: e2, committed: false, reset: { reason: "STALE_EPOCH", requested: 6, requestedEpoch: e1, policy: "earliest" } },
    ]);
    expect(events.map((e) => e.payload)).toEqual([
      { group: "g", memberId: joined.memberId, topic: "orders", partition: 0, committedEpoch: e1, committedOffset: 6, epoch: e2, offset: 0, policy: "earliest" },
    ]);
    expect(coordinator.instrumentation.counts()["group.stale_epoch"]).toBe(1);

    // b's commits carry e2 (its assignment's), and an explicit epoch is stored as given.
    await coordinator.commit("g", { memberId: joined.memberId, generation: b.assignments[0]!.generation, offsets: [{ topic: "orders", partition: 0, offset: 3 }] });
    expect(await engine.fetchOffset("g", "orders", 0)).toMatchObject({ offset: 3, epoch: e2 });
    await coordinator.commit("g", { memberId: joined.memberId, generation: b.assignments[0]!.generation, offsets: [{ topic: "orders", partition: 0, offset: 5, epoch: e2 }] });
    expect(await engine.fetchOffset("g", "orders", 0)).toMatchObject({ offset: 5, epoch: e2 });
    await expect(coordinator.commit("g", { memberId: joined.memberId, generation: b.assignments[0]!.generation, offsets: [{ topic: "orders", partition: 0, offset: 5, epoch: "" }] })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });
});
