/**
 * Runs one sink connector: consumes its topics as consumer group `connect.<name>` over the
 * SDK (WebSocket), hands batches to the sink, retries, dead-letters, commits.
 *
 * Batching: a message is added to the batch; the batch is written when it holds `batchSize`
 * records or when no further message is buffered (so batches grow with the backlog and a
 * lone record is not held back). One `write` at a time.
 *
 * Commits (at-least-once): the group's position of a partition is only committed past
 * records the sink has written. The SDK marks a message processed when the handler returns,
 * and the handler that triggers a write returns after it, so a commit made right after a
 * write covers exactly the written records but the last one; an idle timer commits the
 * rest once nothing is in the batch and no handler runs. Stopping (pause, restart,
 * shutdown) never commits records that were not written: they come again on the next start.
 *
 * Retries and the DLQ: see connector.ts. A DLQ record carries the original key, value and
 * headers, plus `connect.error`, `connect.attempts`, `connect.connector`, `connect.topic`,
 * `connect.partition`, `connect.offset`, `connect.timestamp`; it is published with acks=all
 * before the original's offset can be committed.
 */
import { connect, type Message, type Subscription, type TributaryClient } from "@tributary/client";
import type { Logger } from "../logger.ts";
import type { ConnectorConfig, SinkSettings } from "./connect-config.ts";
import type { ConnectMetrics } from "./connect-metrics.ts";
import { isSinkError, type SinkConnector, type SinkRecord } from "./connector.ts";
import type { NodeApi } from "./node-api.ts";
import { abortableSleep, retryDelay, Stopped } from "./retry.ts";

export interface SinkTaskDeps {
  wsUrl: string;
  token: string | undefined;
  api: NodeApi;
  metrics: ConnectMetrics;
  logger: Logger;
  /** The task cannot go on (a record failed and there is no DLQ): the runtime marks the connector failed. */
  onFatal(err: Error): void;
  /** Records that failed, for the status API. */
  onError(err: Error): void;
}

const IDLE_COMMIT_MS = 1000;
const LAG_POLL_MS = 2000;

export class SinkTask {
  readonly name: string;
  readonly group: string;
  readonly #settings: SinkSettings;
  readonly #sink: SinkConnector;
  readonly #deps: SinkTaskDeps;
  readonly #sessionTimeoutMs: number | undefined;
  readonly #abort = new AbortController();
  #client: TributaryClient | undefined;
  #subs: Subscription<Uint8Array>[] = [];
  #batch: SinkRecord[] = [];
  /** The subscription each record of `#batch` came from. */
  #batchOwners: Subscription<Uint8Array>[] = [];
  #inHandler = 0;
  /** Flushes run one after the other (handlers of several topics may ask at once). */
  #chain: Promise<void> = Promise.resolve();
  #stopping = false;
  /** A message was left unwritten while stopping: no commit may follow. */
  #dirty = false;
  #timers: ReturnType<typeof setInterval>[] = [];
  #commitsInFlight = 0;

  constructor(config: ConnectorConfig, sink: SinkConnector, sessionTimeoutMs: number | undefined, deps: SinkTaskDeps) {
    this.name = config.name;
    this.group = `connect.${config.name}`;
    this.#settings = config.sink!;
    this.#sink = sink;
    this.#deps = deps;
    this.#sessionTimeoutMs = sessionTimeoutMs;
  }

