/**
 * SDK publish retries against a real node whose Redis goes away and comes back: the app's
 * publishes neither fail nor duplicate. The SDK re-sends each publish that failed with a
 * retriable code (UNAVAILABLE while Redis is down) with the same (producerId, seq) until
 * `publishTimeoutMs`; the node writes each at most once.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, State, type TributaryClient } from "@tributary/client";
import type { TributaryNode } from "../server/src/node.ts";
import { startRedisNode } from "./helpers/cluster-nodes.ts";
import { startRedis } from "./helpers/redis-harness.ts";
import { until } from "./helpers/sdk-node.ts";
import { waitFor } from "./helpers/wait.ts";

/** Produce requests the node answered UNAVAILABLE (tributary_produce_requests_total{code="UNAVAILABLE"}). */
async function unavailableProduces(node: TributaryNode): Promise<number> {
  return (await node.broker.metrics.produceRequests.get()).values.find((v) => v.labels.code === "UNAVAILABLE")?.value ?? 0;
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function client(url: string, options: Parameters<typeof connect>[1] = {}): TributaryClient {
  const c = connect(url, { minReconnectDelay: 10, maxReconnectDelay: 200, codec: "json", ...options });
  cleanups.push(() => c.close());
  return c;
}

describe("SDK publish retries across a Redis outage", () => {
  it("lands every publish made while Redis is down exactly once, with no error seen by the app", async () => {
    const redis = await startRedis({ persistent: true });
    cleanups.push(() => redis.destroy());
    const node = await startRedisNode(redis.url, { defaultPartitions: 3 });
    cleanups.push(() => node.close());

    const publisher = client(node.wsUrl, { maxPublishRetryDelay: 200 });
    const appErrors: string[] = [];
    publisher.on("error", (e) => appErrors.push(`${e.code}: ${e.message}`));
    await until(() => publisher.state === State.Connected, "connected");

    const TOTAL = 1500;
    const GATE_AT = 1200; // the producer never gets this far before the outage: it happens mid-stream
    let issued = 0;
    let failures = 0;
    const acked = new Map<number, { partition: number; offset: number }>();
    let outageStarted!: () => void;
    const outage = new Promise<void>((resolve) => (outageStarted = resolve));
    const producing = (async () => {
      while (issued < TOTAL) {
        if (issued === GATE_AT) await outage;
        const batch = Array.from({ length: 25 }, (_, j) => issued + j);
        issued += batch.length;
        await Promise.all(
          batch.map((v) =>
            publisher.publish("retried", v, v % 2 ? { key: `k${v % 7}` } : {}).then(
              (r) => void acked.set(v, r),
              (err: Error) => {
                failures++;
                appErrors.push(`publish ${v}: ${err.message}`);
              },
            ),
          ),
        );
      }
    })();

    await until(() => acked.size >= 300, "publishing before the outage");
    const failedBefore = await unavailableProduces(node);
    await redis.stop("SIGKILL");
    const issuedAtKill = issued;
    outageStarted();
    // Redis away: publishes fail UNAVAILABLE and are retried (a batch of 25 failing at least twice)
    await waitFor(async () => (await unavailableProduces(node)) >= failedBefore + 50, { timeoutMs: 15_000, what: "publishes failing UNAVAILABLE and being retried" });
    const ackedDuringOutage = acked.size;
    await redis.start(); // same port, AOF appendfsync always: nothing acknowledged is lost
    await producing;

    expect(failures).toBe(0);
    expect(appErrors).toEqual([]);
    expect(acked.size).toBe(TOTAL);
    expect(issuedAtKill, "the outage happened mid-stream").toBeLessThan(TOTAL);
    expect(ackedDuringOutage, "publishes were waiting for Redis").toBeLessThan(TOTAL);

    // The log holds every publish exactly once, at the offset its ack reported.
    const written = new Map<number, Array<{ partition: number; offset: number }>>();
    for (let partition = 0; partition < 3; partition++) {
      const end = (await node.engine.offsets("retried", partition)).endOffset;
      for (let offset = 0; offset < end; ) {
        const records = await node.engine.read("retried", partition, offset, { maxRecords: 1000 });
        for (const r of records) {
          const v = JSON.parse(new TextDecoder().decode(r.value!)) as number;
          written.set(v, [...(written.get(v) ?? []), { partition, offset: r.offset }]);
        }
        offset += records.length;
      }
    }
    const twice = [...written].filter(([, at]) => at.length > 1);
    expect(twice, "written more than once").toEqual([]);
    expect(written.size).toBe(TOTAL);
    for (const [v, at] of acked) expect(written.get(v), `publish ${v}`).toEqual([at]);
  });
});
