/**
 * Where the Redis users of a node (log engine, node registry, group leases and bus) report
 * the failures no caller sees: connection `error` events, periodic passes, fire-and-forget
 * messages. Each one is logged with its context (logger event + fields) and counted in
 * `tributary_background_errors_total{task}`; none is dropped.
 *
 * Failures that repeat while a condition lasts (a connection down, heartbeats failing)
 * go through a `FailureSeries`: every failure is counted, the first one is logged at
 * `warn`, then at most one line per `repeatLogMs` while it lasts (with the count so far),
 * and the recovery once at `info`.
 */
import { createLogger, type Logger } from "../logger.ts";
import type { BackgroundTask, Metrics } from "../metrics/metrics.ts";
import type { RedisClient } from "./redis-connection.ts";
import { mapRedisError } from "./redis-errors.ts";

/** A failure that can repeat until the condition behind it clears. */
export interface FailureSeries {
  /** Counts the failure; logs it if it starts the series or the last line is older than `repeatLogMs`. */
  failed(err: unknown, fields?: Record<string, unknown>): void;
  /** Ends the series (logs `<recoveredEvent>` once if it was failing). */
  recovered(): void;
  readonly failing: boolean;
}

export interface RedisErrorReporterOptions {
  /** While a series keeps failing, one log line per this period at most (default 30 s). */
  repeatLogMs?: number;
}

export class RedisErrorReporter {
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #repeatLogMs: number;

  /** Without `metrics` failures are only logged (a library user's engine, the CLI). */
  constructor(log: Logger, metrics?: Metrics, options: RedisErrorReporterOptions = {}) {
    this.#log = log;
    this.#metrics = metrics;
    this.#repeatLogMs = options.repeatLogMs ?? 30_000;
  }

  /** Logs to stderr (warn and above) and counts nowhere: for engines and registries built without a node. */
  static standalone(): RedisErrorReporter {
    return new RedisErrorReporter(createLogger("warn"));
  }

  /** Logs `event` at warn with the error's code and message and `context`, and counts it under `task`. */
  report(task: BackgroundTask, event: string, err: unknown, context: Record<string, unknown> = {}): void {
    this.#count(task);
    this.#log.warn(event, { task, ...context, ...describe(err) });
  }

  /** Logs what was done about a reported failure (warn, not counted again). */
  note(event: string, fields: Record<string, unknown>): void {
    this.#log.warn(event, fields);
  }

  /** A series of failures of one recurring job (see the module comment). */
  series(task: BackgroundTask, event: string, recoveredEvent: string, context: Record<string, unknown> = {}): FailureSeries {
    let failing = false;
    let since = 0;
    let lastLogged = 0;
    let failures = 0;
    return {
      failed: (err, fields = {}) => {
        this.#count(task);
        const now = Date.now();
        failures = failing ? failures + 1 : 1;
        if (!failing) {
          failing = true;
          since = lastLogged = now;
          this.#log.warn(event, { task, ...context, ...fields, ...describe(err) });
        } else if (now - lastLogged >= this.#repeatLogMs) {
          lastLogged = now;
          this.#log.warn(event, { task, ...context, ...fields, ...describe(err), failures, failingForMs: now - since });
        }
      },
      recovered: () => {
        if (!failing) return;
        failing = false;
        this.#log.info(recoveredEvent, { task, ...context, failures, failedForMs: Date.now() - since });
      },
      get failing() {
        return failing;
      },
    };
  }

  /**
   * Follows a connection's `error` events (and a Cluster's `node error`) as a series of task
   * `redis-connection`: logged as `redis.connection_error` when errors start, counted each,
   * `redis.connection_recovered` at the next `ready`. Errors before the first `ready` belong
   * to the connect call, which throws them to its caller (connectClient). ioredis keeps
   * reconnecting in the background; commands meanwhile fail with UNAVAILABLE for their callers.
   */
  watch(client: RedisClient, context: Record<string, unknown>): void {
    // Command latency, failures and reconnects (tributary_redis_*); subscriber connections block on reads: not timed.
    if (context.role === "commands") this.#metrics?.storage.watchRedis(client, String(context.component));
    const series = this.series("redis-connection", "redis.connection_error", "redis.connection_recovered", context);
    let wasReady = false;
    client.on("ready", () => {
      wasReady = true;
      series.recovered();
    });
    client.on("error", (err: unknown) => {
      if (wasReady) series.failed(err);
    });
    if ("isCluster" in client && client.isCluster) {
      client.on("node error", (err: unknown, address: string) => {
        if (wasReady) series.failed(err, { address });
      });
    }
  }

  #count(task: BackgroundTask): void {
    this.#metrics?.backgroundErrors.inc({ task });
  }
}

function describe(err: unknown): { code: string; message: string } {
  const e = mapRedisError(err);
  return { code: e.code, message: e.message };
}
