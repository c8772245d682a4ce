/**
 * The group member's revoke and leave commits against a scripted host (no network): what it
 * sends, reports and emits when its commit cannot reach the server, is fenced, or crosses an
 * `assign`.
 */
import { describe, expect, it } from "vitest";
import type { AssignFrame, ClientFrame, CommitFrame, RevokeFrame, ServerFrame } from "../protocol/index.ts";
import { waitFor } from "../../../test/helpers/wait.ts";
import { TributaryClientError } from "./errors.ts";
import { GroupMember, type GroupPartitionControl } from "./group-member.ts";
import type { Subscription, SubscriptionHost } from "./subscription.ts";
import type { SubscribeOptions } from "./types.ts";

const TOPIC = "orders";

interface Harness {
  member: GroupMember;
  sub: { closed: boolean };
  /** Frames sent without a reply (`revoked`). */
  sent: ClientFrame[];
  /** Commit requests, in order. */
  commits: CommitFrame[];
  errors: TributaryClientError[];
  events: Array<{ event: string; payload: unknown }>;
  processed: Map<number, number>;
  /** How the next commit request is answered (default: accepted). */
  answer: Array<(frame: CommitFrame) => Promise<ServerFrame>>;
  /** While false, requests fail with UNAVAILABLE at once, as the client's do while it reconnects. */
  connected: boolean;
}

function harness(options: Partial<SubscribeOptions> = {}): Harness {
  const h = { sent: [], commits: [], errors: [], events: [], processed: new Map(), answer: [], connected: true } as unknown as Harness;
  const sub = { id: 1, topic: TOPIC, closed: false };
  h.sub = sub;
  const epochs = new Map<number, string>();
  const control: GroupPartitionControl = {
    start: (partition, offset, epoch) => {
      epochs.set(partition, epoch);
      h.processed.set(partition, offset);
    },
    drop: () => undefined,
    whenIdle: async () => undefined,
    processed: (partition) => h.processed.get(partition),
    epoch: (partition) => epochs.get(partition),
    emit: (event, payload) => void h.events.push({ event, payload }),
  };
  const host = {
    send: (frame: ClientFrame) => {
      h.sent.push(frame);
      return true;
    },
    request: (frame: ClientFrame) => {
      if (!h.connected) return Promise.reject(new TributaryClientError("UNAVAILABLE", "not connected"));
      const commit = frame as CommitFrame;
      h.commits.push(commit);
      const next = h.answer.shift();
      return next ? next(commit) : Promise.resolve({ op: "committed", id: 0 } as ServerFrame);
    },
    reportError: (err: TributaryClientError) => void h.errors.push(err),
    resubscribe: () => undefined,
  } as unknown as SubscriptionHost;
  h.member = new GroupMember(sub as unknown as Subscription<unknown>, { group: "g", autoCommitIntervalMs: 60_000, ...options }, control, host);
  return h;
}

const assign = (generation: number, partitions: number[], added: number[] = partitions): AssignFrame => ({
  op: "assign",
  sub: 1,
  group: "g",
  generation,
  strategy: "range",
  partitions: partitions.map((partition) => ({ topic: TOPIC, partition })),
  added: added.map((partition) => ({ topic: TOPIC, partition, offset: 0, epoch: "e", committed: true })),
});
const revoke = (generation: number, partitions: number[]): RevokeFrame => ({ op: "revoke", sub: 1, group: "g", generation, partitions: partitions.map((partition) => ({ topic: TOPIC, partition })) });
const fail = (code: ConstructorParameters<typeof TributaryClientError>[0]) => () => Promise.reject(new TributaryClientError(code, `${code} for the test`));
const revokedEvents = (h: Harness) => h.events.filter((e) => e.event === "revoked").map((e) => e.payload);
const until = (check: () => boolean, what: string): Promise<void> => waitFor(check, { timeoutMs: 5000, what, intervalMs: 1 });

function joined(h: Harness): void {
  h.member.onJoined({ op: "joined", id: 1, sub: 1, group: "g", memberId: "m-1" });
}

