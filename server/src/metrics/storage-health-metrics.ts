import { Counter, Gauge, type Registry } from "prom-client";
import type { EngineHealth } from "../log/log-engine.ts";

/**
 * The log engine's storage health, read at scrape time (`LogEngine.health`, file engine):
 * `tributary_storage_fsync_failures_total` (failed fdatasync calls since the engine opened)
 * and `tributary_storage_healthy` (0 after such a failure, until restart: /readyz is 503
 * meanwhile). Engines without a health signal (Redis) export 0 failures and healthy 1.
 */
export function registerStorageHealthMetrics(registry: Registry, health: () => EngineHealth | null): void {
  new Counter({
    name: "tributary_storage_fsync_failures_total",
    help: "Failed fdatasync calls of the file engine since it opened; after one, the partition (or offsets store) refuses writes and /readyz answers 503 until restart.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(health()?.fsyncFailures ?? 0);
    },
  });
  new Gauge({
    name: "tributary_storage_healthy",
    help: "1 while the log engine's storage is healthy, 0 after a failure only a restart repairs (file engine: a failed fdatasync).",
    registers: [registry],
    collect() {
      this.set(health()?.ok === false ? 0 : 1);
    },
  });
}
