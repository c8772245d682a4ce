import { afterEach, describe, expect, it } from "vitest";
import { connect, State, TributaryClientError, type ClientOptions, type Message, type TributaryClient } from "@tributary/client";
import { hasMarks, publishMarks, startSdkTestNode, until } from "./helpers/sdk-node.ts";
import { startTcpProxy } from "./helpers/tcp-proxy.ts";
import { waitFor } from "./helpers/wait.ts";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function setup(options: Parameters<typeof startSdkTestNode>[0] = {}) {
  const node = await startSdkTestNode(options);
  cleanups.push(() => node.close());
  const proxy = await startTcpProxy(node.port);
  cleanups.push(() => proxy.close());
  return { node, proxy };
}

function client(url: string, options: ClientOptions = {}): TributaryClient {
  const c = connect(url, { minReconnectDelay: 10, maxReconnectDelay: 100, ...options });
  cleanups.unshift(() => c.close());
  return c;
}

const MARKER = "__marker__";

/**
 * Records what a subscriber saw, per partition, and checks it is gap-free and
 * duplicate-free. Markers (`flush`) are kept apart: they only prove that nothing more is
 * on its way.
 */
class Tally {
  readonly offsets = new Map<number, number[]>();
  readonly markers: Array<{ partition: number; offset: number }> = [];
  count = 0;
  /** False for a marker. */
  add(m: Message): boolean {
    if (m.value === MARKER) {
      this.markers.push({ partition: m.partition, offset: m.offset });
      return false;
    }
    let list = this.offsets.get(m.partition);
    if (!list) this.offsets.set(m.partition, (list = []));
    list.push(m.offset);
    this.count++;
    return true;
  }
  /** Publishes a marker to each partition and waits until they arrived. */
  async flush(publisher: TributaryClient, topic: string, partitions: number[]): Promise<void> {
    const marks = await publishMarks(publisher, topic, partitions, MARKER);
    await until(() => hasMarks(this.markers, marks), "the markers");
  }
  expectContiguousFromZero(total: number): void {
    let sum = 0;
    for (const [partition, list] of this.offsets) {
      const expected = list.map((_, i) => i);
      if (list.some((o, i) => o !== i)) throw new Error(`partition ${partition}: gap or duplicate near ${list.find((o, i) => o !== i)}`);
      expect(list).toEqual(expected);
      sum += list.length;
    }
    expect(sum).toBe(total);
  }
}