describe("GroupMember revoke and leave commits", () => {
  it("a-revoke-whose-commit-cannot-reach-the-server-is-confirmed-only-after-the-re-sent-revoke-commits", async () => {
    const h = harness();
    joined(h);
    h.member.onAssign(assign(3, [0, 1]));
    h.processed.set(0, 10);
    h.connected = false; // the connection dropped with the revoke frame already received
    h.member.onRevoke(revoke(3, [0]));
    await until(() => h.errors.length > 0, "the failed commit to be reported");
    expect(h.sent).toEqual([]); // not confirmed: the processed window is not committed
    expect(h.errors.map((e) => [e.code, e.context.partitions])).toEqual([["UNAVAILABLE", [0]]]); // reported once, retried quietly
    expect(h.member.partitions).toEqual([1]);

    // reconnected: the member joins again with its id and the server sends the revoke again
    h.connected = true;
    joined(h);
    h.member.onRevoke(revoke(3, [0]));
    await until(() => h.sent.length > 0, "the revoke to be confirmed");
    expect(h.commits.map((c) => [c.generation, c.offsets])).toEqual([[3, [{ topic: TOPIC, partition: 0, offset: 10, epoch: "e" }]]]);
    expect(h.sent).toEqual([{ op: "revoked", sub: 1, generation: 3, partitions: [{ topic: TOPIC, partition: 0 }] }]);
    expect(revokedEvents(h)).toEqual([{ group: "g", generation: 3, partitions: [0], lost: false }]);
  });

  it("onRevoke-is-awaited-before-the-revoke-commits-and-confirms-and-its-failure-is-reported", async () => {
    let finish: () => void = () => {};
    const calls: number[][] = [];
    const h = harness({
      onRevoke: (partitions) => {
        calls.push(partitions);
        // The application finishes its work of the partitions (here: one more processed record).
        return new Promise<void>((resolve) => (finish = () => {
          h.processed.set(0, 8);
          resolve();
        }));
      },
    });
    joined(h);
    h.member.onAssign(assign(2, [0, 1]));
    h.processed.set(0, 7);
    h.member.onRevoke(revoke(2, [0]));
    await until(() => calls.length > 0, "onRevoke to be called");
    expect(calls).toEqual([[0]]);
    expect(h.commits).toEqual([]);
    expect(h.sent).toEqual([]);
    finish();
    await until(() => h.sent.length > 0, "the revoke to be confirmed");
    expect(h.commits.map((c) => c.offsets)).toEqual([[{ topic: TOPIC, partition: 0, offset: 8, epoch: "e" }]]);

    const failing = harness({ onRevoke: () => Promise.reject(new Error("flush failed")) });
    joined(failing);
    failing.member.onAssign(assign(2, [0]));
    failing.member.onRevoke(revoke(2, [0]));
    await until(() => failing.sent.length > 0, "the revoke to be confirmed after a failed onRevoke");
    expect(failing.errors.map((e) => e.message)).toEqual([expect.stringMatching(/onRevoke of partitions \[0\].*flush failed.*the revoke goes on/)]);
  });

  it("commit-with-offsets-commits-those-positions-of-owned-and-revoking-partitions-only", async () => {
    const h = harness({
      autoCommit: false,
      onRevoke: async () => {
        await h.member.commit({ 0: 12 }); // the application finishes partition 0 while it is being revoked
      },
    });
    joined(h);
    h.member.onAssign(assign(4, [0, 1]));
    h.processed.set(0, 20); // the handler ran ahead of what the application finished
    await h.member.commit({ 0: 5, 1: 9, 7: 3 });
    expect(h.commits.map((c) => c.offsets)).toEqual([
      [
        { topic: TOPIC, partition: 0, offset: 5, epoch: "e" },
        { topic: TOPIC, partition: 1, offset: 9, epoch: "e" },
      ],
    ]);
    h.member.onRevoke(revoke(4, [0]));
    await until(() => h.sent.length > 0, "the revoke to be confirmed");
    expect(h.commits.map((c) => c.offsets)[1]).toEqual([{ topic: TOPIC, partition: 0, offset: 12, epoch: "e" }]);
    expect(h.commits).toHaveLength(2); // autoCommit off: no commit of the processed position on revoke
  });

  it("a-fenced-commit-on-revoke-is-reported-and-the-revoke-confirmed", async () => {
    const h = harness();
    joined(h);
    h.member.onAssign(assign(2, [0]));
    h.processed.set(0, 4);
    h.answer.push(fail("PARTITION_NOT_OWNED"));
    h.member.onRevoke(revoke(2, [0]));
    await until(() => h.sent.length > 0, "the revoke to be confirmed");
    expect(h.errors.map((e) => [e.code, e.context.group, e.context.partitions])).toEqual([["PARTITION_NOT_OWNED", "g", [0]]]);
    expect(h.sent.map((f) => f.op)).toEqual(["revoked"]);
    expect(revokedEvents(h)).toEqual([{ group: "g", generation: 2, partitions: [0], lost: false }]);
  });

  it("partitions-whose-unconfirmed-revoke-the-server-gave-up-on-are-reported-lost-at-the-next-assign", async () => {
    const h = harness();
    joined(h);
    h.member.onAssign(assign(1, [0, 1]));
    h.processed.set(0, 7);
    h.connected = false;
    h.member.onRevoke(revoke(1, [0]));
    await until(() => h.errors.length > 0, "the failed commit to be reported");
    h.connected = true;
    joined(h); // re-bound after the rebalance timeout: no revoke comes again, the next assign lacks partition 0
    h.member.onAssign(assign(2, [1], []));
    await until(() => revokedEvents(h).length > 0, "the revoked event");
    expect(revokedEvents(h)).toEqual([{ group: "g", generation: 2, partitions: [0], lost: true }]);
    expect(h.sent).toEqual([]);
  });

  it("a-leave-commit-that-crossed-an-assign-is-retried-once-with-the-new-generation", async () => {
    const h = harness();
    joined(h);
    h.member.onAssign(assign(4, [0, 1]));
    h.processed.set(0, 3);
    h.processed.set(1, 8);
    h.sub.closed = true; // unsubscribe started
    h.answer.push(() => {
      h.member.onAssign(assign(5, [0, 1], [])); // the assign frame precedes the error reply
      return fail("ILLEGAL_GENERATION")();
    });
    await h.member.beforeLeave();
    expect(h.commits.map((c) => c.generation)).toEqual([4, 5]);
    expect(h.errors).toEqual([]);
  });

  it("a-leave-commit-that-fails-is-reported-with-the-group-and-partitions", async () => {
    const h = harness();
    joined(h);
    h.member.onAssign(assign(1, [2]));
    h.processed.set(2, 9);
    h.answer.push(fail("TIMEOUT"));
    await h.member.beforeLeave();
    expect(h.errors.map((e) => [e.code, e.context.group, e.context.partitions])).toEqual([["TIMEOUT", "g", [2]]]);
  });
});

