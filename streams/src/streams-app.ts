/**
 * A running streams application: `new TributaryStreams(builder, { url, applicationId }).start()`.
 *
 * Work split: every sub-topology subscribes to its input topic in the consumer group
 * `streams.<applicationId>`; each partition the group assigns to this instance is a task,
 * restored from its changelogs before it processes a record.
 *
 * Flush (every `maxBatchMs`, or when `maxBatchRecords` records are waiting), for all tasks:
 *   1. changelog records of what the stores changed → acknowledged;
 *   2. per task the outbox record (input position `b`, stream time, the outputs, and where
 *      in the output topics they will land at the earliest) → acknowledged;
 *   3. the outputs, each with an origin header `<task>|<b>|<i>` → acknowledged;
 *   4. the input offsets are committed.
 * Records go on being processed while a flush runs (into the next batch, one batch ahead at
 * most); the commit names the flushed positions, so it covers exactly what was flushed.
 * On a restore, an outbox whose `b` is past the committed offset belongs to a flush that
 * may have died between 2 and 4: its outputs are looked up in the output topics by origin
 * and the missing ones produced, and records below `b` are skipped (they are in the state
 * and the outbox already). So a crash neither loses nor repeats an output.
 */
import { connect, type ClientOptions, type Message, type Subscription, type TributaryClient } from "@tributary/client";
import { StreamsBuilder } from "./builder.ts";
import { StreamsError } from "./errors.ts";
import { GlobalTableState } from "./global-table.ts";
import { NodeAdmin, type ProduceRecord } from "./node-admin.ts";
import { restoreTask } from "./task-restore.ts";
import { eventTimeOf, JSON_CONTENT_TYPE, StreamTask, type EncodedOutput, type FlushBatch, type Outbox, type TaskNames } from "./task.ts";
import type { SinkTarget, SubTopology, Topology } from "./topology.ts";

export interface StreamsOptions {
  /** Names the consumer group (`streams.<id>`), the changelog, outbox and repartition topics. Keep it stable. */
  applicationId: string;
  /** SDK URL of a node, `ws://host:port`. */
  url: string;
  /** HTTP base URL of the node (default: from `url`, ws → http). */
  httpUrl?: string;
  /** Token (JWT) for the SDK connection and the HTTP requests. */
  token?: string;
  /** Flush when this many input records (or outputs) wait (default 5000; also when a task's outputs reach ~256 KB). */
  maxBatchRecords?: number;
  /** Flush at most this long after the first unflushed record, ms (default 100). */
  maxBatchMs?: number;
  /** Consumer-group session timeout: how long a vanished instance keeps its partitions, ms (default the node's). */
  sessionTimeoutMs?: number;
  /** Flow-control window of the input subscriptions (default 5000). */
  credit?: number;
  /** Called with every error (failed flushes stop the application first; fenced commits are only reported). */
  onError?: (err: StreamsError) => void;
  /** Extra SDK client options. */
  client?: ClientOptions;
  /**
   * Called as a flush passes each step (instrumentation, and fault injection in tests):
   * "start" (the batch is cut), "changelog" (its changelog records acknowledged), "outbox" (the outbox acknowledged),
   * "outputs" (the outputs acknowledged), "committed". `outputs`: the outputs of this flush.
   */
  onFlushStep?: (step: FlushStep, info: { flush: number; outputs: number }) => void;
}

export type FlushStep = "start" | "changelog" | "outbox" | "outputs" | "committed";

export interface StreamsMetrics {
  /** Input records processed (not counting skipped ones). */
  processed: number;
  /** Processed input records whose flush completed (outputs acknowledged, commit sent). */
  flushed: number;
  /** Input records skipped after a restore (already in the restored state and outbox). */
  skipped: number;
  /** Records dropped because every window they belong to had closed. */
  late: number;
  /** Output records produced. */
  emitted: number;
  /** Outputs of an interrupted flush produced again on restore (their earlier attempt had not landed). */
  reemitted: number;
  flushes: number;
  /** Tasks restored, and changelog records read doing it. */
  restores: number;
  restoredRecords: number;
  /** Tasks running now. */
  tasks: number;
}

