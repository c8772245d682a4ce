/**
 * The file engine's compaction scheduler (internal to FileLogEngine): runs passes one at a
 * time (explicit `compact()` calls and the timer's rounds queue behind each other), picks
 * the partitions of compacted topics whose dirty ratio reached their topic's
 * minCleanableDirtyRatio, cleans each with log-cleaner.ts, and keeps totals.
 *
 * Failures: an explicit pass throws the first partition's failure; the timer's round
 * reports each failing partition (logged, counted through `report`) and goes on with the
 * next, so one damaged partition never keeps the others from being compacted.
 */
import { TributaryError, isTributaryError } from "../../errors.ts";
import { addCompactionStats, emptyCompactionStats, isCompacted, type CompactionStats, type TopicConfig } from "../log-engine.ts";
import { cleanPartitionIfAlive } from "./log-cleaner.ts";
import type { PartitionLog, PartitionOptions } from "./partition-log.ts";

/** What the compactor needs of the engine. */
export interface CompactorHost {
  /** Topic names now. */
  topicNames(): string[];
  /** A topic's config and partitions, or undefined once deleted. */
  topic(name: string): { config: TopicConfig; partitions: PartitionLog[] } | undefined;
  readonly closed: boolean;
  readonly partitionOptions: PartitionOptions;
  /** Called at the start of every pass (metrics: tributary_log_maintenance_runs_total). */
  passStarted(): void;
  /** A background round's failure: log and count it. */
  report(err: TributaryError, context: Record<string, unknown>): void;
}

export class FileCompactor {
  readonly #host: CompactorHost;
  #running: Promise<CompactionStats> | null = null;
  #totals = emptyCompactionStats();

  constructor(host: CompactorHost) {
    this.#host = host;
  }

  /** Totals of every pass since open. */
  get totals(): CompactionStats {
    return { ...this.#totals };
  }

  /** The pass running now, if any (close waits for it). */
  get running(): Promise<CompactionStats> | null {
    return this.#running;
  }

  /** One pass, after the one running (if any). `report` set: partition failures are reported, not thrown. */
  run(only: string | undefined, force: boolean, now: number | undefined, report?: (err: TributaryError) => void): Promise<CompactionStats> {
    const previous = this.#running;
    const run = (async () => {
      if (previous) await previous.catch(() => undefined); // its failure went to its own caller
      return this.#pass(only, force, now, report);
    })();
    this.#running = run;
    const clear = (): void => {
      if (this.#running === run) this.#running = null;
    };
    run.then(clear, clear);
    return run;
  }

  /** The timer's round: skipped while a pass runs; failures reported, never thrown. */
  async round(): Promise<void> {
    if (this.#host.closed || this.#running) return;
    const report = (err: unknown): void => {
      if (this.#host.closed) return;
      const failure = isTributaryError(err) ? err : new TributaryError("INTERNAL", `compaction failed: ${String(err)}`, {}, { cause: err });
      this.#host.report(failure, { ...failure.context });
    };
    try {
      await this.run(undefined, false, undefined, report);
    } catch (err) {
      report(err);
    }
  }

  async #pass(only: string | undefined, force: boolean, now: number | undefined, report: ((err: TributaryError) => void) | undefined): Promise<CompactionStats> {
    const host = this.#host;
    host.passStarted();
    const total = emptyCompactionStats();
    const names = only !== undefined ? [only] : host.topicNames().sort();
    for (const name of names) {
      const t = host.topic(name);
      if (!t || host.closed || !isCompacted(t.config.cleanupPolicy)) continue;
      for (const log of t.partitions) {
        if (host.closed || log.gone) break;
        if (!force && (log.segmentCount < 2 || log.dirtyRatio < t.config.minCleanableDirtyRatio)) continue;
        log.compacting = true;
        try {
          const stats = await cleanPartitionIfAlive(log, {
            deleteRetentionMs: t.config.deleteRetentionMs,
            segmentBytes: log.segmentBytes,
            indexIntervalBytes: host.partitionOptions.indexIntervalBytes,
            maxBatchBytes: host.partitionOptions.maxBatchBytes,
            now: now ?? Date.now(),
          });
          if (stats) {
            addCompactionStats(total, stats);
            addCompactionStats(this.#totals, stats);
          }
        } catch (err) {
          const failure =
            err instanceof TributaryError
              ? err
              : new TributaryError("STORAGE_ERROR", `compaction of ${name}/${log.partition} failed: ${(err as Error).message}`, { topic: name, partition: log.partition }, { cause: err });
          if (!report) throw failure;
          report(failure);
        } finally {
          log.compacting = false;
        }
      }
    }
    return total;
  }
}
