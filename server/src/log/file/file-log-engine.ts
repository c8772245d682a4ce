/**
 * FileLogEngine: the embedded, single-node LogEngine.
 *
 * Layout under `dataDir`:
 * ```
 * topics/<topic>/topic.json                  config, createdAt, epoch (atomic writes)
 * topics/<topic>/<partition>/<base>.log      record batches (see batch-codec.ts)
 *                            <base>.index     sparse offset index (offset-index.ts)
 *                            <base>.timeindex time index (time-index.ts)
 * offsets.log                                committed group offsets (group-offsets.ts)
 *                            cleaner-checkpoint  offset below which compaction last cleaned
 * trash/                                     deleted topics, removed in the background
 * tributary.lock                             pid of the owning process (data-dir-lock.ts)
 * ```
 *
 * Durability: acks 0/1 resolve once the batch is in the page cache (write(2) returned);
 * the `fsync` policy then decides when it reaches the device ("always": before acks=1
 * resolves; `{intervalMs}`: by a timer; "never": by the OS, or flush/close). acks="all"
 * always waits for an fdatasync, shared by every producer waiting at that moment (group
 * commit). Recovery on open: see segment-recovery.ts. One process per data directory,
 * enforced by a lock file taken before anything is read (a second node fails to open).
 *
 * Compaction (topics with cleanupPolicy "compact" / "compact,delete"): a background cleaner
 * checks every `compactionCheckMs` and compacts the partitions whose dirty ratio reached the
 * topic's `minCleanableDirtyRatio`, one partition at a time (log-cleaner.ts); `compact()`
 * runs a pass now. Its failures go to `onBackgroundError` (task "compaction") and the warning
 * log; a failed pass leaves the partition readable as it was and is retried next round.
 */
import fs from "node:fs";
import path from "node:path";
import { TributaryError } from "../../errors.ts";
import type {
  AlterableTopicConfig,
  AppendOptions,
  AppendResult,
  CompactionStats,
  EngineHealth,
  CommitOptions,
  CommittedOffset,
  LogEngine,
  LogRecord,
  PartitionInfo,
  ReadOptions,
  RecordInput,
  Tail,
  TailHandler,
  TopicConfig,
  TopicDescription,
} from "../log-engine.ts";
import { isCompacted } from "../log-engine.ts";
import { FileCompactor } from "./file-compactor.ts";
import type { SyncFile } from "./segment.ts";
import { StorageHealth } from "./storage-health.ts";
import { SegmentFiles, type SegmentFilesStats } from "./segment-files.ts";
import { validateCommit } from "../commit-options.ts";
import { DataDirLock } from "./data-dir-lock.ts";
import { AppendNotifier, startTailLoop } from "../tail-loop.ts";
import { GroupOffsetStore } from "./group-offsets.ts";
import { PartitionLog, type PartitionOptions } from "./partition-log.ts";
import {
  fsyncDirSync,
  newEpoch,
  readTopicMetadata,
  resolveFileTopicConfig,
  writeTopicMetadata,
  type TopicMetadata,
} from "./topic-metadata.ts";
import { alterTopicConfig, keylessRecordError, validateTopicName } from "../topic-config.ts";

export type FsyncPolicy = "always" | "never" | { intervalMs: number };

export interface FileLogEngineOptions {
  dataDir: string;
  /** When acks 0/1 appends reach the device. Default `{ intervalMs: 1000 }`. */
  fsync?: FsyncPolicy;
  /** Roll the active segment past this size, for topics without a segmentBytes of their own. Default 64 MiB. */
  segmentBytes?: number;
  /** Roll the active segment this long after its first append. Default 7 days. */
  segmentMs?: number;
  /** Largest encoded batch accepted; larger → RECORD_TOO_LARGE. Default 8 MiB. */
  maxBatchBytes?: number;
  /** Bytes of log between two index entries. Default 4096. */
  indexIntervalBytes?: number;
  /** Period of the retention check. Default 5 minutes; 0 disables the timer. */
  retentionCheckMs?: number;
  /**
   * Bytes of recent batches kept in memory per partition for tail readers (0 disables it).
   * Default 1 MiB. Worst case memory is partitions written to × this.
   */
  cacheBytesPerPartition?: number;
  /** Receives recovery warnings (truncations, dropped lines). Default console.warn. */
  onWarning?: (message: string, context: Record<string, unknown>) => void;
  /** Period of the compaction check (compacted topics only). Default 15 s; 0 disables the timer (`compact()` still works). */
  compactionCheckMs?: number;
  /**
   * Receives the failures of the engine's own background work (task "compaction": a
   * compaction pass that failed), after they are logged through `onWarning`; the node counts
   * them in `tributary_background_errors_total{task}`.
   */
  onBackgroundError?: (task: "compaction", err: unknown, context: Record<string, unknown>) => void;
  /**
   * Most segment files open at once (default 512): past it the least recently used one that
   * is not being synced (and, unless fsync is "never", has nothing unsynced) is closed, and
   * reopened when next used (segment-files.ts). Keeps the file descriptors bounded whatever
   * the partition count.
   */
  maxOpenSegmentFiles?: number;
  /** Fault injection for tests: replaces fs.fdatasync for segment files. */
  syncFile?: SyncFile;
}

