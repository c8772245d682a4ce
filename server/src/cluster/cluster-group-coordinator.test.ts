/**
 * Cross-node group events that do not arrive: two ClusterGroupCoordinators on one real
 * redis-server, the member's node goes away, and the coordinator's assign to it is lost.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "../../../test/helpers/redis-harness.ts";
import type { GroupMemberChannel, MemberAssignment } from "../groups/index.ts";
import { RedisLogEngine } from "../log/redis/redis-log-engine.ts";
import { createLogger } from "../logger.ts";
import { Metrics, type BackgroundTask } from "../metrics/metrics.ts";
import { RedisErrorReporter } from "../redis/redis-error-reporter.ts";
import { ClusterGroupCoordinator } from "./cluster-group-coordinator.ts";
import { waitFor } from "../../../test/helpers/wait.ts";

type Line = Record<string, unknown> & { level: string; event: string };

let redis: RedisServer;
let engine: RedisLogEngine;
beforeAll(async () => {
  redis = await startRedis();
  engine = await RedisLogEngine.connect({ url: redis.url, keyPrefix: "cgc" });
});
afterAll(async () => {
  await engine?.close();
  await redis?.destroy();
});

async function counted(metrics: Metrics, task: BackgroundTask): Promise<number> {
  const { values } = await metrics.backgroundErrors.get();
  return values.find((v) => v.labels.task === task)?.value ?? Number.NaN;
}

const until = (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> => waitFor(check, { what, timeoutMs });

/** A member's channel that records what it was handed and confirms revokes at once. */
function recorder(): GroupMemberChannel & { assignments: MemberAssignment[] } {
  const assignments: MemberAssignment[] = [];
  return { assignments, assign: (a) => void assignments.push(a), revoke: async () => {} };
}

describe("ClusterGroupCoordinator, lost cross-node events", () => {
  it("an-assign-to-a-node-that-is-gone-is-logged-counted-and-removes-the-member-so-the-others-take-its-partitions", async () => {
    const prefix = `p${randomBytes(3).toString("hex")}`;
    const topic = "orders";
    await engine.createTopic(topic, { partitions: 4 });
    const lines: Line[] = [];
    const metrics = new Metrics({ defaultMetrics: false });
    const events = (name: string) => lines.filter((l) => l.event === name);
    const options = { engine, redisUrl: `${redis.url}?prefix=${prefix}`, rebalanceTimeoutMs: 200, requestTimeoutMs: 300 };
    const a = await ClusterGroupCoordinator.connect({
      ...options,
      nodeId: "A",
      reporter: new RedisErrorReporter(createLogger("debug", (l) => lines.push(JSON.parse(l) as Line)), metrics),
    });
    const b = await ClusterGroupCoordinator.connect({ ...options, nodeId: "B", reporter: new RedisErrorReporter(createLogger("error")) });
    try {
      const join = (via: ClusterGroupCoordinator, clientId: string, channel: GroupMemberChannel) =>
        via.join("g", { clientId, node: via.nodeId, topics: [topic], sessionTimeoutMs: 60_000, channel });

      // A coordinates (its member joined first); B's member gets its assignment over the bus.
      const m0 = recorder();
      const first = await join(a, "c0", m0);
      expect((await a.coordinatorOf("g"))?.nodeId).toBe("A");
      const m1 = recorder();
      const remote = await join(b, "c1", m1);
      await until(() => m1.assignments.some((x) => x.partitions.length > 0), "B's member to get partitions");
      expect(await counted(metrics, "group-event")).toBe(0);

      // B goes away (its inbox is gone); a third member joining on A makes the coordinator send B's member a new assignment.
      b.close();
      await b.closed();
      const m2 = recorder();
      const third = await join(a, "c2", m2);

      await until(() => events("group.event_failed").some((l) => l.kind === "assign"), "the lost assign to be reported");
      expect(events("group.event_failed").find((l) => l.kind === "assign")).toMatchObject({
        level: "warn",
        task: "group-event",
        group: "g",
        memberId: remote.memberId,
        node: "B",
        code: "UNAVAILABLE",
      });
      expect(await counted(metrics, "group-event")).toBeGreaterThanOrEqual(1);

      // Handled, not only logged: B's member is removed and A's members own every partition.
      await until(() => events("group.member_removed_after_lost_assign").length === 1, "the member's removal");
      expect(events("group.member_removed_after_lost_assign")[0]).toMatchObject({ group: "g", memberId: remote.memberId });
      await until(async () => {
        const d = await a.describeGroup("g");
        const owned = d.members.flatMap((m) => m.assignment.map((tp) => tp.partition)).sort();
        return d.state === "Stable" && d.members.map((m) => m.memberId).sort().join() === [first.memberId, third.memberId].sort().join() && owned.join() === "0,1,2,3";
      }, "the group to settle on A's two members with all four partitions");
      await expect(a.heartbeat("g", remote.memberId)).rejects.toMatchObject({ code: "UNKNOWN_MEMBER" }); // what B's member would hear: join again
    } finally {
      a.close();
      b.close();
      await a.closed();
      await b.closed();
    }
  });
});
