/**
 * Runs one sink connector: consumes its topics as consumer group `connect.<name>` over the
 * SDK (WebSocket), hands batches to the sink, retries, dead-letters, commits.
 *
 * Pipeline: a batch fills while the one before it is written. A message is added to the
 * batch; the batch goes to the sink when it holds `batchSize` records or no further message
 * is buffered (so batches grow with the backlog and a lone record is not held back), as
 * soon as a write may start: one at a time, or up to the sink's `concurrentWrites` (the
 * PostgreSQL sink: 2, one batch copied in while the one before it commits). The handler
 * returns at once unless the batch is full and no write may start; then it returns a
 * promise that holds the SDK (and, through credit, the node) back until one may. Memory:
 * the batches in flight, the one filling, and the subscription's credit window.
 *
 * Commits (at-least-once): once a write ended and every write started before it did too,
 * the offsets after its records are committed for their partitions (the SDK's
 * `commit(offsets)`, sent at once, not awaited by the next write): the group's position
 * never passes a record that is not in the target, whatever order concurrent writes end
 * in. After a crash, what was written and not yet committed comes again. On a revoke (a
 * rebalance) the records handed over so far are written and committed before the
 * partitions move (the SDK's `onRevoke`), so the next owner starts after them. Stopping
 * (pause, restart, shutdown) lets the writes in flight end and commit; the records still in
 * the filling batch were not written: they come again on the next start. Once a batch could
 * not be written (stopping, or a record failed with no DLQ), no write starts and nothing
 * after it is committed.
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
  /** Writes that may run at once (the sink's `concurrentWrites`). */
  readonly #maxWrites: number;
  /** Records handed over by the SDK and not yet given to a write, in arrival order. */
  #batch: SinkRecord[] = [];
  /** The subscription each record of `#batch` came from. */
  #batchOwners: Subscription<Uint8Array>[] = [];
  /** Writes started and not yet settled in order (a write that ended waits here for the ones before it). */
  #writes: Write[] = [];
  /** Writes started and not ended. */
  #running = 0;
  /** Handlers held back while the batch is full and no write may start; released when the batch goes to a write. */
  #held: (() => void)[] = [];
  /** Waiters for the next write to settle. */
  #onSettle: (() => void)[] = [];
  /** Records handed over so far, and records whose write settled (counts, for `#drain`). */
  #handed = 0;
  #settled = 0;
  /** Commits sent and not answered yet. */
  readonly #commits = new Set<Promise<void>>();
  #stopping = false;
  /** A write failed (stopping, or a record failed with no DLQ): no write may start. */
  #halted = false;
  /** A write failed and settled: no commit may follow (those after it would pass its records). */
  #uncommittable = false;
  #timers: ReturnType<typeof setInterval>[] = [];

  constructor(config: ConnectorConfig, sink: SinkConnector, sessionTimeoutMs: number | undefined, deps: SinkTaskDeps) {
    this.name = config.name;
    this.group = `connect.${config.name}`;
    this.#settings = config.sink!;
    this.#sink = sink;
    this.#maxWrites = Math.max(1, sink.concurrentWrites ?? 1);
    this.#deps = deps;
    this.#sessionTimeoutMs = sessionTimeoutMs;
  }

  async start(): Promise<void> {
    await this.#sink.start();
    const dlq = this.#settings.dlqTopic;
    if (dlq !== null) await this.#deps.api.ensureTopic({ name: dlq });
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
        onRevoke: () => this.#drain(),
        reset: this.#settings.from,
        // The node may run a batch ahead of the one filling.
        credit: Math.max(64, this.#settings.batchSize * 2),
        presence: false,
        ...(this.#sessionTimeoutMs !== undefined ? { sessionTimeoutMs: this.#sessionTimeoutMs } : {}),
      });
      sub.on("error", (err: Error) => this.#deps.onFatal(err));
      this.#subs.push(sub);
    }
    this.#timers.push(setInterval(() => void this.#pollLag(), LAG_POLL_MS));
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    for (const t of this.#timers) clearInterval(t);
    this.#release();
    // The writes in flight end (at once in a target outage: Stopped) and commit what they wrote.
    await Promise.all(this.#writes.map((w) => w.settled));
    await Promise.all(this.#commits);
    for (const sub of this.#subs) await sub.unsubscribe().catch((err: Error) => this.#deps.logger.warn("connect.sink.unsubscribe_failed", { connector: this.name, error: err.message }));
    await this.#client?.close();
    await this.#sink.stop();
  }

  /**
   * Adds the message to the batch and starts its write when it is due and a write may
   * start; returns a promise (the SDK waits for it before the next message) only when the
   * batch is full and no write may start, so most messages cost no promise at all.
   */
  #onMessage(sub: Subscription<Uint8Array>, m: Message<Uint8Array>): Promise<void> | undefined {
    if (this.#stopping || this.#halted) return undefined; // not written, so never committed: it comes again
    this.#batch.push(toSinkRecord(m));
    this.#batchOwners.push(sub);
    this.#handed++;
    if (this.#running < this.#maxWrites) {
      if (this.#batch.length >= this.#settings.batchSize || !this.#moreBuffered()) this.#startWrite();
      return undefined;
    }
    if (this.#batch.length < this.#settings.batchSize) return undefined;
    return new Promise<void>((resolve) => this.#held.push(resolve));
  }

  #moreBuffered(): boolean {
    for (const s of this.#subs) if (s.buffered > 0) return true;
    return false;
  }

  /** Hands the batch to a write (one may start); when it ends, the next batch goes if it is due. */
  #startWrite(): void {
    const batch = this.#batch;
    const owners = this.#batchOwners;
    this.#batch = [];
    this.#batchOwners = [];
    this.#release();
    this.#running++;
    const write: Write = { records: batch.length, next: null, failed: false, ended: false, settled: Promise.resolve() };
    this.#writes.push(write);
    write.settled = this.#write(batch, owners).then(
      (next) => this.#ended(write, next),
      (err: unknown) => {
        this.#halted = true;
        this.#release();
        if (!(err instanceof Stopped)) this.#deps.onFatal(err as Error);
        this.#ended(write, null);
      },
    );
  }

  /** A write ended: commits, in start order, every write that ended with all before it; starts the next batch if it is due. */
  #ended(write: Write, next: Map<Subscription<Uint8Array>, Record<number, number>> | null): void {
    write.ended = true;
    write.next = next;
    write.failed = next === null;
    this.#running--;
    while (this.#writes.length > 0 && this.#writes[0]!.ended) {
      const w = this.#writes.shift()!;
      this.#settled += w.records;
      if (w.failed) this.#uncommittable = true;
      else if (!this.#uncommittable) for (const [sub, offsets] of w.next!) this.#commit(sub, offsets);
    }
    const waiters = this.#onSettle;
    this.#onSettle = [];
    for (const resolve of waiters) resolve();
    if (this.#stopping || this.#halted || this.#batch.length === 0 || this.#running >= this.#maxWrites) return;
    if (this.#batch.length >= this.#settings.batchSize || !this.#moreBuffered()) this.#startWrite();
  }

  /** Lets held handlers go on (the batch has room again, or nothing will be written any more). */
  #release(): void {
    const held = this.#held;
    this.#held = [];
    for (const resolve of held) resolve();
  }

  /**
   * Writes `batch` (retries, DLQ); resolves with, per subscription and partition, the offset
   * after its last record here (a partition's records are in offset order). Throws Stopped
   * when it was not written.
   */
  async #write(batch: SinkRecord[], owners: Subscription<Uint8Array>[]): Promise<Map<Subscription<Uint8Array>, Record<number, number>>> {
    this.#deps.metrics.recordsIn.inc({ connector: this.name }, batch.length); // counted per batch: one label lookup, not one per record
    await this.#deliver(batch);
    const next = new Map<Subscription<Uint8Array>, Record<number, number>>();
    let sub: Subscription<Uint8Array> | undefined;
    let offsets: Record<number, number> = {};
    for (let i = 0; i < batch.length; i++) {
      if (owners[i] !== sub) {
        sub = owners[i]!;
        const known = next.get(sub);
        if (known) offsets = known;
        else next.set(sub, (offsets = {}));
      }
      offsets[batch[i]!.partition] = batch[i]!.offset + 1;
    }
    return next;
  }

  /**
   * Commits `offsets` (partition → next offset) of `sub`: the SDK sends it at once (commits
   * go out in the order of the writes); the reply is not awaited by the next write. Only
   * partitions the member owns or is giving up count; a fenced commit means the partition
   * moved on, and its next owner writes those records again (the sink's idempotence, or
   * at-least-once).
   */
  #commit(sub: Subscription<Uint8Array>, offsets: Record<number, number>): void {
    if (sub.closed) return;
    const call = sub
      .commit(offsets)
      .catch((err: unknown) => {
        this.#deps.metrics.failures.inc({ connector: this.name, kind: "commit" });
        this.#deps.logger.warn("connect.sink.commit_failed", { connector: this.name, topic: sub.topic, error: (err as Error).message });
      })
      .finally(() => this.#commits.delete(call));
    this.#commits.add(call);
  }

  /**
   * `onRevoke`: the revoked partitions' records handed over so far are in a write or in the
   * filling batch (the SDK dropped the rest, and their handler is done): writes them all and
   * waits for their commits, so the partitions move after them. Waits out a target outage
   * (the group's rebalance timeout bounds how long the others wait).
   */
  async #drain(): Promise<void> {
    const target = this.#handed;
    while (this.#settled < target && !this.#stopping && !this.#halted) {
      if (this.#running < this.#maxWrites && this.#batch.length > 0) this.#startWrite();
      await new Promise<void>((resolve) => this.#onSettle.push(resolve));
    }
    await Promise.all(this.#commits);
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

/** One write in flight: its records' count and, once it ended, the offsets to commit after it (null: it failed). */
interface Write {
  records: number;
  next: Map<Subscription<Uint8Array>, Record<number, number>> | null;
  failed: boolean;
  ended: boolean;
  settled: Promise<void>;
}

function toSinkRecord(m: Message<Uint8Array>): SinkRecord {
  return { topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp, key: m.key, keyBytes: m.keyBytes, value: m.bytes, contentType: m.contentType, headers: m.headerBytes };
}
