/**
 * Consumer groups across a rewritten partition history: a committed position is
 * `(epoch, offset)`, and a position committed under an old epoch is stale. The next owner of
 * the partition starts by its reset policy (here `earliest`: the whole new history), is told
 * so (`assigned` with `committed: false`), and the coordinator reports it once
 * (`group.stale_epoch`) — instead of resuming at the old offset, which in the new history
 * names other records (a silent skip of everything before it).
 *
 * - File engine: the topic is deleted and re-created while a member still holds its
 *   partition; the member then commits what it processed of the old history.
 * - Redis engine: Redis restarts without persistence (its data, commits included, is gone);
 *   the node still knows the group's last commit and restores it, with its old epoch.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, State, TributaryClientError, type Message, type TributaryClient } from "@tributary/client";
import type { GroupInstrumentationEvent } from "../server/src/groups/instrumentation.ts";
import type { TributaryNode } from "../server/src/node.ts";
import { startRedisNode } from "./helpers/cluster-nodes.ts";
import { startRedis } from "./helpers/redis-harness.ts";
import { startSdkTestNode, until } from "./helpers/sdk-node.ts";
import { waitFor } from "./helpers/wait.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function client(url: string): TributaryClient {
  const c = connect(url, { minReconnectDelay: 10, maxReconnectDelay: 200 });
  cleanups.push(() => c.close());
  return c;
}

type Assigned = { partition: number; offset: number; committed: boolean };

function staleEpochEvents(node: TributaryNode): GroupInstrumentationEvent<"group.stale_epoch">[] {
  const events: GroupInstrumentationEvent<"group.stale_epoch">[] = [];
  cleanups.push(node.groups.instrumentation.on("group.stale_epoch", (e) => events.push(e)));
  return events;
}

/** A group member that records what it is handed and what it is assigned. */
function member(c: TributaryClient, topic: string, group: string) {
  const messages: Message<string>[] = [];
  const added: Assigned[] = [];
  const sub = c.subscribe<string>(topic, (m) => void messages.push(m), { group, reset: "earliest" });
  sub.on("assigned", (e) => added.push(...e.added));
  return { sub, messages, added };
}

async function publishRetrying(c: TributaryClient, topic: string, value: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await c.publish(topic, value);
      return;
    } catch (err) {
      if (attempt > 200 || !(err instanceof TributaryClientError) || !err.retriable) throw err;
    }
  }
}