describe("GroupMember positions are (epoch, offset)", () => {
  const rebind = (generation: number, offset: number, epoch: string): AssignFrame => ({
    ...assign(generation, [0]),
    added: [{ topic: TOPIC, partition: 0, offset, epoch, committed: true }],
  });
  const startedAt = (h: Harness) => h.events.filter((e) => e.event === "assigned").map((e) => (e.payload as { added: Array<{ offset: number }> }).added[0]!.offset);

  it("a-re-bind-in-the-same-epoch-skips-what-was-processed-and-one-in-a-new-epoch-does-not", async () => {
    const h = harness();
    joined(h);
    h.member.onAssign(rebind(1, 0, "e"));
    h.processed.set(0, 10); // the handler finished offsets 0..9 (not committed yet)
    h.member.onAssign(rebind(2, 4, "e")); // re-bound at the last commit (4): 4..9 are skipped
    h.processed.set(0, 10);
    h.member.onAssign(rebind(3, 4, "e2")); // a new history: offset 4 of it names other records
    expect(startedAt(h)).toEqual([0, 10, 4]);
  });

  it("commits-carry-the-epoch-of-the-processed-position", async () => {
    const h = harness();
    joined(h);
    h.member.onAssign(rebind(1, 0, "e"));
    h.processed.set(0, 7);
    await h.member.commit();
    expect(h.commits.map((c) => c.offsets)).toEqual([[{ topic: TOPIC, partition: 0, offset: 7, epoch: "e" }]]);
  });
});

describe("GroupMember assignments arrive in generation order", () => {
  it("an-assign-of-an-older-generation-that-arrives-late-does-not-undo-a-newer-one", () => {
    const h = harness();
    joined(h);
    h.member.onAssign(assign(2, [2, 3]));
    h.member.onAssign(assign(1, [], []));
    expect(h.member.partitions).toEqual([2, 3]);
    expect(h.member.generation).toBe(2);
  });
});
