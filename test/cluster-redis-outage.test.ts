/**
 * Redis outages as nodes see them:
 * - Redis down: publishes fail fast with UNAVAILABLE (HTTP 503; the SDK retries until its
 *   publish deadline, then rejects with UNAVAILABLE), /readyz says
 *   503, nothing acknowledged before is lost, and service resumes on its own once Redis is
 *   back (restarted on the same port from its AOF).
 * - Redis restarted without persistence (a lost tail): offsets are reused under a new epoch,
 *   and subscribers holding the old (epoch, offset) are reset by their policy with a
 *   STALE_EPOCH event instead of silently skipping the new records.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, State, TributaryClientError, type Message, type OffsetOutOfRangeEvent, type TributaryClient } from "@tributary/client";
import { startRedisNode } from "./helpers/cluster-nodes.ts";
import { startRedis } from "./helpers/redis-harness.ts";
import { hasMarks, publishMarks, until } from "./helpers/sdk-node.ts";
import { retryUntilOk, waitFor } from "./helpers/wait.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function client(urls: string | string[]): TributaryClient {
  const c = connect(urls, { minReconnectDelay: 10, maxReconnectDelay: 200 });
  cleanups.push(() => c.close());
  return c;
}

async function status(url: string): Promise<number> {
  return (await fetch(url)).status;
}

async function untilStatus(url: string, expected: number, timeoutMs: number): Promise<void> {
  let got = 0;
  await waitFor(async () => (got = await status(url)) === expected, { timeoutMs, what: `${url} to answer HTTP ${expected}`, intervalMs: 50 }).catch((err: Error) => {
    throw new Error(`${err.message} (still ${got})`);
  });
}

describe("Redis outage", () => {
  it("fails publishes fast with UNAVAILABLE (the SDK after its retry deadline) and /readyz 503 while Redis is down, loses nothing acked, and resumes when Redis returns", async () => {
    const redis = await startRedis({ persistent: true });
    cleanups.push(() => redis.destroy());
    const a = await startRedisNode(redis.url, { defaultPartitions: 2 });
    const b = await startRedisNode(redis.url, { defaultPartitions: 2 });
    cleanups.push(() => a.close(), () => b.close());

    const publisher = client(a.wsUrl);
    const subscriber = client(b.wsUrl);
    const seen = new Map<number, Message<number>[]>();
    const markers: Array<{ partition: number; offset: number }> = [];
    const subscriberErrors: string[] = [];
    subscriber.on("error", (e) => subscriberErrors.push(`${e.code}: ${e.message}`));
    subscriber.subscribe<number>("outage", (m) => {
      if ((m.value as unknown) === "__marker__") return void markers.push(m);
      let list = seen.get(m.partition);
      if (!list) seen.set(m.partition, (list = []));
      list.push(m);
    }, { from: "earliest" });
    await until(() => publisher.state === State.Connected && subscriber.state === State.Connected, "connected");
    const acked: number[] = [];
    const publishAll = async (from: number, n: number) => {
      await Promise.all(Array.from({ length: n }, (_, i) => publisher.publish("outage", from + i, { key: `k${(from + i) % 5}` }).then(() => acked.push(from + i))));
    };
    await publishAll(0, 500);

    await redis.stop("SIGKILL");
    // HTTP publish: 503 UNAVAILABLE, at once.
    let t0 = Date.now();
    const http = await fetch(`${a.url}/topics/outage/records`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ records: [{ value: "x" }] }) });
    expect(http.status).toBe(503);
    const body = (await http.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("UNAVAILABLE");
    expect(body.error.message).toMatch(/Redis/);
    expect(Date.now() - t0).toBeLessThan(1000);
    // SDK publish: retried while Redis is down, rejected with UNAVAILABLE (retriable) at its deadline.
    t0 = Date.now();
    const err = await publisher.publish("outage", -1, { timeoutMs: 300 }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(TributaryClientError);
    expect((err as TributaryClientError).code).toBe("UNAVAILABLE");
    expect((err as TributaryClientError).retriable).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(295);
    expect(Date.now() - t0).toBeLessThan(1300);
    // Readiness: 503 on every node (PING cached at most 1 s).
    await untilStatus(`${a.url}/readyz`, 503, 2000);
    await untilStatus(`${b.url}/readyz`, 503, 2000);
    const readyz = (await (await fetch(`${a.url}/readyz`)).json()) as { error: { code: string; message: string } };
    expect(readyz.error).toMatchObject({ code: "UNAVAILABLE", message: expect.stringMatching(/^Redis does not answer/) });

    await redis.start(); // same port, same dir: the AOF is replayed
    await untilStatus(`${a.url}/readyz`, 200, 5000);
    await untilStatus(`${b.url}/readyz`, 200, 5000);
    await publishAll(500, 500);

    const total = () => [...seen.values()].reduce((s, l) => s + l.length, 0);
    await until(() => total() >= 1000, "the subscriber on B gets every acked record", 15_000).catch((err: Error) => {
      throw new Error(`${err.message}: got ${total()} (${[...seen].map(([p, l]) => `p${p}:${l.length}`)}), errors: ${subscriberErrors.join("; ")}`);
    });
    const ends = new Map<number, number>();
    for (const partition of [0, 1]) ends.set(partition, (await a.engine.offsets("outage", partition)).endOffset);
    // nothing extra arrives late: a marker after the last record of each partition
    const marks = await publishMarks(publisher, "outage", [0, 1]);
    await until(() => hasMarks(markers, marks), "the markers", 15_000);
    expect(acked.sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(total()).toBe(1000);
    const values: number[] = [];
    for (const [partition, list] of seen) {
      expect(list.map((m) => m.offset), `partition ${partition}: no gap`).toEqual(list.map((_, i) => i));
      expect(ends.get(partition), `partition ${partition}: only acked records in the log`).toBe(list.length);
      values.push(...list.map((m) => m.value));
    }
    expect(values.sort((x, y) => x - y)).toEqual(acked);
  });

  it("resets a subscriber resuming with the old epoch after Redis lost its data, instead of silently skipping the new records", async () => {
    const redis = await startRedis(); // no persistence: a restart loses everything
    cleanups.push(() => redis.destroy());
    const a = await startRedisNode(redis.url);
    cleanups.push(() => a.close());
    const publisher = client(a.wsUrl);
    const first = client(a.wsUrl);
    const before: number[] = [];
    const sub = first.subscribe<number>("epochs", (m) => void before.push(m.value), { from: "earliest" });
    await until(() => publisher.state === State.Connected && first.state === State.Connected, "connected");
    await Promise.all(Array.from({ length: 100 }, (_, i) => publisher.publish("epochs", i)));
    await until(() => before.length === 100, "first 100 records");
    const old = sub.position()[0]!;
    expect(old.offset).toBe(100);
    first.close();

    await redis.stop("SIGKILL");
    await redis.start(); // empty
    await until(() => publisher.state === State.Connected, "publisher connected");
    // New history: offsets 0..19 again, under a new epoch (retried while the node's connection to Redis comes back).
    await retryUntilOk(() => publisher.publish("epochs", 1000), { timeoutMs: 5000, what: "a publish to the restarted Redis", retryIf: (err) => (err as TributaryClientError).retriable });
    await Promise.all(Array.from({ length: 19 }, (_, i) => publisher.publish("epochs", 1001 + i)));
    const now = await a.engine.offsets("epochs", 0);
    expect(now.endOffset).toBe(20);
    expect(now.epoch).not.toBe(old.epoch);

    // A subscriber resuming from the old position (offset 100 of the old epoch).
    const resumed = client(a.wsUrl);
    const after: Message<number>[] = [];
    const resets: OffsetOutOfRangeEvent[] = [];
    const sub2 = resumed.subscribe<number>("epochs", (m) => void after.push(m), { from: { offsets: { 0: old.offset }, epochs: { 0: old.epoch } }, reset: "earliest" });
    sub2.on("offsetOutOfRange", (e) => resets.push(e));
    await until(() => after.length >= 20, "the new history from offset 0", 10_000);
    expect(resets).toHaveLength(1);
    expect(resets[0]).toMatchObject({ reason: "STALE_EPOCH", partition: 0, requested: 100, offset: 0, epoch: now.epoch, reset: "earliest" });
    expect(after.map((m) => m.value)).toEqual(Array.from({ length: 20 }, (_, i) => 1000 + i));
    expect(after.map((m) => m.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});
