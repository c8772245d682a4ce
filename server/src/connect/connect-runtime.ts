/**
 * The connect runtime: starts every configured connector as a task (sink-task.ts,
 * source-task.ts), keeps its state, and pauses, resumes and restarts it on request.
 *
 * States: starting → running; paused (stopped on request, positions kept: a sink's group
 * commit, a source's saved position); failed (its start threw, or it cannot go on: the
 * error is in the status; a failed start is retried with backoff, a fatal error waits for
 * `restart`); stopped (the process is shutting down, or a source that ended by itself:
 * `resume` or `restart` runs it again). Operations on one connector run one after the other.
 */
import type { Logger } from "../logger.ts";
import type { ConnectConfig, ConnectorConfig } from "./connect-config.ts";
import type { ConnectMetrics, ConnectorState } from "./connect-metrics.ts";
import { createConnector } from "./connector-registry.ts";
import type { NodeApi } from "./node-api.ts";
import { OffsetStore } from "./offset-store.ts";
import { retryDelay } from "./retry.ts";
import { SinkTask } from "./sink-task.ts";
import { SourceTask } from "./source-task.ts";
import { isTributaryError, TributaryError } from "../errors.ts";

export interface ConnectorStatus {
  name: string;
  type: string;
  state: ConnectorState;
  /** The last error (failed state, or the last failed attempt while running), with its time. */
  error: string | null;
  errorAt: number | null;
  startedAt: number | null;
  /** Sinks: the consumer group holding their progress. */
  group: string | null;
  /** Sources: the topic they produce to; sinks: the topics they consume. */
  topics: string[];
}

export interface ConnectRuntimeOptions {
  api: NodeApi;
  wsUrl: string;
  token: string | undefined;
  metrics: ConnectMetrics;
  logger: Logger;
  /** Consumer-group session timeout of sink members, ms (the node's default when omitted). */
  sessionTimeoutMs?: number;
}

interface Entry {
  config: ConnectorConfig;
  state: ConnectorState;
  task: SinkTask | SourceTask | undefined;
  error: string | null;
  errorAt: number | null;
  startedAt: number | null;
  /** Serialises operations on this connector. */
  chain: Promise<void>;
  /** Failed starts in a row (backoff of the automatic retry). */
  startFailures: number;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
}

export class ConnectRuntime {
  readonly #options: ConnectRuntimeOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #offsets: OffsetStore;
  #closed = false;

  constructor(config: ConnectConfig, options: ConnectRuntimeOptions) {
    this.#options = options;
    this.#offsets = new OffsetStore(options.api, config.offsetsTopic);
    for (const c of config.connectors) {
      createConnector(c); // validates the connector's fields now: a config error stops the process before anything starts
      this.#entries.set(c.name, { config: c, state: "stopped", task: undefined, error: null, errorAt: null, startedAt: null, chain: Promise.resolve(), startFailures: 0, retryTimer: undefined });
      options.metrics.setState(c.name, "stopped");
    }
  }

