import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TributaryError, isTributaryError } from "../errors.ts";
import { GroupCoordinator, type JoinRequest } from "./group-coordinator.ts";
import { ManualClock } from "./clock.ts";
import { InMemoryGroupStore } from "./group-store.ts";
import { Membership } from "./membership.ts";
import { InMemoryMembershipStore } from "./membership-store.ts";
import type { GroupInstrumentationEvent } from "./instrumentation.ts";
import { openTempEngine, RecordingChannel, waitFor, type TempEngine } from "../../../test/helpers/group-harness.ts";
import { tpKey } from "./types.ts";

let temp: TempEngine;
let coordinator: GroupCoordinator;
const heartbeats: NodeJS.Timeout[] = [];

beforeEach(async () => {
  temp = await openTempEngine();
  await temp.engine.createTopic("orders", { partitions: 6 });
});

afterEach(async () => {
  for (const h of heartbeats.splice(0)) clearInterval(h);
  coordinator?.close();
  await temp.cleanup();
});

function make(options: { sessionTimeoutMs?: number; rebalanceTimeoutMs?: number; sweepIntervalMs?: number } = {}): GroupCoordinator {
  coordinator = new GroupCoordinator({
    engine: temp.engine,
    membership: new Membership({ sweepIntervalMs: options.sweepIntervalMs ?? 25 }),
    sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
    rebalanceTimeoutMs: options.rebalanceTimeoutMs ?? 10_000,
  });
  return coordinator;
}

async function join(group: string, clientId: string, extra: Partial<JoinRequest> = {}): Promise<{ memberId: string; channel: RecordingChannel }> {
  const channel = new RecordingChannel();
  const { memberId } = await coordinator.join(group, { clientId, node: "n1", topics: ["orders"], channel, ...extra });
  return { memberId, channel };
}

/** Heartbeats like a live connection would, until the test ends or `stop()`. */
function keepAlive(group: string, memberId: string, everyMs = 40): () => void {
  const h = setInterval(() => void coordinator.heartbeat(group, memberId).catch(() => undefined), everyMs);
  heartbeats.push(h);
  return () => clearInterval(h);
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    if (isTributaryError(err)) return err.code;
    throw err;
  }
}

