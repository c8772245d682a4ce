/**
 * The Redis engine's own work (retention pass, connections) against a Redis that goes away:
 * failures are logged with context and counted in tributary_background_errors_total{task}.
 * Each test starts its own redis-server, since it stops it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { startRedis } from "../../../../test/helpers/redis-harness.ts";
import { createLogger } from "../../logger.ts";
import { Metrics, type BackgroundTask } from "../../metrics/metrics.ts";
import { RedisErrorReporter } from "../../redis/redis-error-reporter.ts";
import { RedisLogEngine } from "./redis-log-engine.ts";
import { waitFor } from "../../../../test/helpers/wait.ts";

type Line = Record<string, unknown> & { level: string; event: string };

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function counted(metrics: Metrics, task: BackgroundTask): Promise<number> {
  const { values } = await metrics.backgroundErrors.get();
  return values.find((v) => v.labels.task === task)?.value ?? Number.NaN;
}

const until = (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> => waitFor(check, { what, timeoutMs });

describe("RedisLogEngine background failures", () => {
  it("retention-pass-against-a-stopped-redis-is-logged-and-counted-then-recovers", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.destroy());
    const lines: Line[] = [];
    const metrics = new Metrics({ defaultMetrics: false });
    const reporter = new RedisErrorReporter(createLogger("debug", (l) => lines.push(JSON.parse(l) as Line)), metrics);
    const events = (name: string) => lines.filter((l) => l.event === name);
    const engine = await RedisLogEngine.connect({ url: redis.url, keyPrefix: "bg", retentionCheckIntervalMs: 50, reporter });
    cleanups.push(() => engine.close());
    await engine.createTopic("metrics", { partitions: 2, retentionMs: 60_000 });
    await engine.append("metrics", 0, [{ key: null, value: new TextEncoder().encode("x"), headers: {}, timestamp: Date.now() }]);
    expect(await counted(metrics, "redis-retention")).toBe(0);

    await redis.stop("SIGKILL");
    await until(async () => (await counted(metrics, "redis-retention")) >= 2, "two failed retention passes");
    // One line for the series, not one per pass; the connection's errors are counted under their own task.
    expect(events("redis.retention_failed")).toEqual([
      expect.objectContaining({ level: "warn", task: "redis-retention", component: "log-engine", code: "UNAVAILABLE", message: expect.stringMatching(/Redis/) }),
    ]);
    // The command and the subscriber connection: one line each while they fail to reconnect.
    await until(() => events("redis.connection_error").length === 2, "both connections' error lines");
    expect(events("redis.connection_error").map((l) => l.role).sort()).toEqual(["commands", "subscriber"]);
    expect(await counted(metrics, "redis-connection")).toBeGreaterThanOrEqual(2);

    await redis.start(); // no persistence: an empty Redis, which the next pass handles fine
    await until(() => events("redis.retention_recovered").length === 1, "the retention pass to succeed again");
    expect(events("redis.retention_recovered")[0]).toMatchObject({ level: "info", task: "redis-retention" });
    expect(events("redis.retention_recovered")[0]!.failures).toBeGreaterThanOrEqual(2);
  });
});