interface TopicState {
  meta: TopicMetadata;
  dir: string;
  partitions: PartitionLog[];
}

export interface FileLogEngineStats {
  /** fdatasync rounds done by partition group commits since open. */
  fsyncs: number;
  appends: number;
  records: number;
}

const TOPICS_DIR = "topics";
const TRASH_DIR = "trash";
const MAX_SEGMENT_BYTES = 2 ** 31 - 1;


function positiveInt(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0 || value > max) {
    throw new TributaryError("INVALID_CONFIG", `${name} must be an integer from 1 to ${max}, got ${String(value)}`, { option: name });
  }
  return value;
}

export class FileLogEngine implements LogEngine {
  readonly kind = "file";
  readonly dataDir: string;
  readonly #fsync: FsyncPolicy;
  readonly #partitionOptions: PartitionOptions;
  readonly #warn: (message: string, context: Record<string, unknown>) => void;
  readonly #topics = new Map<string, TopicState>();
  readonly #notifier = new AppendNotifier();
  #offsets!: GroupOffsetStore;
  #admin: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | null = null;
  #lock: DataDirLock | null = null;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #onBackgroundError: FileLogEngineOptions["onBackgroundError"];
  readonly #compactor: FileCompactor;
  readonly #health: StorageHealth;
  readonly #files: SegmentFiles;
  /** Retention and compaction passes since open (`tributary_log_maintenance_runs_total`). */
  #runs = { retention: 0, compaction: 0 };
  #fsyncsOfDeleted = 0;
  #appends = 0;
  #records = 0;