describe("consumer groups across a rewritten history", () => {
  it("a-position-committed-before-the-topic-was-re-created-is-stale-and-the-next-member-reads-the-new-history-from-its-start (file engine)", async () => {
    const sdk = await startSdkTestNode();
    cleanups.push(() => sdk.close());
    const node = sdk.node;
    const events = staleEpochEvents(node);
    await node.broker.createTopic("orders", { partitions: 1 });
    const publisher = client(sdk.url);
    for (let i = 0; i < 5; i++) await publisher.publish("orders", `old-${i}`);
    const oldEpoch = (await node.engine.offsets("orders", 0)).epoch;

    // Member A: one message at a time (credit 1), committing before it takes the next one;
    // it holds old-0 until released, so the node's read of the old history waits on A.
    const a = client(sdk.url);
    const seenByA: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const subA = a.subscribe<string>(
      "orders",
      async (m) => {
        seenByA.push(m.value);
        if (m.offset === 0) await held;
        await subA.commit(); // the next offset to consume: m.offset (everything before it is processed)
        if (m.value === "old-4") void subA.unsubscribe(); // A stops here (e.g. its process shuts down)
      },
      { group: "billing", reset: "earliest", credit: 1, autoCommit: false },
    );
    await until(() => seenByA.length === 1, "A holds old-0");

    // The topic is deleted and re-created under A's feet: a new history, offsets 0.. again.
    await node.broker.deleteTopic("orders");
    await node.broker.createTopic("orders", { partitions: 1 });
    for (let i = 0; i < 8; i++) await publisher.publish("orders", `new-${i}`);
    const newEpoch = (await node.engine.offsets("orders", 0)).epoch;
    expect(newEpoch).not.toBe(oldEpoch);

    // A finishes the old records it was sent, committing offsets of the old history (its
    // commits carry no epoch: the node stores the epoch of A's assignment), and leaves.
    release();
    await until(() => subA.closed, "A left");
    await waitFor(() => node.groups.describeGroup("billing").then((d) => d.members.length === 0), { what: "A is out of the group" });
    expect(seenByA).toEqual(["old-0", "old-1", "old-2", "old-3", "old-4"]);
    // Offset 4 of the old epoch. Taken as offset 4 of the new history, it would skip new-0..new-3.
    expect(await node.engine.fetchOffset("billing", "orders", 0)).toMatchObject({ offset: 4, epoch: oldEpoch });

    const b = member(client(sdk.url), "orders", "billing");
    await until(() => b.messages.length === 8, "B reads the whole new history");
    expect(b.messages.map((m) => m.value)).toEqual(Array.from({ length: 8 }, (_, i) => `new-${i}`));
    expect(b.messages.map((m) => m.offset)).toEqual(Array.from({ length: 8 }, (_, i) => i));
    expect(b.added).toEqual([{ partition: 0, offset: 0, committed: false }]);
    expect(events.map((e) => e.payload)).toEqual([
      expect.objectContaining({ group: "billing", topic: "orders", partition: 0, committedEpoch: oldEpoch, committedOffset: 4, epoch: newEpoch, offset: 0, policy: "earliest" }),
    ]);
    expect(node.groups.instrumentation.counts()["group.stale_epoch"]).toBe(1);

    // B's commits belong to the new history.
    await b.sub.commit();
    expect(await node.engine.fetchOffset("billing", "orders", 0)).toMatchObject({ offset: 8, epoch: newEpoch });
  });

  it("a-commit-restored-after-redis-lost-its-data-keeps-its-old-epoch-and-the-next-member-reads-the-new-history-from-its-start (redis engine)", async () => {
    const redis = await startRedis(); // no persistence: a restart loses the log and the commits
    cleanups.push(() => redis.destroy());
    const node = await startRedisNode(redis.url);
    cleanups.push(() => node.close());
    const events = staleEpochEvents(node);
    const publisher = client(node.wsUrl);
    await until(() => publisher.state === State.Connected, "publisher connected");
    for (let i = 0; i < 10; i++) await publisher.publish("orders", `old-${i}`);
    const oldEpoch = (await node.engine.offsets("orders", 0)).epoch;

    const a = member(client(node.wsUrl), "orders", "billing");
    await until(() => a.messages.length === 10, "A reads the old history");
    await a.sub.unsubscribe(); // commits what it processed, then leaves
    expect(await node.engine.fetchOffset("billing", "orders", 0)).toMatchObject({ offset: 10, epoch: oldEpoch });

    await redis.stop("SIGKILL");
    await redis.start(); // empty: the partition starts a new history at offset 0
    await publishRetrying(publisher, "orders", "new-0");
    for (let i = 1; i < 25; i++) await publisher.publish("orders", `new-${i}`);
    const now = await node.engine.offsets("orders", 0);
    expect(now.endOffset).toBe(25);
    expect(now.epoch).not.toBe(oldEpoch);
    // Redis lost the commit; the node restores the one it saw, under the epoch it was committed in.
    // Taken as offset 10 of the new history, it would skip new-0..new-9.
    expect(await node.engine.fetchOffset("billing", "orders", 0)).toMatchObject({ offset: 10, epoch: oldEpoch });

    const b = member(client(node.wsUrl), "orders", "billing");
    await until(() => b.messages.length === 25, "B reads the whole new history");
    expect(b.messages.map((m) => m.value)).toEqual(Array.from({ length: 25 }, (_, i) => `new-${i}`));
    expect(b.messages.map((m) => m.offset)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(b.added).toEqual([{ partition: 0, offset: 0, committed: false }]);
    expect(events.map((e) => e.payload)).toEqual([
      expect.objectContaining({ group: "billing", topic: "orders", partition: 0, committedEpoch: oldEpoch, committedOffset: 10, epoch: now.epoch, offset: 0, policy: "earliest" }),
    ]);

    // B's commit replaces the stale position although it is lower: it is a position of the new history.
    await b.sub.commit();
    expect(await node.engine.fetchOffset("billing", "orders", 0)).toMatchObject({ offset: 25, epoch: now.epoch });
  });
});
