import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import { startRedis, type RedisServer } from "../../../test/helpers/redis-harness.ts";
import { waitFor } from "../../../test/helpers/wait.ts";
import { GroupLeases } from "./group-leases.ts";

let redis: RedisServer;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.port, "127.0.0.1");
});
afterAll(async () => {
  client?.disconnect();
  await redis?.destroy();
});

describe("group coordinator leases", () => {
  it("grants a free lease to one node, tells the others who holds it, and hands it over on release with a higher epoch", async () => {
    const a = new GroupLeases({ client, prefix: "l1", nodeId: "A", ttlMs: 2000 });
    const b = new GroupLeases({ client, prefix: "l1", nodeId: "B", ttlMs: 2000 });
    const first = await a.acquire("g");
    expect(first.nodeId).toBe("A");
    expect(await b.acquire("g")).toEqual(first);
    expect(a.heldEpoch("g")).toBe(first.epoch);
    expect(b.heldEpoch("g")).toBeUndefined();
    await a.release("g");
    const second = await b.acquire("g");
    expect(second.nodeId).toBe("B");
    expect(second.epoch).toBeGreaterThan(first.epoch);
    expect(second.epoch).toBeGreaterThanOrEqual(Date.now() - 60_000); // never below the acquirer's clock
    await a.close();
    await b.close();
  });

  it("takes back a lease that expired while nobody else acquired it, and reports it lost once another node did", async () => {
    const lost: string[] = [];
    // renewals of A's second lease "h" show A's renewal passes (every third of the TTL, g then h)
    const evals = vi.spyOn(client, "eval");
    onTestFinished(() => evals.mockRestore());
    const renewalsOfH = () => evals.mock.calls.filter((call) => call[2] === "{l2:cluster}:lease:h").length;
    const a = new GroupLeases({ client, prefix: "l2", nodeId: "A", ttlMs: 300, onLost: (g) => lost.push(g) });
    const held = await a.acquire("g");
    await a.acquire("h");
    await client.del("{l2:cluster}:lease:g"); // expired behind A's back
    // A's next renewal takes it back (nobody acquired it meanwhile)
    await waitFor(async () => (await client.get("{l2:cluster}:lease:g")) !== null, { timeoutMs: 3000, what: "A to take its lease back" });
    expect(await a.holder("g")).toEqual(held);
    expect(lost).toEqual([]);

    await client.del("{l2:cluster}:lease:g");
    const b = new GroupLeases({ client, prefix: "l2", nodeId: "B", ttlMs: 300 });
    const taken = await b.acquire("g");
    expect(taken.epoch).toBeGreaterThan(held.epoch);
    await waitFor(() => lost.length > 0, { timeoutMs: 3000, what: "A to report the lease lost" });
    // two more renewals of h: at least one whole renewal pass after the one that found g taken
    const passes = renewalsOfH();
    await waitFor(() => renewalsOfH() >= passes + 2, { timeoutMs: 3000, what: "two more renewal passes of A" });
    expect(lost).toEqual(["g"]);
    expect(a.heldEpoch("g")).toBeUndefined();
    expect(await b.holder("g")).toEqual(taken);
    await a.close();
    await b.close();
  });

  it("keeps epochs growing after Redis lost the epoch counter", async () => {
    const a = new GroupLeases({ client, prefix: "l3", nodeId: "A", ttlMs: 2000 });
    const before = await a.acquire("g");
    await a.close();
    await client.del("{l3:cluster}:lease:g", "{l3:cluster}:lease-epoch:g"); // as after a restart without persistence
    await waitFor(() => Date.now() > before.epoch, { timeoutMs: 1000, what: "the clock to pass the old epoch" }); // epochs floor at the acquirer's clock
    const b = new GroupLeases({ client, prefix: "l3", nodeId: "B", ttlMs: 2000 });
    const after = await b.acquire("g");
    expect(after.epoch).toBeGreaterThan(before.epoch);
    await b.close();
  });
});