describe("SDK resume", () => {
  it("resumes without gap or duplicate after the network cuts the socket mid-stream (10,000 records)", async () => {
    const { node, proxy } = await setup({ topics: { defaultPartitions: 4 } });
    const subscriber = client(proxy.url);
    const publisher = client(node.url);
    const tally = new Tally();
    let connects = 0;
    subscriber.on("connected", () => connects++);
    const TOTAL = 10_000;
    // Cut the subscriber's connection each time it has received another 1,500 records, while
    // records flow: from the message handler itself, so however fast (and in however large
    // frames) records arrive, every threshold up to TOTAL - 500 cuts once.
    let cuts = 0;
    let nextCut = 1500;
    subscriber.subscribe(
      "stream",
      (m) => {
        tally.add(m);
        if (tally.count >= nextCut && nextCut < TOTAL - 500) {
          nextCut += 1500;
          proxy.sever();
          cuts++;
        }
      },
      { from: "earliest", credit: 200 },
    );
    await until(() => subscriber.state === State.Connected, "subscriber connected");

    const publishing = (async () => {
      for (let i = 0; i < TOTAL; i += 500) {
        await Promise.all(Array.from({ length: 500 }, (_, j) => publisher.publish("stream", i + j, { key: `k${(i + j) % 16}` })));
      }
    })();
    await until(() => tally.count >= TOTAL, "every record", 60_000);
    await publishing;
    await tally.flush(publisher, "stream", [0, 1, 2, 3]); // nothing extra arrives late
    expect(cuts).toBeGreaterThanOrEqual(4);
    expect(connects).toBeGreaterThanOrEqual(cuts);
    tally.expectContiguousFromZero(TOTAL);
  });

  it("resumes without gap or duplicate after a full node restart", async () => {
    const { node } = await setup({ topics: { defaultPartitions: 2 } });
    const subscriber = client(node.url);
    const publisher = client(node.url);
    const values: number[] = [];
    const tally = new Tally();
    const states: State[] = [];
    subscriber.on("state", ({ state }) => states.push(state));
    const sub = subscriber.subscribe("restart", (m) => {
      if (tally.add(m)) values.push(m.value as number);
    }, { from: "earliest", credit: 50 });
    await until(() => subscriber.state === State.Connected, "connected");
    for (let i = 0; i < 1000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => publisher.publish("restart", i + j, { partition: (i + j) % 2 })));
    await until(() => tally.count >= 300, "first records");
    await node.restart();
    for (let i = 1000; i < 2000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => publisher.publish("restart", i + j, { partition: (i + j) % 2 })));
    await until(() => tally.count >= 2000, "all records");
    expect(sub.position()[0]!.offset).toBe(1000);
    expect(sub.position()[1]!.offset).toBe(1000);
    await tally.flush(publisher, "restart", [0, 1]); // nothing extra arrives late
    expect(states).toContain(State.Disconnected);
    tally.expectContiguousFromZero(2000);
    expect([...values].sort((a, b) => a - b)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });

  it("re-sends publishes whose acks were lost with the same seq, so each is written once", async () => {
    const { node, proxy } = await setup();
    const publisher = client(proxy.url);
    await until(() => publisher.state === State.Connected, "connected");
    proxy.dropDownstream = true; // acks will be lost
    const N = 200;
    const results = Array.from({ length: N }, (_, i) => publisher.publish("dedupe", i));
    // Wait until the node has written them all, then cut the connection: no ack ever arrived.
    await until(() => publisher.inflightPublishes === N, "in flight");
    const end = async () => (await node.node.engine.offsets("dedupe", 0)).endOffset;
    await waitFor(async () => (await end().catch(() => -1)) >= N, { timeoutMs: 10_000, what: `the node to write all ${N}` });
    expect(await end()).toBe(N);
    proxy.dropDownstream = false;
    proxy.sever();
    const acked = await Promise.all(results);
    expect(acked.map((r) => r.offset)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(await end()).toBe(N); // nothing written twice

    // And the records are the values once each, in order.
    const reader = client(node.url);
    const seen: number[] = [];
    for await (const m of reader.subscribe("dedupe", { from: "earliest" })) {
      seen.push(m.value as number);
      if (seen.length === N) break;
    }
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => i));
  });

  it("queues publishes made while disconnected and sends them once, in order, on reconnect", async () => {
    const { node, proxy } = await setup();
    const publisher = client(proxy.url);
    await until(() => publisher.state === State.Connected, "connected");
    proxy.refuse = true;
    proxy.sever();
    await until(() => publisher.state !== State.Connected, "disconnected");
    const pending = Array.from({ length: 50 }, (_, i) => publisher.publish("offline", { i }));
    expect(publisher.queuedPublishes).toBe(50);
    const refusedBefore = proxy.refused;
    await waitFor(() => proxy.refused >= refusedBefore + 3, { timeoutMs: 5000, what: "a few failed reconnects" });
    proxy.refuse = false;
    const acked = await Promise.all(pending);
    expect(acked.map((r) => r.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(publisher.queuedPublishes).toBe(0);
    const reader = client(node.url);
    const seen: number[] = [];
    for await (const m of reader.subscribe("offline", { from: "earliest" })) {
      seen.push((m.value as { i: number }).i);
      if (seen.length === 50) break;
    }
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("rejects publishes beyond maxQueuedPublishes with a retriable QUEUE_FULL error", async () => {
    const { proxy } = await setup();
    proxy.refuse = true;
    const publisher = client(proxy.url, { maxQueuedPublishes: 5 });
    const accepted = Array.from({ length: 5 }, (_, i) => publisher.publish("full", i));
    accepted.forEach((p) => p.catch(() => {}));
    const err = await publisher.publish("full", 5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TributaryClientError);
    expect(err).toMatchObject({ name: "TributaryClientError", code: "QUEUE_FULL", retriable: true });
    proxy.refuse = false;
    expect((await Promise.all(accepted)).length).toBe(5);
  });
});

describe("SDK offsetOutOfRange", () => {
  it("applies reset earliest to an offset past the end and reports it", async () => {
    const { node } = await setup();
    const c = client(node.url);
    for (let i = 0; i < 5; i++) await c.publish("oor", i);
    const events: unknown[] = [];
    c.on("offsetOutOfRange", (e) => events.push({ ...e, subscription: undefined }));
    const seen: number[] = [];
    for await (const m of c.subscribe("oor", { from: { offsets: { 0: 1000 } }, reset: "earliest" })) {
      seen.push(m.value as number);
      if (seen.length === 5) break;
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(events).toEqual([{ subscription: undefined, topic: "oor", partition: 0, reason: "OFFSET_OUT_OF_RANGE", requested: 1000, offset: 0, epoch: expect.any(String), reset: "earliest" }]);
  });

  it("fails the subscription with OFFSET_OUT_OF_RANGE when the policy is error", async () => {
    const { node } = await setup();
    const c = client(node.url);
    await c.publish("oor-error", 1);
    const sub = c.subscribe("oor-error", { from: { offsets: { 0: 99 } }, reset: "error" });
    const err = await (async () => {
      for await (const _ of sub) return "message";
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "OFFSET_OUT_OF_RANGE", retriable: false });
    expect(sub.closed).toBe(true);
  });

  it("resets to the new history when the topic was re-created while the client was away (STALE_EPOCH)", async () => {
    const { node, proxy } = await setup();
    const publisher = client(node.url);
    const subscriber = client(proxy.url);
    const values: string[] = [];
    const events: Array<{ reason: string; reset: string; offset: number }> = [];
    subscriber.on("offsetOutOfRange", (e) => events.push({ reason: e.reason, reset: e.reset, offset: e.offset }));
    subscriber.subscribe("epochs", (m) => void values.push(m.value as string), { from: "earliest", reset: "earliest" });
    await until(() => subscriber.state === State.Connected, "connected");
    for (let i = 0; i < 3; i++) await publisher.publish("epochs", `old-${i}`);
    await until(() => values.length === 3, "old records");
    proxy.refuse = true;
    proxy.sever();
    await node.node.broker.deleteTopic("epochs");
    await node.node.broker.createTopic("epochs", { partitions: 1 });
    for (let i = 0; i < 5; i++) await publisher.publish("epochs", `new-${i}`);
    proxy.refuse = false;
    await until(() => values.length === 8, "new records");
    expect(values).toEqual(["old-0", "old-1", "old-2", "new-0", "new-1", "new-2", "new-3", "new-4"]);
    expect(events).toEqual([{ reason: "STALE_EPOCH", reset: "earliest", offset: 0 }]);
  });
});
