/**
 * Shutdown with the storage gone: a node on a Redis that stopped answering exits within
 * 5 s of SIGTERM with status 0, and logs what it abandoned (nothing acknowledged depends
 * on it: Redis acknowledged those writes itself).
 */
import { afterEach, describe, expect, it } from "vitest";
import { spawnTributary } from "./helpers/node-process.ts";
import { startRedis, type RedisServer } from "./helpers/redis-harness.ts";
import { within } from "./helpers/wait.ts";

let redis: RedisServer | null = null;
afterEach(async () => {
  await redis?.stop();
  redis = null;
});

describe("shutdown", () => {
  it("a node whose Redis is unreachable exits within 5 s of SIGTERM with status 0, logging what it abandoned", async () => {
    redis = await startRedis();
    const node = spawnTributary(["start", "--engine", "redis", "--redis", redis.url, "--port", "0", "--mqtt-port", "0"]);
    let stdout = "";
    await within(
      new Promise<void>((resolve) =>
        node.child.stdout!.on("data", (d: Buffer) => {
          stdout += d.toString();
          if (stdout.includes("tributary listening")) resolve();
        }),
      ),
      20_000,
      "the node to listen",
    );
    await redis.stop("SIGKILL");
    const started = Date.now();
    node.child.kill("SIGTERM");
    const code = await within(node.exited, 10_000, "the node to exit");
    const took = Date.now() - started;
    expect(code).toBe(0);
    expect(took).toBeLessThan(5000);
    expect(node.stderr()).toContain("node.stopped");
  });
});