describe("GroupCoordinator", () => {
  for (const strategy of ["range", "round-robin", "cooperative-sticky"]) {
    it(`${strategy}: three members of a 6-partition topic own 2 partitions each in one generation`, async () => {
      make();
      const members = [];
      for (const c of ["c1", "c2", "c3"]) members.push(await join("g", c, { strategies: [strategy] }));
      await coordinator.settled("g");
      const owned = members.map((m) => m.channel.partitions());
      expect(owned.map((o) => o.length)).toEqual([2, 2, 2]);
      expect(new Set(owned.flat().map(tpKey)).size).toBe(6);
      const generations = new Set(members.map((m) => m.channel.generation));
      expect(generations.size).toBe(1);
      const description = await coordinator.describeGroup("g");
      expect(description.state).toBe("Stable");
      expect(description.strategy).toBe(strategy);
      expect(description.generation).toBe(members[0]!.channel.generation);
      expect(description.members.map((m) => m.assignment.length)).toEqual([2, 2, 2]);
    });
  }

  it("a member that stops heartbeating is removed after the session timeout and its partitions resume at its last commit", async () => {
    make({ sessionTimeoutMs: 300 });
    const a = await join("g", "a", { sessionTimeoutMs: 300 });
    const b = await join("g", "b", { sessionTimeoutMs: 300 });
    const c = await join("g", "c", { sessionTimeoutMs: 300 });
    const stopA = keepAlive("g", a.memberId);
    keepAlive("g", b.memberId);
    keepAlive("g", c.memberId);
    await coordinator.settled("g");
    const aParts = a.channel.partitions();
    expect(aParts.length).toBe(2);
    for (const tp of aParts) await temp.engine.append(tp.topic, tp.partition, Array.from({ length: 10 }, () => ({ key: null, value: new Uint8Array([1]) })));
    await coordinator.commit("g", { memberId: a.memberId, generation: a.channel.generation, offsets: aParts.map((tp, i) => ({ ...tp, offset: 4 + i })) });

    a.channel.crashed = true;
    stopA();
    const started = Date.now();
    const aKeys = new Set(aParts.map(tpKey));
    await waitFor(() => [...b.channel.owned, ...c.channel.owned].filter((k) => aKeys.has(k)).length === 2, 5000, "a's partitions to move");
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const taken = [...b.channel.assignments, ...c.channel.assignments].flatMap((x) => x.added).filter((p) => aKeys.has(tpKey(p)));
    expect(taken.map((p) => p.offset).sort()).toEqual([4, 5]);
    expect(taken.every((p) => p.committed)).toBe(true);
    expect(b.channel.partitions().length + c.channel.partitions().length).toBe(6);
    expect(await code(coordinator.commit("g", { memberId: a.memberId, generation: a.channel.generation, offsets: [{ ...aParts[0]!, offset: 9 }] }))).toBe("UNKNOWN_MEMBER");
    expect(await code(coordinator.heartbeat("g", a.memberId))).toBe("UNKNOWN_MEMBER");
  });

  it("a joining member triggers a cooperative rebalance that never revokes partitions which stay", async () => {
    make();
    const a = await join("g", "a");
    const b = await join("g", "b");
    await coordinator.settled("g");
    const before = new Map([a, b].map((m) => [m.memberId, new Set(m.channel.partitions().map(tpKey))]));
    const generation = a.channel.generation;
    const revokedBefore = new Map([a, b].map((m) => [m.memberId, m.channel.revocations.length]));
    const c = await join("g", "c");
    await coordinator.settled("g");
    expect(c.channel.partitions().length).toBe(2);
    expect(a.channel.generation).toBe(c.channel.generation);
    expect(c.channel.generation).toBeGreaterThan(generation);
    const cKeys = new Set(c.channel.partitions().map(tpKey));
    for (const m of [a, b]) {
      const revoked = m.channel.revocations.slice(revokedBefore.get(m.memberId)).flatMap((r) => r.partitions).map(tpKey);
      expect(revoked.length).toBe(1);
      expect(revoked.every((k) => cKeys.has(k))).toBe(true);
      expect(m.channel.partitions().length).toBe(2);
      for (const tp of m.channel.partitions()) expect(before.get(m.memberId)!.has(tpKey(tp))).toBe(true);
      const latest = m.channel.assignments.at(-1)!;
      expect(latest.added).toEqual([]);
    }
  });

  it("an eager strategy revokes everything before the next generation is assigned", async () => {
    make();
    const a = await join("g", "a", { strategies: ["range"] });
    await coordinator.settled("g");
    expect(a.channel.partitions().length).toBe(6);
    const order: string[] = [];
    a.channel.onRevoke = () => void order.push(`a revokes, a owns ${a.channel.owned.size}`);
    a.channel.onAssign = () => void order.push("a assigned");
    const b = await join("g", "b", { strategies: ["range"] });
    b.channel.onAssign = () => void order.push(`b assigned while a owns ${a.channel.owned.size}`);
    await coordinator.settled("g");
    expect(a.channel.revocations.at(-1)!.partitions.length).toBe(6);
    expect(order.slice(0, 1)).toEqual(["a revokes, a owns 6"]);
    expect(order).toContain("a assigned");
    expect(order.filter((e) => e.startsWith("b assigned"))).toEqual([expect.stringMatching(/^b assigned while a owns (0|3)$/)]);
    expect(a.channel.partitions().length).toBe(3);
    expect(b.channel.partitions().length).toBe(3);
  });

  it("a revoke that is never confirmed is taken after the rebalance timeout and the old owner's commits are fenced", async () => {
    make({ rebalanceTimeoutMs: 200 });
    const a = await join("g", "a");
    await coordinator.settled("g");
    a.channel.crashed = true;
    const aGeneration = a.channel.generation;
    const b = await join("g", "b");
    const started = Date.now();
    await coordinator.settled("g");
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
    expect(b.channel.partitions().length).toBe(3);
    const moved = b.channel.partitions()[0]!;
    expect(await code(coordinator.commit("g", { memberId: a.memberId, generation: aGeneration, offsets: [{ ...moved, offset: 1 }] }))).toBe("ILLEGAL_GENERATION");
    const current = (await coordinator.describeGroup("g")).generation;
    expect(await code(coordinator.commit("g", { memberId: a.memberId, generation: current, offsets: [{ ...moved, offset: 1 }] }))).toBe("PARTITION_NOT_OWNED");
    expect(await temp.engine.fetchOffset("g", moved.topic, moved.partition)).toBeNull();
  });

  it("commits with a stale generation, an unowned partition or an unknown member are rejected with their codes and write nothing", async () => {
    make();
    const a = await join("g", "a");
    await coordinator.settled("g");
    const staleGeneration = a.channel.generation;
    const b = await join("g", "b");
    await coordinator.settled("g");
    const mine = a.channel.partitions()[0]!;
    const theirs = b.channel.partitions()[0]!;
    expect(await code(coordinator.commit("g", { memberId: a.memberId, generation: staleGeneration, offsets: [{ ...mine, offset: 1 }] }))).toBe("ILLEGAL_GENERATION");
    expect(await code(coordinator.commit("g", { memberId: a.memberId, generation: a.channel.generation, offsets: [{ ...mine, offset: 1 }, { ...theirs, offset: 1 }] }))).toBe("PARTITION_NOT_OWNED");
    expect(await code(coordinator.commit("g", { memberId: "ghost", generation: a.channel.generation, offsets: [{ ...mine, offset: 1 }] }))).toBe("UNKNOWN_MEMBER");
    expect(await temp.engine.fetchOffset("g", mine.topic, mine.partition)).toBeNull();
    await coordinator.commit("g", { memberId: a.memberId, generation: a.channel.generation, offsets: [{ ...mine, offset: 0 }] });
    expect((await temp.engine.fetchOffset("g", mine.topic, mine.partition))!.offset).toBe(0);
  });

  it("a member that commits before confirming a revoke hands its position to the next owner", async () => {
    make();
    await temp.engine.append("orders", 0, Array.from({ length: 20 }, () => ({ key: null, value: new Uint8Array([2]) })));
    const a = await join("g", "a", { reset: "earliest" });
    await coordinator.settled("g");
    a.channel.onRevoke = (r) => coordinator.commit("g", { memberId: a.memberId, generation: r.generation, offsets: r.partitions.map((tp) => ({ ...tp, offset: tp.partition === 0 ? 17 : 0 })) });
    const b = await join("g", "b", { reset: "earliest" });
    await coordinator.settled("g");
    const handed = [...a.channel.revocations.flatMap((r) => r.partitions)];
    expect(handed.length).toBe(3);
    const addedToB = b.channel.assignments.at(-1)!.added;
    expect(addedToB.map(tpKey).sort()).toEqual(handed.map(tpKey).sort());
    for (const p of addedToB) expect(p.offset).toBe(p.partition === 0 ? 17 : 0);
  });

  it("resetting offsets is refused while the group has members and allowed once it is empty", async () => {
    make();
    const records = Array.from({ length: 5 }, (_, i) => ({ key: null, value: new Uint8Array([i]), timestamp: 1_000 + i * 100 }));
    for (let p = 0; p < 6; p++) await temp.engine.append("orders", p, records);
    const a = await join("g", "a");
    await coordinator.settled("g");
    expect(await code(coordinator.resetOffsets("g", "orders", "earliest"))).toBe("GROUP_NOT_EMPTY");
    expect(await coordinator.leave("g", a.memberId)).toBe(true);
    await coordinator.settled("g");
    const latest = await coordinator.resetOffsets("g", "orders", "latest");
    expect(latest.partitions.map((p) => p.offset)).toEqual([5, 5, 5, 5, 5, 5]);
    const earliest = await coordinator.resetOffsets("g", "orders", "earliest");
    expect(earliest.partitions.map((p) => [p.previous, p.offset])).toEqual(Array(6).fill([5, 0]));
    const exact = await coordinator.resetOffsets("g", "orders", { offset: 3 }, [2]);
    expect(exact.partitions).toEqual([{ partition: 2, previous: 0, offset: 3 }]);
    const byTime = await coordinator.resetOffsets("g", "orders", { timestamp: 1_250 });
    expect(byTime.partitions.map((p) => p.offset)).toEqual([3, 3, 3, 3, 3, 3]);
    expect((await temp.engine.fetchOffset("g", "orders", 4))!.offset).toBe(3);
    expect(await code(coordinator.resetOffsets("g", "nope", "earliest"))).toBe("UNKNOWN_TOPIC");
  });

  it("lag is end offset minus committed offset and grows while producing", async () => {
    make();
    const a = await join("g", "a", { reset: "earliest" });
    await coordinator.settled("g");
    const append = (p: number, n: number) => temp.engine.append("orders", p, Array.from({ length: n }, () => ({ key: null, value: new Uint8Array([3]) })));
    await append(1, 10);
    await coordinator.commit("g", { memberId: a.memberId, generation: a.channel.generation, offsets: [{ topic: "orders", partition: 1, offset: 4 }] });
    let d = await coordinator.describeGroup("g");
    let p1 = d.partitions.find((p) => p.partition === 1)!;
    expect(p1).toMatchObject({ committedOffset: 4, endOffset: 10, lag: 6, owner: a.memberId });
    expect(d.partitions.find((p) => p.partition === 0)!.lag).toBeNull();
    await append(1, 7);
    d = await coordinator.describeGroup("g");
    p1 = d.partitions.find((p) => p.partition === 1)!;
    expect(p1.lag).toBe(13);
    expect(d.totalLag).toBe(13);
    await coordinator.commit("g", { memberId: a.memberId, generation: a.channel.generation, offsets: [{ topic: "orders", partition: 1, offset: 17 }] });
    expect((await coordinator.describeGroup("g")).partitions.find((p) => p.partition === 1)!.lag).toBe(0);
  });

  it("a member re-binding with its memberId within the session timeout keeps its partitions without a rebalance", async () => {
    make();
    const a = await join("g", "a");
    const b = await join("g", "b");
    await coordinator.settled("g");
    const generation = a.channel.generation;
    const mine = a.channel.partitions().map(tpKey).sort();
    await coordinator.commit("g", { memberId: a.memberId, generation, offsets: [{ ...a.channel.partitions()[0]!, offset: 0 }] });
    const bAssignments = b.channel.assignments.length;
    const reconnected = new RecordingChannel();
    const again = await coordinator.join("g", { clientId: "a", node: "n2", topics: ["orders"], memberId: a.memberId, channel: reconnected });
    await coordinator.settled("g");
    expect(again.memberId).toBe(a.memberId);
    expect(reconnected.generation).toBe(generation);
    expect(reconnected.partitions().map(tpKey).sort()).toEqual(mine);
    expect(reconnected.assignments[0]!.added.length).toBe(3);
    expect(b.channel.assignments.length).toBe(bAssignments);
    expect(b.channel.revocations.length).toBe(0);
  });

  it("a revoke a disconnected member could not receive waits for it to re-bind, goes to its new channel, and its commit is where the next owner starts", async () => {
    make();
    await temp.engine.append("orders", 0, Array.from({ length: 20 }, () => ({ key: null, value: new Uint8Array([4]) })));
    const a = await join("g", "a", { reset: "earliest", strategies: ["range"] });
    await coordinator.settled("g");
    const generation = a.channel.generation;
    a.channel.crashed = true; // its connection dropped: nothing it is sent gets an answer
    const b = await join("g", "b", { reset: "earliest", strategies: ["range"] });
    await waitFor(() => a.channel.revocations.length === 1, 5000, "the revoke sent to the dropped connection");
    const rebalances = coordinator.instrumentation.counts()["group.rebalance"];
    // a reconnects within its session timeout and re-binds; it commits what it processed on revoke
    const reconnected = new RecordingChannel();
    reconnected.onRevoke = (r) => coordinator.commit("g", { memberId: a.memberId, generation: r.generation, offsets: r.partitions.map((tp) => ({ ...tp, offset: tp.partition === 0 ? 13 : 0 })) });
    expect(coordinator.instrumentation.counts()["group.rebalance"]).toBe(rebalances); // nothing moved while a was away
    expect(b.channel.assignments).toEqual([]);
    await coordinator.join("g", { clientId: "a", node: "n1", topics: ["orders"], strategies: ["range"], reset: "earliest", memberId: a.memberId, channel: reconnected });
    await coordinator.settled("g");
    expect(reconnected.revocations.map((r) => [r.generation, r.partitions.length])).toEqual([[generation, 6]]);
    const p0 = [...b.channel.assignments, ...reconnected.assignments].flatMap((x) => x.added).find((p) => p.partition === 0)!;
    expect(p0).toMatchObject({ offset: 13, committed: true });
    expect(b.channel.partitions().length + reconnected.partitions().length).toBe(6);
  });

  it("a revoke the member's channel cannot deliver for now is asked again with backoff until it can, without waiting for the rebalance timeout", async () => {
    const tasks: string[] = [];
    coordinator = new GroupCoordinator({ engine: temp.engine, membership: new Membership({ sweepIntervalMs: 25 }), rebalanceTimeoutMs: 10_000, onError: (_err, _group, task) => tasks.push(task) });
    const a = await join("g", "a", { strategies: ["range"] });
    await coordinator.settled("g");
    // e.g. a member on another node that re-bound there: its node routes to the new subscription only once it registered it
    let unreachable = 3;
    const revoke = a.channel.revoke.bind(a.channel);
    a.channel.revoke = (r) => (unreachable-- > 0 ? Promise.reject(new TributaryError("UNAVAILABLE", "member not reachable yet")) : revoke(r));
    const started = Date.now();
    const b = await join("g", "b", { strategies: ["range"] });
    await coordinator.settled("g");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(a.channel.revocations.length).toBe(1); // delivered once, after 3 failed attempts
    expect(b.channel.partitions().length + a.channel.partitions().length).toBe(6);
    expect(tasks).toEqual([]); // a retriable failure to reach the member is expected, not an error
  });

  it("a disconnected member that does not come back gives up its revoked partitions at its session timeout, not before", async () => {
    make({ sessionTimeoutMs: 400, rebalanceTimeoutMs: 10_000 });
    const a = await join("g", "a", { sessionTimeoutMs: 400 });
    const stopA = keepAlive("g", a.memberId);
    await coordinator.settled("g");
    a.channel.crashed = true;
    stopA();
    const dropped = Date.now();
    const b = await join("g", "b", { sessionTimeoutMs: 400 });
    keepAlive("g", b.memberId);
    await coordinator.settled("g");
    expect(Date.now() - dropped).toBeGreaterThanOrEqual(300);
    expect(Date.now() - dropped).toBeLessThan(5000);
    expect(b.channel.partitions().length).toBe(6);
    expect(await code(coordinator.heartbeat("g", a.memberId))).toBe("UNKNOWN_MEMBER");
  });

  it("a failing group state store fails the operation with a retriable UNAVAILABLE naming the group, reported as group-state, never as an empty group", async () => {
    const failures: Array<{ group: string | null; task: string; code: string }> = [];
    const store = new InMemoryGroupStore();
    let broken = false;
    const load = store.load.bind(store);
    store.load = async (group) => {
      if (broken) throw new Error("disk on fire");
      return load(group);
    };
    coordinator = new GroupCoordinator({ engine: temp.engine, groupStore: store, onError: (err, group, task) => failures.push({ group, task, code: (err as { code: string }).code }) });
    const errors: string[] = [];
    coordinator.instrumentation.on("group.error", (e) => errors.push(`${e.payload.task}:${e.payload.code}`));
    const a = await join("g", "a");
    await coordinator.settled("g");
    broken = true;
    const failed = await coordinator.join("g", { clientId: "b", node: "n1", topics: ["orders"], channel: new RecordingChannel() }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(isTributaryError(failed, "UNAVAILABLE")).toBe(true);
    expect((failed as { retriable: boolean }).retriable).toBe(true);
    expect((failed as { context: object }).context).toMatchObject({ group: "g", operation: "load" });
    expect(await code(coordinator.heartbeat("g", a.memberId))).toBe("UNAVAILABLE");
    expect(await code(coordinator.commit("g", { memberId: a.memberId, generation: a.channel.generation, offsets: [{ topic: "orders", partition: 0, offset: 0 }] }))).toBe("UNAVAILABLE");
    expect(failures).toContainEqual({ group: "g", task: "group-state", code: "UNAVAILABLE" });
    expect(errors).toContain("group-state:UNAVAILABLE");
    broken = false;
    // the group was not reset by the failures: a keeps its partitions and generation
    expect((await coordinator.describeGroup("g")).members.map((m) => [m.memberId, m.assignment.length, m.generation])).toEqual([[a.memberId, 6, a.channel.generation]]);
  });

  it("a rebalance round that fails on the state store is reported as group-rebalance and runs again", async () => {
    const clock = new ManualClock(Date.now());
    const store = new InMemoryGroupStore();
    let failSaves = 0;
    const save = store.save.bind(store);
    store.save = async (state) => {
      if (state.state === "Rebalancing" && failSaves > 0) {
        failSaves--;
        throw new Error("write refused");
      }
      return save(state);
    };
    const tasks: string[] = [];
    coordinator = new GroupCoordinator({ engine: temp.engine, groupStore: store, clock, membership: new Membership({ clock }), onError: (_err, _group, task) => tasks.push(task) });
    failSaves = 1;
    const a = await join("g", "a");
    await coordinator.settled("g");
    expect(tasks).toEqual(["group-state", "group-rebalance"]);
    expect(a.channel.assignments).toEqual([]);
    clock.advance(1000); // the retry backoff
    await coordinator.settled("g");
    expect(a.channel.partitions().length).toBe(6);
  });

  it("a failing session-timeout sweep is reported as group-membership and retried at the next interval", async () => {
    const store = new InMemoryMembershipStore();
    let failures = 1;
    const expire = store.expire.bind(store);
    store.expire = async (now) => {
      if (failures > 0) {
        failures--;
        throw new Error("store unreachable");
      }
      return expire(now);
    };
    const tasks: string[] = [];
    coordinator = new GroupCoordinator({ engine: temp.engine, membership: new Membership({ store, sweepIntervalMs: 20, onError: (_err, task) => tasks.push(task) }), sessionTimeoutMs: 100 });
    const a = await join("g", "a", { sessionTimeoutMs: 100 });
    await coordinator.settled("g");
    await waitFor(async () => (await coordinator.membership.get("g", a.memberId)) === null, 5000, "a to expire after the failed sweep");
    expect(tasks).toEqual(["group-membership"]);
  });

  it("members with no strategy in common are refused", async () => {
    make();
    await join("g", "a", { strategies: ["range"] });
    expect(await code(join("g", "b", { strategies: ["round-robin"] }))).toBe("INCONSISTENT_GROUP_PROTOCOL");
    expect(await code(join("g", "c", { strategies: ["nope"] }))).toBe("INCONSISTENT_GROUP_PROTOCOL");
  });

  it("emits group.join, group.rebalance, group.commit and group.leave instrumentation events with counts and timings", async () => {
    make();
    const events: GroupInstrumentationEvent[] = [];
    coordinator.instrumentation.on("*", (e) => events.push(e));
    const a = await join("g", "a");
    await coordinator.settled("g");
    await coordinator.commit("g", { memberId: a.memberId, generation: a.channel.generation, offsets: [{ topic: "orders", partition: 0, offset: 0 }] });
    await coordinator.leave("g", a.memberId);
    await coordinator.settled("g");
    expect(events.map((e) => e.type)).toEqual(["group.join", "group.rebalance", "group.commit", "group.leave"]);
    const rebalance = events[1]!.payload as { generation: number; assigned: number; durationMs: number; members: number };
    expect(rebalance).toMatchObject({ generation: 1, assigned: 6, members: 1 });
    expect(rebalance.durationMs).toBeGreaterThanOrEqual(0);
    expect(events[3]!.payload).toMatchObject({ reason: "leave", members: 0 });
    expect(coordinator.instrumentation.counts()).toMatchObject({ "group.join": 1, "group.rebalance": 1, "group.commit": 1, "group.leave": 1 });
  });

  it("lists groups with members and groups that only have committed offsets", async () => {
    make();
    await temp.engine.commitOffset("old", "orders", 0, 3);
    await join("live", "a");
    await coordinator.settled("live");
    const groups = await coordinator.listGroups();
    expect(groups).toEqual([
      { group: "live", state: "Stable", generation: 1, members: 1 },
      { group: "old", state: "Empty", generation: 0, members: 0 },
    ]);
    expect(await code(coordinator.describeGroup("missing"))).toBe("UNKNOWN_GROUP");
    expect((await coordinator.describeGroup("old")).partitions.find((p) => p.partition === 0)!.committedOffset).toBe(3);
  });
});