/** A flush starts once a task's outputs take about this many bytes (its outbox record holds them all). */
const MAX_OUTBOX_BYTES = 256 * 1024;
/** How often a flush refreshes the output topics' end offsets (the outbox's lower bounds), ms. */
const ENDS_REFRESH_MS = 5000;

interface SourceState {
  sub: SubTopology;
  index: number;
  topic: string;
  partitions: number;
  subscription?: Subscription<unknown>;
}

export class TributaryStreams {
  readonly applicationId: string;
  readonly topology: Topology;
  readonly #options: StreamsOptions;
  readonly #admin: NodeAdmin;
  #client: TributaryClient | undefined;
  readonly #sources: SourceState[] = [];
  readonly #tasks = new Map<string, StreamTask>();
  readonly #restoring = new Map<string, Promise<void>>();
  readonly #tables = new Map<string, GlobalTableState>();
  /** Per output topic and partition: an offset at or below the end (for outbox lookups). */
  readonly #knownEnds = new Map<string, Map<number, number>>();
  /** Idempotent produce: this instance's producer id and its next request sequence. */
  readonly #producerId = `streams-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  #sequence = 0;
  #endsRefreshedAt = Date.now();
  #flushing: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #unflushed = 0;
  /** The batch is due (full, or its timer fired during a flush): flush as soon as none runs. */
  #full = false;
  #failure: StreamsError | undefined;
  #closing = false;
  #closed = false;
  #resolveStopped!: (err: StreamsError | undefined) => void;
  /** Resolves when the application stopped: with the error that stopped it, or undefined after `close()`. */
  readonly stopped: Promise<StreamsError | undefined> = new Promise((resolve) => (this.#resolveStopped = resolve));
  readonly #metrics: StreamsMetrics = { processed: 0, flushed: 0, skipped: 0, late: 0, emitted: 0, reemitted: 0, flushes: 0, restores: 0, restoredRecords: 0, tasks: 0 };

  constructor(topology: Topology | StreamsBuilder, options: StreamsOptions) {
    if (!/^[a-zA-Z0-9._-]{1,100}$/.test(options.applicationId)) throw new StreamsError("INVALID_TOPOLOGY", `applicationId "${options.applicationId}" must match [a-zA-Z0-9._-]{1,100}`);
    this.applicationId = options.applicationId;
    this.topology = topology instanceof StreamsBuilder ? topology.build() : topology;
    this.#options = options;
    // A write is retried for at most half the session timeout: an instance cut off from the
    // node gives up (and stops) before its partitions can move to another one.
    this.#admin = new NodeAdmin(options.httpUrl ?? NodeAdmin.fromSdkUrl(options.url), () => options.token, Math.floor((options.sessionTimeoutMs ?? 10_000) / 2));
  }

  /** The consumer group of the application's input subscriptions. */
  get group(): string {
    return `streams.${this.applicationId}`;
  }

  metrics(): StreamsMetrics {
    let processed = 0;
    let skipped = 0;
    let late = 0;
    for (const t of this.#tasks.values()) {
      processed += t.counters.processed;
      skipped += t.counters.skipped;
      late += t.counters.late;
    }
    return { ...this.#metrics, processed: this.#metrics.processed + processed, skipped: this.#metrics.skipped + skipped, late: this.#metrics.late + late, tasks: this.#tasks.size };
  }

  // ---- names ------------------------------------------------------------------------------

  topicOf(target: SinkTarget): string {
    return typeof target === "string" ? target : `${this.applicationId}-${target.repartition}-repartition`;
  }

  changelogTopic(store: string): string {
    return `${this.applicationId}-${store}-changelog`;
  }

  outboxTopic(source: string): string {
    return `${this.applicationId}-${source}-outbox`;
  }

  // ---- lifecycle --------------------------------------------------------------------------

  /** Checks and creates the topics, loads the global tables, joins the group. */
  async start(): Promise<void> {
    const admin = this.#admin;
    // Sources in order: a repartition source comes after the sub-topology that writes it.
    const partitionsOf = new Map<string, number>();
    for (const [index, sub] of this.topology.subTopologies.entries()) {
      const topic = this.topicOf(sub.source);
      let partitions: number;
      if (typeof sub.source === "string") {
        const info = await admin.describeTopic(topic);
        if (!info) throw new StreamsError("TOPIC_MISMATCH", `input topic "${topic}" does not exist`, { topic });
        partitions = info.partitions;
      } else {
        const known = partitionsOf.get(topic);
        if (known === undefined) throw new StreamsError("INVALID_TOPOLOGY", `repartition topic "${topic}" has no writer before it`, { topic });
        partitions = known;
      }
      this.#sources.push({ sub, index, topic, partitions });
      await admin.ensureTopic(this.outboxTopic(topic), partitions, "compact");
      for (const store of sub.stores) await admin.ensureTopic(this.changelogTopic(store.name), partitions, "compact");
      for (const target of sub.sinks) {
        const out = this.topicOf(target);
        const info = typeof target === "string" ? ((await admin.describeTopic(out)) ?? (await admin.ensureTopic(out, partitions, "delete"))) : await admin.ensureTopic(out, partitions, "delete");
        if (typeof target !== "string") partitionsOf.set(out, partitions);
        this.#knownEnds.set(out, new Map(info.partitionInfo.map((p) => [p.partition, p.endOffset])));
      }
    }
    this.#client = connect(this.#options.url, {
      ...(this.#options.token ? { token: this.#options.token } : {}),
      ...this.#options.client,
    });
    this.#client.on("error", (err) => this.#report(new StreamsError("HTTP", `client: ${err.message}`, { code: err.code }, { cause: err, retriable: err.retriable })));
    for (const topic of this.topology.tables) {
      const table = new GlobalTableState(topic);
      this.#tables.set(topic, table);
      await table.start(this.#client, admin);
    }
    for (const source of this.#sources) this.#subscribe(source);
  }

  /** Flushes and commits what was processed, leaves the group, closes the connection. */
  async close(): Promise<void> {
    if (this.#closed || this.#closing) return;
    this.#closing = true; // the handlers take no more records (uncommitted: the next owner reads them)
    if (!this.#failure) {
      if (this.#timer) clearTimeout(this.#timer);
      while (this.#flushing) await this.#flushing;
      await this.#flush();
      while (this.#flushing) await this.#flushing;
    }
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const source of this.#sources) await source.subscription?.unsubscribe();
    for (const table of this.#tables.values()) await table.close();
    await this.#client?.close();
    this.#admin.close();
    this.#resolveStopped(this.#failure);
  }

  // ---- input ------------------------------------------------------------------------------

  #subscribe(source: SourceState): void {
    const client = this.#client!;
    const subscription = client.subscribe<unknown>(source.topic, (message) => this.#handle(source, message), {
      group: this.group,
      autoCommit: false,
      reset: "earliest",
      codec: "json",
      presence: false,
      credit: this.#options.credit ?? 5000,
      ...(this.#options.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: this.#options.sessionTimeoutMs } : {}),
      onRevoke: async (partitions) => {
        // The partitions move once this settles: finish their work here (Kafka's onPartitionsRevoked),
        // including a restore under way (it may be producing the outputs of an interrupted flush).
        for (const p of partitions) await this.#restoring.get(`${source.index}:${p}`);
        while (this.#flushing) await this.#flushing;
        if (!this.#failure) await this.#flush();
        for (const p of partitions) this.#dropTask(source, p);
      },
    });
    source.subscription = subscription;
    subscription.on("assigned", ({ added }) => {
      for (const { partition, offset } of added) this.#startTask(source, partition, offset);
    });
    subscription.on("revoked", ({ partitions, lost }) => {
      if (lost) for (const p of partitions) this.#dropTask(source, p);
    });
    subscription.on("error", (err) => this.#fail(new StreamsError("HTTP", `subscription to "${source.topic}" failed: ${err.message}`, { topic: source.topic, code: err.code }, { cause: err })));
  }

  async #handle(source: SourceState, message: Message<unknown>): Promise<void> {
    const key = `${source.index}:${message.partition}`;
    const max = this.#options.maxBatchRecords ?? 5000;
    for (;;) {
      if (this.#failure || this.#closed || this.#closing) return;
      const restoring = this.#restoring.get(key);
      if (restoring) await restoring;
      else if (this.#flushing && this.#unflushed >= max) await this.#flushing; // one batch ahead at most
      else break;
    }
    const task = this.#tasks.get(key);
    if (!task) return; // revoked meanwhile: the SDK drops its messages, the next owner reads them
    try {
      const input = { offset: message.offset, key: message.key, value: message.value, timestamp: message.timestamp, headers: message.headers };
      task.process(input, eventTimeOf(source.sub, input));
    } catch (cause) {
      this.#fail(new StreamsError("PROCESSING", `processing ${source.topic}/${message.partition}@${message.offset} threw: ${String((cause as Error)?.message ?? cause)}`, { topic: source.topic, partition: message.partition, offset: message.offset }, { cause }));
      return;
    }
    this.#unflushed++;
    // The outbox is one record: it stays well below the node's record size limit (1 MB by default).
    if (task.pendingBytes >= MAX_OUTBOX_BYTES || task.pendingOutputs >= max) this.#full = true;
    this.#scheduleFlush();
  }

  /**
   * Starts a flush when the batch is full, or sets the timer that starts it `maxBatchMs` after
   * its first record. Processing goes on while a flush is written (the next batch fills); a
   * full batch waits for the flush in progress, then goes at once.
   */
  #scheduleFlush(): void {
    if (this.#unflushed === 0 || this.#failure || this.#closed) return;
    if (this.#full || this.#unflushed >= (this.#options.maxBatchRecords ?? 5000)) {
      if (!this.#flushing) void this.#flush();
      return;
    }
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (this.#flushing) this.#full = true; // due: goes right after the flush in progress
        else void this.#flush();
      }, this.#options.maxBatchMs ?? 100);
    }
  }

  // ---- tasks ------------------------------------------------------------------------------

  #names(source: SourceState, partition: number): TaskNames {
    return {
      changelog: (store) => this.changelogTopic(store),
      topic: (target) => this.topicOf(target),
      taskId: `${this.applicationId}|${source.topic}|${partition}`,
    };
  }

  #startTask(source: SourceState, partition: number, committed: number): void {
    const key = `${source.index}:${partition}`;
    const task = new StreamTask(source.sub, partition, this.#names(source, partition), (table, k) => this.#tables.get(table)!.get(k));
    const restoring = restoreTask({
      admin: this.#admin,
      task,
      committed,
      outboxTopic: this.outboxTopic(source.topic),
      changelogTopic: (store) => this.changelogTopic(store),
      produce: (outputs) => this.#produceOutputs(outputs),
    }).then(
      ({ records, reemitted }) => {
        this.#metrics.restores++;
        this.#metrics.restoredRecords += records;
        this.#metrics.reemitted += reemitted;
        if (this.#restoring.get(key) === restoring) {
          this.#restoring.delete(key);
          this.#tasks.set(key, task);
        }
      },
      (err: unknown) => this.#fail(err instanceof StreamsError ? err : new StreamsError("CHANGELOG", `restoring ${source.topic}/${partition} failed: ${String((err as Error)?.message ?? err)}`, { topic: source.topic, partition }, { cause: err })),
    );
    this.#restoring.set(key, restoring);
  }

  #dropTask(source: SourceState, partition: number): void {
    const key = `${source.index}:${partition}`;
    this.#restoring.delete(key);
    const task = this.#tasks.get(key);
    if (!task) return;
    this.#tasks.delete(key);
    this.#metrics.processed += task.counters.processed;
    this.#metrics.skipped += task.counters.skipped;
    this.#metrics.late += task.counters.late;
  }

  // ---- flush ------------------------------------------------------------------------------

  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#failure || this.#closed) return Promise.resolve();
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#full = false;
    const flushing: Promise<void> = this.#runFlush()
      .catch((err: unknown) => this.#fail(err instanceof StreamsError ? err : new StreamsError("PRODUCE", `flush failed: ${String((err as Error)?.message ?? err)}`, {}, { cause: err })))
      .finally(() => {
        if (this.#flushing === flushing) this.#flushing = undefined;
        this.#scheduleFlush(); // what was processed meanwhile
      });
    this.#flushing = flushing;
    return flushing;
  }

  async #runFlush(): Promise<void> {
    this.#unflushed = 0;
    const batches: FlushBatch[] = [];
    for (const task of this.#tasks.values()) {
      const batch = task.snapshot();
      if (batch) batches.push(batch);
    }
    if (batches.length === 0) return;
    const flush = this.#metrics.flushes + 1;
    const outputs = batches.reduce((n, b) => n + b.outputs.length, 0);
    this.#options.onFlushStep?.("start", { flush, outputs });
    // 1. changelogs
    const changelog = new Map<string, ProduceRecord[]>();
    for (const b of batches) {
      for (const { topic, records } of b.changelog) {
        let list = changelog.get(topic);
        if (!list) changelog.set(topic, (list = []));
        for (const r of records) list.push(r.value === null ? { key: r.key, value: null, partition: b.task.partition } : { key: r.key, value: JSON.stringify(r.value), contentType: JSON_CONTENT_TYPE, partition: b.task.partition });
      }
    }
    // (With it, at most every few seconds: the output topics' end offsets, so that an outbox
    // names recent lower bounds and a restore reads little of other tasks' outputs.)
    await Promise.all([...[...changelog].map(([topic, records]) => this.#produce(topic, records)), this.#refreshEnds()]);
    this.#options.onFlushStep?.("changelog", { flush, outputs });
    // 2. outboxes
    const outboxes = new Map<string, ProduceRecord[]>();
    for (const b of batches) {
      const topic = this.outboxTopic(this.#sources.find((s) => s.sub === b.task.sub)!.topic);
      let list = outboxes.get(topic);
      if (!list) outboxes.set(topic, (list = []));
      list.push({ key: "outbox", value: this.#outboxJson(b), contentType: JSON_CONTENT_TYPE, partition: b.task.partition });
    }
    await Promise.all([...outboxes].map(([topic, records]) => this.#produce(topic, records)));
    this.#options.onFlushStep?.("outbox", { flush, outputs });
    // 3. outputs
    await this.#produceOutputs(batches.flatMap((b) => b.outputs));
    this.#options.onFlushStep?.("outputs", { flush, outputs });
    // 4. commits
    for (const source of this.#sources) {
      // Exactly the flushed positions: the handler has gone on with the next batch meanwhile.
      const offsets: Record<number, number> = {};
      for (const b of batches) if (b.task.sub === source.sub) offsets[b.task.partition] = b.outbox.b;
      if (!source.subscription || Object.keys(offsets).length === 0) continue;
      try {
        await source.subscription.commit(offsets);
      } catch (err) {
        // The outputs are safe: the next owner finds them by their origin (task-restore.ts).
        this.#report(new StreamsError("COMMIT", `commit of "${source.topic}" failed: ${String((err as Error)?.message ?? err)}; the next owner completes the flush from its outbox`, { topic: source.topic }, { cause: err }));
      }
    }
    for (const b of batches) b.task.flushed();
    this.#metrics.flushes++;
    this.#metrics.flushed += batches.reduce((n, b) => n + b.records, 0);
    this.#options.onFlushStep?.("committed", { flush, outputs });
  }

  /** The outbox record of a batch as JSON text (output values embedded as they are: no second serialisation). */
  #outboxJson(b: FlushBatch): string {
    const from: Outbox["from"] = {};
    for (const target of b.task.sub.sinks) {
      const topic = this.topicOf(target);
      from[topic] = Object.fromEntries(this.#knownEnds.get(topic) ?? []);
    }
    const out = b.outputs.map((o) => {
      const v = o.payload === null ? "null" : o.contentType === JSON_CONTENT_TYPE ? o.payload : JSON.stringify(o.payload);
      return `{"t":${JSON.stringify(o.topic)},"k":${JSON.stringify(o.key)},"c":${JSON.stringify(o.contentType)},"v":${v},"h":${JSON.stringify(o.headers)}}`;
    });
    return `{"b":${b.outbox.b},"st":${b.outbox.st},"from":${JSON.stringify(from)},"out":[${out.join(",")}]}`;
  }

  /** Raises the known end offsets of the output topics from the node, when the last refresh is older than 5 s. */
  async #refreshEnds(): Promise<void> {
    const now = Date.now();
    if (now - this.#endsRefreshedAt < ENDS_REFRESH_MS) return;
    this.#endsRefreshedAt = now;
    await Promise.all(
      [...this.#knownEnds].map(async ([topic, ends]) => {
        try {
          const info = await this.#admin.describeTopic(topic);
          for (const p of info?.partitionInfo ?? []) if (p.endOffset > (ends.get(p.partition) ?? 0)) ends.set(p.partition, p.endOffset);
        } catch (err) {
          // The bounds known so far stay valid (only lower); a restore may just read more.
          this.#report(err instanceof StreamsError ? err : new StreamsError("HTTP", `refreshing the end offsets of "${topic}": ${String(err)}`, { topic }, { cause: err }));
        }
      }),
    );
  }

  /** Produces outputs, per topic in order (topics in parallel), and notes where they landed. */
  async #produceOutputs(outputs: EncodedOutput[]): Promise<void> {
    const byTopic = new Map<string, EncodedOutput[]>();
    for (const o of outputs) {
      let list = byTopic.get(o.topic);
      if (!list) byTopic.set(o.topic, (list = []));
      list.push(o);
    }
    await Promise.all(
      [...byTopic].map(async ([topic, list]) => {
        const results = await this.#produce(
          topic,
          list.map((o) => (o.payload === null ? { key: o.key, value: null, headers: o.headers } : { key: o.key, value: o.payload, contentType: o.contentType, headers: o.headers })),
        );
        const ends = this.#knownEnds.get(topic);
        if (ends) for (const { partition, offset } of results) if (offset + 1 > (ends.get(partition) ?? 0)) ends.set(partition, offset + 1);
      }),
    );
    this.#metrics.emitted += outputs.length;
  }

  #produce(topic: string, records: ProduceRecord[]): Promise<Array<{ partition: number; offset: number }>> {
    return this.#admin.produce(topic, records, this.#producerId, () => this.#sequence++);
  }

  // ---- errors -----------------------------------------------------------------------------

  #report(err: StreamsError): void {
    if (this.#options.onError) this.#options.onError(err);
    else process.stderr.write(`tributary-streams ${this.applicationId}: ${err.code}: ${err.message}\n`);
  }

  /** Stops processing at once, without committing (like a crash: the uncommitted input is processed again after a restart). */
  #fail(err: StreamsError): void {
    if (this.#failure || this.#closed) return;
    this.#failure = err;
    this.#report(err);
    if (this.#timer) clearTimeout(this.#timer);
    this.#closed = true;
    this.#admin.close();
    void this.#client?.close().then(
      () => this.#resolveStopped(err),
      (closeErr: unknown) => {
        this.#report(new StreamsError("CLOSED", `closing after a failure: ${String(closeErr)}`, {}, { cause: closeErr }));
        this.#resolveStopped(err);
      },
    );
  }
}
