import { performance } from "node:perf_hooks";
import { recordGroupCommit } from "../../metrics/storage-metrics.ts";

/**
 * Group commit: many waiters, one fsync.
 *
 * `request()` resolves after a sync that STARTED after the call (so it covers every write
 * the caller made before calling). While a sync runs, new requests queue for the next one;
 * when it ends, one sync serves the whole queue. With N producers waiting, the device sees
 * one flush per round instead of N.
 */
export class GroupCommit {
  readonly #sync: () => Promise<void>;
  #waiting: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  #running = false;
  /** Syncs performed so far. */
  syncs = 0;

  constructor(sync: () => Promise<void>) {
    this.#sync = sync;
  }

  get busy(): boolean {
    return this.#running;
  }

  request(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      if (!this.#running) void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        this.syncs++;
        const started = performance.now();
        await this.#sync();
        recordGroupCommit((performance.now() - started) / 1000, batch.length); // tributary_fsync_duration_seconds, tributary_group_commit_batch_size
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.#running = false;
  }
}
