import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "../../../test/helpers/redis-harness.ts";
import { createLogger } from "../logger.ts";
import { BACKGROUND_TASKS, Metrics, type BackgroundTask } from "../metrics/metrics.ts";
import { connectClient, createClient, describeTarget } from "./redis-connection.ts";
import { RedisErrorReporter } from "./redis-error-reporter.ts";
import { waitFor } from "../../../test/helpers/wait.ts";

type Line = Record<string, unknown> & { level: string; event: string };

function capture(): { lines: Line[]; reporter: RedisErrorReporter; metrics: Metrics; events(name: string): Line[] } {
  const lines: Line[] = [];
  const metrics = new Metrics({ defaultMetrics: false });
  const reporter = new RedisErrorReporter(createLogger("debug", (l) => lines.push(JSON.parse(l) as Line)), metrics);
  return { lines, reporter, metrics, events: (name) => lines.filter((l) => l.event === name) };
}

async function counted(metrics: Metrics, task: BackgroundTask): Promise<number> {
  const { values } = await metrics.backgroundErrors.get();
  return values.find((v) => v.labels.task === task)?.value ?? Number.NaN;
}

const until = (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> => waitFor(check, { what, timeoutMs });

describe("tributary_background_errors_total", () => {
  it("exports every background task at zero before anything failed", async () => {
    const text = await new Metrics({ defaultMetrics: false }).expose();
    for (const task of BACKGROUND_TASKS) expect(text).toContain(`tributary_background_errors_total{task="${task}"} 0`);
  });
});

describe("RedisErrorReporter", () => {
  it("logs a one-off failure with its task, code and context, and counts it", async () => {
    const { reporter, metrics, events } = capture();
    reporter.report("redis-script-preload", "redis.script_preload_failed", new Error("connect ECONNREFUSED 127.0.0.1:1"), { component: "log-engine" });
    expect(events("redis.script_preload_failed")).toEqual([
      expect.objectContaining({ level: "warn", task: "redis-script-preload", component: "log-engine", code: "UNAVAILABLE", message: expect.stringMatching(/ECONNREFUSED/) }),
    ]);
    expect(await counted(metrics, "redis-script-preload")).toBe(1);
    expect(await counted(metrics, "redis-retention")).toBe(0);
  });

  it("counts every failure of a series but logs it when it starts, at most once per period while it lasts, and its recovery once", async () => {
    const { reporter, metrics, events } = capture();
    const series = reporter.series("cluster-heartbeat", "cluster.heartbeat_failed", "cluster.heartbeat_recovered", { nodeId: "n1" });
    series.recovered(); // nothing failed: nothing to say
    for (let i = 0; i < 5; i++) series.failed(new Error("Connection is closed."));
    expect(series.failing).toBe(true);
    expect(events("cluster.heartbeat_failed")).toHaveLength(1);
    expect(events("cluster.heartbeat_failed")[0]).toMatchObject({ nodeId: "n1", task: "cluster-heartbeat", code: "UNAVAILABLE" });
    expect(await counted(metrics, "cluster-heartbeat")).toBe(5);
    series.recovered();
    series.recovered();
    expect(events("cluster.heartbeat_recovered")).toEqual([expect.objectContaining({ level: "info", nodeId: "n1", failures: 5 })]);

    // Past the period, a still-failing series logs again with the count so far.
    const lines: Line[] = [];
    const repeating = new RedisErrorReporter(createLogger("debug", (l) => lines.push(JSON.parse(l) as Line)), undefined, { repeatLogMs: 0 });
    const renewals = repeating.series("group-lease", "group.lease_renew_failed", "group.lease_renew_recovered");
    renewals.failed(new Error("a"));
    renewals.failed(new Error("b"));
    expect(lines.map((l) => [l.event, l.failures])).toEqual([["group.lease_renew_failed", undefined], ["group.lease_renew_failed", 2]]);
  });

  it("never puts a URL's password in logs", () => {
    expect(describeTarget({ url: "redis://:s3cret@10.0.0.5:6380/2" })).toBe("redis://***@10.0.0.5:6380/2");
    expect(describeTarget({ url: "rediss://user:s3cret@h:1" })).toBe("rediss://***@h:1");
  });
});

describe("Redis connection errors", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.destroy();
  });

  it("logs-connection-errors-when-redis-goes-away-counts-each-and-logs-the-recovery", async () => {
    const { reporter, metrics, events } = capture();
    const target = { url: redis.url };
    const client = createClient(target, { role: "commands", component: "test", reporter });
    try {
      await connectClient(client, target);
      expect(await client.ping()).toBe("PONG");
      expect(events("redis.connection_error")).toEqual([]);

      await redis.stop("SIGKILL");
      // ioredis reconnects in the background: every failed attempt is an error event.
      await until(async () => (await counted(metrics, "redis-connection")) >= 2, "two counted connection errors");
      expect(events("redis.connection_error")).toEqual([
        expect.objectContaining({ level: "warn", task: "redis-connection", component: "test", role: "commands", target: redis.url, code: "UNAVAILABLE" }),
      ]);

      await redis.start();
      await until(() => events("redis.connection_recovered").length === 1, "the recovery line");
      expect(await client.ping()).toBe("PONG");
      const [recovered] = events("redis.connection_recovered");
      expect(recovered).toMatchObject({ level: "info", component: "test", role: "commands" });
      expect(recovered!.failures).toBeGreaterThanOrEqual(2);
      expect(events("redis.connection_error")).toHaveLength(1);
    } finally {
      client.disconnect();
    }
  });
});