  private constructor(options: FileLogEngineOptions) {
    if (!options || typeof options.dataDir !== "string" || options.dataDir === "") {
      throw new TributaryError("INVALID_CONFIG", "dataDir is required", { option: "dataDir" });
    }
    this.dataDir = path.resolve(options.dataDir);
    const fsync = options.fsync ?? { intervalMs: 1000 };
    if (fsync !== "always" && fsync !== "never") positiveInt(fsync?.intervalMs, "fsync.intervalMs");
    this.#fsync = fsync;
    this.#partitionOptions = {
      segmentBytes: positiveInt(options.segmentBytes ?? 64 << 20, "segmentBytes", MAX_SEGMENT_BYTES),
      segmentMs: positiveInt(options.segmentMs ?? 7 * 24 * 3600 * 1000, "segmentMs"),
      maxBatchBytes: positiveInt(options.maxBatchBytes ?? 8 << 20, "maxBatchBytes", MAX_SEGMENT_BYTES),
      indexIntervalBytes: positiveInt(options.indexIntervalBytes ?? 4096, "indexIntervalBytes"),
      cacheBytes: options.cacheBytesPerPartition ?? 1 << 20,
    };
    this.#warn = options.onWarning ?? ((message) => console.warn(`[tributary:file-log] ${message}`));
    this.#onBackgroundError = options.onBackgroundError;
    const engine = this;
    this.#compactor = new FileCompactor({
      topicNames: () => [...this.#topics.keys()],
      topic: (name) => {
        const t = this.#topics.get(name);
        return t && { config: t.meta.config, partitions: t.partitions };
      },
      get closed() {
        return engine.#closed;
      },
      partitionOptions: this.#partitionOptions,
      passStarted: () => void this.#runs.compaction++,
      report: (err, context) => {
        this.#warn(`compaction failed: ${err.message}`, { task: "compaction", ...context });
        this.#onBackgroundError?.("compaction", err, context);
      },
    });
    this.#health = new StorageHealth((what, err) =>
      this.#warn(`fdatasync of ${what} failed: ${(err as Error).message}; writes to it are refused and the node reports not ready until it restarts`, { task: "fsync", what }),
    );
    this.#partitionOptions.health = this.#health;
    this.#files = new SegmentFiles(positiveInt(options.maxOpenSegmentFiles ?? 512, "maxOpenSegmentFiles"), fsync === "never");
    this.#partitionOptions.files = this.#files;
    if (options.syncFile) this.#partitionOptions.syncFile = options.syncFile;
    if (options.compactionCheckMs !== undefined && options.compactionCheckMs !== 0) positiveInt(options.compactionCheckMs, "compactionCheckMs");
  }

  /** Opens (creating if needed) the data directory, loads every topic and recovers it. */
  static async open(options: FileLogEngineOptions): Promise<FileLogEngine> {
    const engine = new FileLogEngine(options);
    engine.#lock = DataDirLock.acquire(engine.dataDir); // before reading anything: one owner per data dir
    try {
      engine.#load();
    } catch (err) {
      engine.#lock.release();
      throw err;
    }
    const retentionCheckMs = options.retentionCheckMs ?? 5 * 60_000;
    if (retentionCheckMs > 0) {
      engine.#timers.push(setInterval(() => void engine.enforceRetention().catch((err) => engine.#warn(`retention failed: ${(err as Error).message}`, {})), retentionCheckMs).unref());
    }
    const compactionCheckMs = options.compactionCheckMs ?? 15_000;
    if (compactionCheckMs > 0) engine.#timers.push(setInterval(() => void engine.#compactor.round(), compactionCheckMs).unref());
    const fsync = engine.#fsync;
    if (typeof fsync === "object") engine.#timers.push(setInterval(() => engine.#syncDirtyPartitions(), fsync.intervalMs).unref());
    return engine;
  }

  #load(): void {
    const topicsDir = path.join(this.dataDir, TOPICS_DIR);
    fs.mkdirSync(topicsDir, { recursive: true });
    fs.rmSync(path.join(this.dataDir, TRASH_DIR), { recursive: true, force: true });
    const now = Date.now();
    for (const name of fs.readdirSync(topicsDir).sort()) {
      const dir = path.join(topicsDir, name);
      const meta = readTopicMetadata(dir);
      if (!meta) {
        // A topic whose creation did not finish (topic.json is written last).
        fs.rmSync(dir, { recursive: true, force: true });
        continue;
      }
      const partitions: PartitionLog[] = [];
      let epochChanged = false;
      for (let p = 0; p < meta.config.partitions; p++) {
        const { log, recovery } = PartitionLog.open(name, p, path.join(dir, String(p)), meta.partitionEpochs[p]!, this.#optionsFor(meta.config), now, isCompacted(meta.config.cleanupPolicy));
        if (recovery) {
          // History may have lost records whose offsets will be reused: new epoch.
          const epoch = newEpoch();
          meta.partitionEpochs[p] = epoch;
          log.epoch = epoch;
          epochChanged = true;
          this.#warn(`recovered ${name}/${p}: truncated ${recovery.droppedBytes} bytes at position ${recovery.position} of segment ${recovery.segment} (${recovery.kind}: ${recovery.reason}); new epoch ${epoch}`, {
            topic: name,
            partition: p,
            ...recovery,
          });
        }
        partitions.push(log);
      }
      if (epochChanged) writeTopicMetadata(dir, meta);
      this.#topics.set(name, { meta, dir, partitions });
    }
    this.#offsets = GroupOffsetStore.open(this.dataDir, (m) => this.#warn(m, {}), this.#health);
  }

  /** A partition's options: the engine's, with the topic's segmentBytes when it has one (each partition its own copy). */
  #optionsFor(config: TopicConfig): PartitionOptions {
    return { ...this.#partitionOptions, segmentBytes: config.segmentBytes ?? this.#partitionOptions.segmentBytes };
  }

  #checkOpen(): void {
    if (this.#closed) throw new TributaryError("UNAVAILABLE", "the file log engine is closed", { dataDir: this.dataDir });
  }

  #topic(name: string): TopicState {
    this.#checkOpen();
    const t = this.#topics.get(name);
    if (!t) throw new TributaryError("UNKNOWN_TOPIC", `unknown topic ${JSON.stringify(name)}`, { topic: name });
    return t;
  }

  #partition(topic: string, partition: number): PartitionLog {
    const t = this.#topic(topic);
    const log = Number.isInteger(partition) ? t.partitions[partition] : undefined;
    if (!log) {
      throw new TributaryError("UNKNOWN_PARTITION", `topic ${topic} has no partition ${String(partition)} (it has ${t.partitions.length})`, {
        topic,
        partition,
        partitions: t.partitions.length,
      });
    }
    return log;
  }

  /** Runs admin operations (create/delete) one at a time. */
  #serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#admin.then(fn, fn);
    this.#admin = run.catch(() => undefined);
    return run;
  }

  async createTopic(name: string, config: Partial<TopicConfig>): Promise<TopicDescription> {
    this.#checkOpen();
    validateTopicName(name);
    const resolved = resolveFileTopicConfig(name, config);
    return this.#serial(() => {
      this.#checkOpen();
      if (this.#topics.has(name)) throw new TributaryError("TOPIC_EXISTS", `topic ${name} already exists`, { topic: name });
      const dir = path.join(this.dataDir, TOPICS_DIR, name);
      fs.rmSync(dir, { recursive: true, force: true });
      const epoch = newEpoch();
      const now = Date.now();
      const partitions: PartitionLog[] = [];
      try {
        fs.mkdirSync(dir, { recursive: true });
        for (let p = 0; p < resolved.partitions; p++) {
          const log = PartitionLog.create(name, p, path.join(dir, String(p)), epoch, this.#optionsFor(resolved), now);
          log.allowGaps = isCompacted(resolved.cleanupPolicy);
          partitions.push(log);
        }
        const meta: TopicMetadata = {
          version: 1,
          name,
          config: resolved,
          createdAt: now,
          epoch,
          partitionEpochs: partitions.map(() => epoch),
        };
        for (const log of partitions) fsyncDirSync(log.dir);
        writeTopicMetadata(dir, meta);
        fsyncDirSync(path.dirname(dir));
        this.#topics.set(name, { meta, dir, partitions });
      } catch (err) {
        // Leave nothing behind: no open files, no half-made directory (a later create starts clean).
        for (const log of partitions) log.close();
        try {
          fs.rmSync(dir, { recursive: true, force: true });
        } catch (cleanupErr) {
          this.#warn(`creating topic ${name} failed and its directory could not be removed: ${(cleanupErr as Error).message}`, { topic: name });
        }
        if (err instanceof TributaryError) throw err;
        throw new TributaryError("STORAGE_ERROR", `creating topic ${name} failed: ${(err as Error).message}`, { topic: name }, { cause: err });
      }
      return this.#describe(name);
    });
  }

  async deleteTopic(name: string): Promise<void> {
    this.#topic(name);
    return this.#serial(async () => {
      const t = this.#topic(name);
      this.#topics.delete(name);
      for (const log of t.partitions) {
        this.#fsyncsOfDeleted += log.commit.syncs;
        log.abandon();
        this.#notifier.notify(name, log.partition); // tails read, get UNKNOWN_TOPIC, stop
      }
      const trash = path.join(this.dataDir, TRASH_DIR);
      fs.mkdirSync(trash, { recursive: true });
      const doomed = path.join(trash, `${name}-${t.meta.epoch}`);
      fs.renameSync(t.dir, doomed);
      fsyncDirSync(path.dirname(t.dir));
      await this.#offsets.deleteTopic(name);
      fs.rm(doomed, { recursive: true, force: true }, () => undefined);
    });
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    return this.#describe(name);
  }

  #describe(name: string): TopicDescription {
    const t = this.#topic(name);
    return {
      name,
      ...t.meta.config,
      createdAt: t.meta.createdAt,
      partitionInfo: t.partitions.map((log) => this.#info(log)),
    };
  }

  #info(log: PartitionLog): PartitionInfo {
    return { partition: log.partition, earliestOffset: log.earliestOffset, endOffset: log.endOffset, epoch: log.epoch };
  }

  async listTopics(): Promise<string[]> {
    this.#checkOpen();
    return [...this.#topics.keys()].sort();
  }

  async append(topic: string, partition: number, records: RecordInput[], options?: AppendOptions): Promise<AppendResult> {
    const log = this.#partition(topic, partition);
    const acks = options?.acks ?? 1;
    if (acks !== 0 && acks !== 1 && acks !== "all") {
      throw new TributaryError("BAD_REQUEST", `acks must be 0, 1 or "all", got ${String(acks)}`, { topic, partition });
    }
    if (isCompacted(this.#topic(topic).meta.config.cleanupPolicy) && Array.isArray(records)) {
      for (let i = 0; i < records.length; i++) if (records[i]?.key === null) throw keylessRecordError(topic, partition, i);
    }
    const result = log.append(records, Date.now());
    this.#appends++;
    this.#records += records.length;
    this.#notifier.notify(topic, partition);
    if (acks === "all") await log.commit.request();
    else if (this.#fsync === "always") {
      const synced = log.commit.request();
      if (acks === 1) await synced;
      else synced.catch(() => undefined); // the partition is marked failed
    }
    return result;
  }

  async read(topic: string, partition: number, offset: number, options?: ReadOptions): Promise<LogRecord[]> {
    return this.#read(topic, partition, offset, options);
  }

  /** `read`, synchronously (file reads never wait for anything): tails use it directly. */
  #read(topic: string, partition: number, offset: number, options?: ReadOptions): LogRecord[] {
    const log = this.#partition(topic, partition);
    const maxRecords = options?.maxRecords ?? 500;
    const maxBytes = options?.maxBytes ?? Infinity;
    if (!(maxRecords >= 1) || !(maxBytes >= 0)) {
      throw new TributaryError("BAD_REQUEST", "maxRecords must be >= 1 and maxBytes >= 0", { topic, partition, maxRecords, maxBytes });
    }
    return log.read(offset, maxRecords, maxBytes);
  }

  async offsets(topic: string, partition: number): Promise<PartitionInfo> {
    return this.#info(this.#partition(topic, partition));
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    const log = this.#partition(topic, partition);
    if (typeof timestamp !== "number" || Number.isNaN(timestamp)) {
      throw new TributaryError("BAD_REQUEST", `timestamp must be a number, got ${String(timestamp)}`, { topic, partition });
    }
    return log.offsetForTimestamp(timestamp);
  }

  tail(topic: string, partition: number, fromOffset: number, handler: TailHandler): Tail {
    const source = {
      read: (t: string, p: number, offset: number, options?: ReadOptions) => this.read(t, p, offset, options),
      readNow: (t: string, p: number, offset: number, options?: ReadOptions) => this.#read(t, p, offset, options),
      epoch: async (t: string, p: number) => this.#partition(t, p).epoch,
      epochNow: (t: string, p: number) => this.#partition(t, p).epoch,
    };
    return startTailLoop(source, this.#notifier, topic, partition, fromOffset, handler);
  }

  async commitOffset(group: string, topic: string, partition: number, offset: number, options?: CommitOptions): Promise<void> {
    this.#partition(topic, partition);
    const c = validateCommit(group, topic, partition, offset, options);
    await this.#offsets.commit(group, topic, partition, c.offset, c.epoch, c.metadata, Date.now());
  }

  async fetchOffset(group: string, topic: string, partition: number): Promise<CommittedOffset | null> {
    this.#partition(topic, partition);
    return this.#offsets.fetch(group, topic, partition);
  }

  async fetchGroupOffsets(group: string): Promise<Map<string, Map<number, CommittedOffset>>> {
    this.#checkOpen();
    return this.#offsets.fetchGroup(group);
  }

  async listGroups(): Promise<string[]> {
    this.#checkOpen();
    return this.#offsets.listGroups();
  }

  /**
   * Deletes expired segments of every topic now (the timer calls this too). Returns how many
   * segments were deleted. Tails below the new earliest offset get OFFSET_OUT_OF_RANGE.
   */
  async enforceRetention(now = Date.now()): Promise<{ deletedSegments: number }> {
    this.#checkOpen();
    this.#runs.retention++;
    let deletedSegments = 0;
    for (const t of this.#topics.values()) {
      const { retentionMs, retentionBytes, cleanupPolicy } = t.meta.config;
      if (cleanupPolicy === "compact") continue; // retention applies with "delete" or "compact,delete" only (Kafka)
      if (retentionMs === null && retentionBytes === null) continue;
      for (const log of t.partitions) deletedSegments += log.enforceRetention(retentionMs, retentionBytes, now);
    }
    return { deletedSegments };
  }

  async alterTopicConfig(name: string, changes: Partial<AlterableTopicConfig>): Promise<TopicDescription> {
    this.#topic(name);
    return this.#serial(() => {
      const t = this.#topic(name);
      const config = alterTopicConfig(name, t.meta.config, changes);
      const meta: TopicMetadata = { ...t.meta, config };
      try {
        writeTopicMetadata(t.dir, meta);
      } catch (err) {
        throw new TributaryError("STORAGE_ERROR", `writing the config of topic ${name} failed: ${(err as Error).message}`, { topic: name }, { cause: err });
      }
      t.meta = meta;
      for (const log of t.partitions) {
        if (isCompacted(config.cleanupPolicy)) log.allowGaps = true;
        log.segmentBytes = config.segmentBytes ?? this.#partitionOptions.segmentBytes;
      }
      return this.#describe(name);
    });
  }

  /**
   * Compacts now (see `LogEngine.compact`): every partition of `topic`, or of every
   * compacted topic, whose dirty ratio reached the topic's minCleanableDirtyRatio (all of
   * them with `force`). A pass already running is waited for first (one at a time).
   */
  async compact(topic?: string, options: { force?: boolean; now?: number } = {}): Promise<CompactionStats> {
    this.#checkOpen();
    if (topic !== undefined) this.#topic(topic);
    return this.#compactor.run(topic, options.force ?? false, options.now);
  }

  /**
   * Storage health (`LogEngine.health`): not ok once an fdatasync failed (see
   * storage-health.ts); the node's /readyz answers 503 and the failures are counted.
   */
  health(): EngineHealth {
    return this.#health.snapshot();
  }

  /** Totals of every compaction pass since open (for tests, benchmarks and metrics). */
  compactionTotals(): CompactionStats {
    return this.#compactor.totals;
  }

  /** The LRU of open segment files: open now, its bound, evictions and reopens so far. */
  segmentFiles(): SegmentFilesStats {
    return this.#files.stats();
  }

  /** Counters for benchmarks and tests. */
  stats(): FileLogEngineStats {
    let fsyncs = this.#fsyncsOfDeleted;
    for (const t of this.#topics.values()) for (const log of t.partitions) fsyncs += log.commit.syncs;
    return { fsyncs, appends: this.#appends, records: this.#records };
  }

  /** Retention and compaction passes since open (metrics). */
  maintenanceRuns(): { retention: number; compaction: number } {
    return { ...this.#runs };
  }

  /** Bytes and segment files of a partition's log (metrics). */
  partitionStorage(topic: string, partition: number): { bytes: number; segments: number } {
    const segments = this.#partition(topic, partition).segmentsSnapshot();
    return { bytes: segments.reduce((n, s) => n + s.size, 0), segments: segments.length };
  }

  /** Test hook: the segment base offsets of a partition, oldest first. */
  segmentBaseOffsets(topic: string, partition: number): number[] {
    return this.#partition(topic, partition).segmentBaseOffsets();
  }

  #syncDirtyPartitions(): void {
    for (const t of this.#topics.values()) {
      for (const log of t.partitions) {
        if (log.hasUnsyncedData && !log.commit.busy) {
          log.commit.request().catch((err) => this.#warn(`background sync of ${log.topic}/${log.partition} failed: ${(err as Error).message}`, {}));
        }
      }
    }
  }

  async flush(): Promise<void> {
    this.#checkOpen();
    await this.#flushAll();
  }

  async #flushAll(): Promise<void> {
    const work: Promise<void>[] = [this.#offsets.flush()];
    for (const t of this.#topics.values()) for (const log of t.partitions) work.push(log.flush());
    await Promise.all(work);
  }

  async close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      await this.#admin;
      for (const timer of this.#timers) clearInterval(timer);
      for (const t of this.#topics.values()) for (const log of t.partitions) log.stopCompaction(); // a running pass stops at its next yield
      await this.#compactor.running?.catch(() => undefined); // stops at its next yield (closed); its failure went to its caller
      try {
        await this.#flushAll();
      } finally {
        for (const t of this.#topics.values()) for (const log of t.partitions) log.close();
        await this.#offsets.close().catch((err: unknown) => this.#warn(`closing group offsets failed: ${(err as Error).message}`, {}));
        this.#notifier.notifyAll(); // tails wake, read, get UNAVAILABLE and stop
        this.#lock?.release();
      }
    })();
    return this.#closing;
  }
}