  async start(): Promise<void> {
    await this.#sink.start();
    const dlq = this.#settings.dlqTopic;
    if (dlq !== null) {
      await this.#deps.api.createTopic({ name: dlq }).catch((err: { code?: string }) => {
        if (err?.code !== "TOPIC_EXISTS") throw err;
      });
    }
    const client = connect(this.#deps.wsUrl, { token: this.#deps.token, codec: "raw", clientId: `${this.group}.${process.pid}` });
    client.on("error", (err) => {
      this.#deps.metrics.failures.inc({ connector: this.name, kind: "node" });
      this.#deps.logger.warn("connect.sink.client_error", { connector: this.name, code: err.code, error: err.message });
    });
    this.#client = client;
    for (const topic of this.#settings.topics) {
      const sub: Subscription<Uint8Array> = client.subscribe<Uint8Array>(topic, (m: Message<Uint8Array>): Promise<void> | undefined => this.#onMessage(sub, m), {
        group: this.group,
        autoCommit: false,
        reset: this.#settings.from,
        // Two batches in flight, at most 8192: the SDK's buffer is an array whose shift() turns linear-time when it gets much larger.
        credit: Math.min(8192, Math.max(64, this.#settings.batchSize * 2)),
        presence: false,
        ...(this.#sessionTimeoutMs !== undefined ? { sessionTimeoutMs: this.#sessionTimeoutMs } : {}),
      });
      sub.on("error", (err: Error) => this.#deps.onFatal(err));
      this.#subs.push(sub);
    }
    this.#timers.push(setInterval(() => this.#idleCommit(), IDLE_COMMIT_MS));
    this.#timers.push(setInterval(() => void this.#pollLag(), LAG_POLL_MS));
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    for (const t of this.#timers) clearInterval(t);
    await this.#chain;
    if (!this.#dirty && this.#batch.length === 0 && this.#inHandler === 0) await this.#commit(this.#subs);
    for (const sub of this.#subs) await sub.unsubscribe().catch((err: Error) => this.#deps.logger.warn("connect.sink.unsubscribe_failed", { connector: this.name, error: err.message }));
    await this.#client?.close();
    await this.#sink.stop();
  }

  /**
   * Adds the message to the batch; returns a promise (the SDK waits for it before the next
   * message) only when the batch is written now, so most messages cost no promise at all.
   */
  #onMessage(sub: Subscription<Uint8Array>, m: Message<Uint8Array>): Promise<void> | undefined {
    if (this.#stopping) {
      this.#dirty = true;
      return undefined;
    }
    this.#batch.push(toSinkRecord(m));
    this.#batchOwners.push(sub);
    if (this.#batch.length < this.#settings.batchSize && this.#subs.some((s) => s.buffered > 0)) return undefined;
    return this.#flushFromHandler();
  }

  async #flushFromHandler(): Promise<void> {
    this.#inHandler++;
    try {
      const flushed = this.#chain.then(() => this.#flush());
      this.#chain = flushed.catch(() => undefined); // the outcome is handled below, by the handler that asked
      await flushed;
    } catch (err) {
      if (!(err instanceof Stopped)) throw err;
      this.#dirty = true;
    } finally {
      this.#inHandler--;
    }
  }

  /**
   * Writes the batch, then commits every subscription with no record in the (new) batch:
   * their processed positions only cover written records. A subscription with records in
   * the new batch is committed by the flush that writes them.
   */
  async #flush(): Promise<void> {
    const batch = this.#batch;
    const owners = new Set(this.#batchOwners);
    this.#batch = [];
    this.#batchOwners = [];
    this.#deps.metrics.recordsIn.inc({ connector: this.name }, batch.length); // counted per batch: one label lookup, not one per record
    if (batch.length > 0) await this.#deliver(batch);
    const pending = new Set(this.#batchOwners);
    void this.#commit([...owners].filter((s) => !pending.has(s))); // failures are logged and counted there
  }

  #idleCommit(): void {
    if (this.#stopping || this.#inHandler > 0 || this.#batch.length > 0 || this.#commitsInFlight > 0) return;
    void this.#commit(this.#subs);
  }

  /**
   * Commits the processed positions of `subs`. The SDK reads each position when `commit()` is
   * called, so every call is made here at once, synchronously (before any other handler
   * runs); the replies are awaited after, and a flush does not wait for them.
   */
  #commit(subs: Subscription<Uint8Array>[]): Promise<void> {
    const calls = subs
      .filter((sub) => !sub.closed)
      .map((sub) =>
        sub.commit().catch((err: unknown) => {
          // Fenced (a rebalance) or disconnected: the records since the last commit come again (at-least-once).
          this.#deps.metrics.failures.inc({ connector: this.name, kind: "commit" });
          this.#deps.logger.warn("connect.sink.commit_failed", { connector: this.name, topic: sub.topic, error: (err as Error).message });
        }),
      );
    if (calls.length === 0) return Promise.resolve();
    this.#commitsInFlight++;
    return Promise.all(calls).then(() => {
      this.#commitsInFlight--;
    });
  }

  async #pollLag(): Promise<void> {
    try {
      const group = await this.#deps.api.describeGroup(this.group);
      const lag = (group as { totalLag?: number | null }).totalLag;
      if (typeof lag === "number") this.#deps.metrics.lag.set({ connector: this.name }, lag);
    } catch (err) {
      this.#deps.logger.debug("connect.sink.lag_unknown", { connector: this.name, error: (err as Error).message });
    }
  }

  /** Writes `batch`; records that keep failing go to the DLQ. Throws only Stopped. */
  async #deliver(batch: SinkRecord[]): Promise<void> {
    try {
      await this.#writeThroughOutages(batch);
      return;
    } catch (err) {
      if (err instanceof Stopped) throw err;
      this.#recordFailure(err, batch.length);
    }
    // The batch was refused: find the records at fault by writing them one by one.
    for (const record of batch) await this.#deliverOne(record);
  }

  async #deliverOne(record: SinkRecord): Promise<void> {
    for (let attempts = 1; ; attempts++) {
      let error: unknown;
      try {
        await this.#writeThroughOutages([record]);
        return;
      } catch (err) {
        if (err instanceof Stopped) throw err;
        error = err;
      }
      this.#recordFailure(error, 1);
      const retriable = !isSinkError(error) || error.retriable;
      if (!retriable || attempts > this.#settings.maxRetries) {
        await this.#deadLetter(record, error as Error, attempts);
        return;
      }
      await abortableSleep(retryDelay(attempts, this.#settings.retryBackoffMs, this.#settings.maxRetryBackoffMs), this.#abort.signal);
    }
  }

  #recordFailure(err: unknown, records: number): void {
    this.#deps.metrics.failures.inc({ connector: this.name, kind: "records" });
    this.#deps.logger.warn("connect.sink.write_failed", { connector: this.name, records, error: (err as Error)?.message ?? String(err) });
    this.#deps.onError(err as Error);
  }

  /** Calls `write` until it succeeds or fails for the records' sake; target outages are waited out. */
  async #writeThroughOutages(records: SinkRecord[]): Promise<void> {
    for (let outage = 1; ; outage++) {
      if (this.#stopping) throw new Stopped();
      const end = this.#deps.metrics.batchSeconds.startTimer({ connector: this.name });
      try {
        await this.#sink.write(records);
        end();
        this.#deps.metrics.recordsOut.inc({ connector: this.name }, records.length);
        return;
      } catch (err) {
        if (!isSinkError(err) || err.kind !== "target") throw err;
        this.#deps.metrics.failures.inc({ connector: this.name, kind: "target" });
        this.#deps.logger.warn("connect.sink.target_unavailable", { connector: this.name, attempt: outage, error: err.message });
        this.#deps.onError(err);
        await abortableSleep(retryDelay(outage, this.#settings.retryBackoffMs, this.#settings.maxRetryBackoffMs), this.#abort.signal);
      }
    }
  }

  async #deadLetter(record: SinkRecord, error: Error, attempts: number): Promise<void> {
    const topic = this.#settings.dlqTopic;
    if (topic === null) {
      const fatal = new Error(`connector "${this.name}": ${record.topic}/${record.partition}@${record.offset} failed ${attempts} times and there is no DLQ (dlq: false): ${error.message}`, { cause: error });
      this.#deps.onFatal(fatal);
      throw new Stopped();
    }
    const headers: Record<string, string | Uint8Array> = {};
    for (const [k, v] of Object.entries(record.headers)) if (k !== "content-type") headers[k] = v;
    Object.assign(headers, {
      "connect.error": error.message.slice(0, 1000),
      "connect.attempts": String(attempts),
      "connect.connector": this.name,
      "connect.topic": record.topic,
      "connect.partition": String(record.partition),
      "connect.offset": String(record.offset),
      "connect.timestamp": String(record.timestamp),
    });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#client!.publish(topic, record.value ?? new Uint8Array(0), {
          key: record.keyBytes,
          headers,
          acks: "all",
          ...(record.contentType ? { contentType: record.contentType } : {}),
        });
        break;
      } catch (err) {
        if (this.#stopping) throw new Stopped();
        this.#deps.metrics.failures.inc({ connector: this.name, kind: "node" });
        this.#deps.logger.error("connect.sink.dlq_publish_failed", { connector: this.name, topic, attempt, error: (err as Error).message });
        await abortableSleep(retryDelay(attempt, this.#settings.retryBackoffMs, this.#settings.maxRetryBackoffMs), this.#abort.signal);
      }
    }
    this.#deps.metrics.dlqRecords.inc({ connector: this.name });
    this.#deps.logger.warn("connect.sink.dead_lettered", { connector: this.name, dlq: topic, topic: record.topic, partition: record.partition, offset: record.offset, attempts, error: error.message });
  }
}

function toSinkRecord(m: Message<Uint8Array>): SinkRecord {
  return { topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp, key: m.key, keyBytes: m.keyBytes, value: m.bytes, contentType: m.contentType, headers: m.headerBytes };
}
