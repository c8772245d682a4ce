/**
 * Health of the file engine's storage: whether every fdatasync succeeded since open.
 *
 * A failed fdatasync leaves the state of written data unknown (Linux may drop the dirty
 * pages and report the error once: "fsyncgate"), so it is not retried: the partition (or
 * the offsets store) refuses further writes with STORAGE_ERROR, and the engine reports
 * itself unhealthy until the process restarts and recovery checks the files. The node's
 * /readyz answers 503 while unhealthy and `tributary_storage_fsync_failures_total` counts
 * the failures (read at scrape time from `FileLogEngine.health()`).
 */
import type { EngineHealth } from "../log-engine.ts";

export class StorageHealth {
  #failures = 0;
  #problem: string | null = null;
  readonly #onFailure: (what: string, err: unknown) => void;

  constructor(onFailure: (what: string, err: unknown) => void) {
    this.#onFailure = onFailure;
  }

  /** Records a failed fdatasync of `what` (a partition, the offsets file); the first one names the problem. */
  fsyncFailed(what: string, err: unknown): void {
    this.#failures++;
    this.#problem ??= `fdatasync of ${what} failed (${err instanceof Error ? err.message : String(err)}); writes to it are refused until the node restarts and recovers`;
    this.#onFailure(what, err);
  }

  snapshot(): EngineHealth {
    return { ok: this.#problem === null, problem: this.#problem, fsyncFailures: this.#failures };
  }
}