  /** Loads source positions, then starts every connector (a connector failing to start does not stop the others). */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#offsets.load();
        break;
      } catch (err) {
        // The node may be starting too: wait for it a while (about a minute), then give up with its error.
        if (!isTributaryError(err) || !err.retriable || attempt >= 20) throw err;
        this.#options.logger.warn("connect.offsets.load_failed", { topic: this.#offsets.topic, attempt, error: err.message });
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * attempt)));
      }
    }
    await Promise.all([...this.#entries.values()].map((e) => this.#enqueue(e, () => this.#startTask(e))));
  }

  status(): ConnectorStatus[] {
    return [...this.#entries.values()].map((e) => this.#statusOf(e));
  }

  statusOf(name: string): ConnectorStatus {
    return this.#statusOf(this.#entry(name));
  }

  async pause(name: string): Promise<ConnectorStatus> {
    const e = this.#entry(name);
    await this.#enqueue(e, async () => {
      this.#cancelRetry(e);
      await this.#stopTask(e);
      this.#setState(e, "paused");
    });
    return this.#statusOf(e);
  }

  async resume(name: string): Promise<ConnectorStatus> {
    const e = this.#entry(name);
    await this.#enqueue(e, async () => {
      if (e.state === "paused" || e.state === "stopped") await this.#startTask(e);
    });
    return this.#statusOf(e);
  }

  async restart(name: string): Promise<ConnectorStatus> {
    const e = this.#entry(name);
    await this.#enqueue(e, async () => {
      this.#cancelRetry(e);
      await this.#stopTask(e);
      e.startFailures = 0;
      await this.#startTask(e);
    });
    return this.#statusOf(e);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      [...this.#entries.values()].map((e) =>
        this.#enqueue(e, async () => {
          this.#cancelRetry(e);
          await this.#stopTask(e);
          this.#setState(e, "stopped");
        }),
      ),
    );
  }

  #entry(name: string): Entry {
    const e = this.#entries.get(name);
    if (!e) throw new TributaryError("NOT_FOUND", `no connector named "${name}" (configured: ${[...this.#entries.keys()].join(", ")})`, { connector: name });
    return e;
  }

  #statusOf(e: Entry): ConnectorStatus {
    return {
      name: e.config.name,
      type: e.config.type,
      state: e.state,
      error: e.error,
      errorAt: e.errorAt,
      startedAt: e.startedAt,
      group: e.config.sink ? `connect.${e.config.name}` : null,
      topics: e.config.sink ? e.config.sink.topics : [e.config.topic!],
    };
  }

  #enqueue(e: Entry, op: () => Promise<void>): Promise<void> {
    const run = e.chain.then(op);
    e.chain = run.catch((err: unknown) => this.#options.logger.error("connect.connector.operation_failed", { connector: e.config.name, error: (err as Error).message }));
    return run;
  }

  #setState(e: Entry, state: ConnectorState): void {
    e.state = state;
    this.#options.metrics.setState(e.config.name, state);
    this.#options.logger.info("connect.connector.state", { connector: e.config.name, state, ...(state === "failed" ? { error: e.error } : {}) });
  }

  #noteError(e: Entry, err: Error): void {
    e.error = err.message;
    e.errorAt = Date.now();
  }

  async #startTask(e: Entry): Promise<void> {
    if (this.#closed) return;
    this.#setState(e, "starting");
    const { logger, metrics, api } = this.#options;
    const connector = createConnector(e.config);
    const onError = (err: Error) => this.#noteError(e, err);
    let task: SinkTask | SourceTask;
    if (connector.kind === "sink") {
      task = new SinkTask(e.config, connector.sink, this.#options.sessionTimeoutMs, {
        wsUrl: this.#options.wsUrl,
        token: this.#options.token,
        api,
        metrics,
        logger,
        onError,
        onFatal: (err) => this.#fail(e, task, err),
      });
    } else {
      task = new SourceTask(e.config.name, e.config.topic!, connector.source, { api, offsets: this.#offsets, metrics, logger, onError });
    }
    e.task = task;
    try {
      if (task instanceof SinkTask) await task.start();
      else task.start((err) => (err ? this.#fail(e, task, err) : this.#finished(e, task)));
    } catch (err) {
      e.task = undefined;
      this.#noteError(e, err as Error);
      metrics.failures.inc({ connector: e.config.name, kind: "start" });
      this.#setState(e, "failed");
      await task.stop().catch((stopErr: Error) => logger.warn("connect.connector.stop_failed", { connector: e.config.name, error: stopErr.message }));
      this.#scheduleRetry(e);
      return;
    }
    e.startFailures = 0;
    e.startedAt = Date.now();
    if (e.task === task && e.state === "starting") this.#setState(e, "running");
  }

  /** The task cannot go on: stop it and wait for `restart`. */
  #fail(e: Entry, task: SinkTask | SourceTask, err: Error): void {
    void this.#enqueue(e, async () => {
      if (e.task !== task) return; // already stopped or replaced
      this.#noteError(e, err);
      this.#options.metrics.failures.inc({ connector: e.config.name, kind: "fatal" });
      await this.#stopTask(e);
      this.#setState(e, "failed");
    });
  }

  /** A source returned by itself (an NDJSON file read to its end without `follow`): stopped, `resume` runs it again. */
  #finished(e: Entry, task: SinkTask | SourceTask): void {
    void this.#enqueue(e, async () => {
      if (e.task !== task) return; // stopped on request: the request sets the state
      e.task = undefined;
      this.#setState(e, "stopped");
    });
  }

  async #stopTask(e: Entry): Promise<void> {
    const task = e.task;
    e.task = undefined;
    if (!task) return;
    try {
      await task.stop();
    } catch (err) {
      this.#options.logger.error("connect.connector.stop_failed", { connector: e.config.name, error: (err as Error).message });
    }
  }

  #scheduleRetry(e: Entry): void {
    if (this.#closed) return;
    e.startFailures++;
    const delay = retryDelay(e.startFailures, 500, 30_000);
    this.#options.logger.warn("connect.connector.start_retry", { connector: e.config.name, inMs: delay, error: e.error });
    e.retryTimer = setTimeout(() => {
      e.retryTimer = undefined;
      void this.#enqueue(e, async () => {
        if (e.state === "failed" && e.task === undefined) await this.#startTask(e);
      });
    }, delay);
  }

  #cancelRetry(e: Entry): void {
    if (e.retryTimer) clearTimeout(e.retryTimer);
    e.retryTimer = undefined;
  }
}
