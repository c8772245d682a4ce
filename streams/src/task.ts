/**
 * A task: one input partition of a sub-topology, with its stores, its stream time and the
 * outputs it collected since the last flush. Processing is synchronous and in offset
 * order; `snapshot()` cuts a flush (changelog records, the outbox record, the outputs).
 */
import { KeyValueStore, WindowStore, type ChangelogRecord } from "./stores.ts";
import { EVENT_TIME_HEADER, type OutputRecord, type SinkTarget, type StreamRecord, type SubTopology, type TaskContext } from "./topology.ts";

/** Header naming the flush and position that produced an output record: `<task>|<b>|<i>`. */
export const ORIGIN_HEADER = "tributary-streams-origin";

export const JSON_CONTENT_TYPE = "application/json";
export const TEXT_CONTENT_TYPE = "text/plain; charset=utf-8";

/** An output ready to publish: the value already serialised once. */
export interface EncodedOutput {
  topic: string;
  key: string | null;
  /** JSON text (contentType JSON) or the string value itself (text), or null for no value. */
  payload: string | null;
  contentType: string;
  headers: Record<string, string>;
}

/**
 * The outbox record of a flush, written to `<app>-<source>-outbox` partition p (key
 * "outbox") after the flush's changelog records are acknowledged and before its outputs are
 * produced: `b` the input offset the task reached (exclusive), `st` its stream time, `out`
 * the outputs, `from` per output topic and partition an offset at or below where they land.
 */
export interface Outbox {
  b: number;
  st: number;
  out: Array<{ t: string; k: string | null; c: string; v: unknown; h: Record<string, string> }>;
  from: Record<string, Record<string, number>>;
}

export interface FlushBatch {
  task: StreamTask;
  /** Input records processed into this batch. */
  records: number;
  changelog: Array<{ topic: string; records: ChangelogRecord[] }>;
  /** `b`, `st` and the outputs; `from` is added by the application when it writes it. */
  outbox: Omit<Outbox, "from">;
  outputs: EncodedOutput[];
}

export interface TaskNames {
  /** Changelog topic of a store. */
  changelog(store: string): string;
  /** A sink target's topic. */
  topic(target: SinkTarget): string;
  /** The task's identity in origin headers: `<app>|<source topic>|<partition>`. */
  readonly taskId: string;
}

/** Input of a task: what it reads of a delivered record. */
export interface InputRecord {
  offset: number;
  key: string | null;
  value: unknown;
  timestamp: number;
  headers: Record<string, string | Uint8Array>;
}

export interface TaskCounters {
  processed: number;
  skipped: number;
  late: number;
}

export class StreamTask implements TaskContext {
  readonly sub: SubTopology;
  readonly partition: number;
  readonly names: TaskNames;
  readonly #tables: (table: string, key: string) => unknown;
  readonly #kv = new Map<string, KeyValueStore>();
  readonly #windowed = new Map<string, WindowStore>();
  readonly counters: TaskCounters = { processed: 0, skipped: 0, late: 0 };
  offset = -1;
  /** Largest event time seen (-1: none). */
  streamTime = -1;
  /** Input offset (exclusive) processed so far. */
  next = 0;
  /** Records below this offset are already in the state and the outbox (after a restore). */
  skipBelow = 0;
  #outputs: EncodedOutput[] = [];
  #pendingBytes = 0;
  #sinceSnapshot = 0;
  #changed = false;

  constructor(sub: SubTopology, partition: number, names: TaskNames, tables: (table: string, key: string) => unknown) {
    this.sub = sub;
    this.partition = partition;
    this.names = names;
    this.#tables = tables;
    for (const { name, windows } of sub.stores) {
      if (windows) this.#windowed.set(name, new WindowStore(name, windows));
      else this.#kv.set(name, new KeyValueStore(name));
    }
  }

  /** Outputs collected since the last snapshot. */
  get pendingOutputs(): number {
    return this.#outputs.length;
  }

  /** About how many bytes the outbox of the outputs collected since the last snapshot takes. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  keyValueStore(name: string): KeyValueStore {
    return this.#kv.get(name)!;
  }

  windowStore(name: string): WindowStore {
    return this.#windowed.get(name)!;
  }

  /** All stores, by name. */
  stores(): Array<KeyValueStore | WindowStore> {
    return [...this.#kv.values(), ...this.#windowed.values()];
  }

  tableValue(table: string, key: string): unknown {
    return this.#tables(table, key);
  }

  topicName(target: SinkTarget): string {
    return this.names.topic(target);
  }

  late(): void {
    this.counters.late++;
  }

  emit(record: OutputRecord): void {
    const value = record.value;
    let payload: string | null;
    let contentType = JSON_CONTENT_TYPE;
    if (value === null || value === undefined) payload = null;
    else if (typeof value === "string") {
      payload = value;
      contentType = TEXT_CONTENT_TYPE;
    } else payload = JSON.stringify(value);
    this.#outputs.push({ topic: record.topic, key: record.key, payload, contentType, headers: record.headers });
    this.#pendingBytes += 200 + (payload?.length ?? 0) + (record.key?.length ?? 0);
  }

  /** Processes one input record (in offset order); records below `skipBelow` are skipped. */
  process(input: InputRecord, eventTime: number): void {
    if (input.offset < this.skipBelow) {
      this.counters.skipped++;
      return;
    }
    this.offset = input.offset;
    if (eventTime > this.streamTime) this.streamTime = eventTime;
    const record: StreamRecord = { key: input.key, value: input.value, timestamp: eventTime };
    this.sub.root.process(this, record);
    for (const aggregate of this.sub.aggregates) aggregate.closeWindows(this);
    this.next = input.offset + 1;
    this.counters.processed++;
    this.#sinceSnapshot++;
    this.#changed = true;
  }

  /** Cuts a flush: table updates go downstream, stores give their changelog records; null when nothing changed. */
  snapshot(): FlushBatch | null {
    this.offset = -1;
    for (const aggregate of this.sub.aggregates) aggregate.forwardUpdates(this);
    const changelog: FlushBatch["changelog"] = [];
    for (const store of this.stores()) {
      const records = store.snapshot(this.next);
      if (records.length > 0) changelog.push({ topic: this.names.changelog(store.name), records });
    }
    if (!this.#changed && changelog.length === 0 && this.#outputs.length === 0) return null;
    const outputs = this.#outputs;
    const records = this.#sinceSnapshot;
    this.#outputs = [];
    this.#pendingBytes = 0;
    this.#sinceSnapshot = 0;
    this.#changed = false;
    const b = this.next;
    for (let i = 0; i < outputs.length; i++) outputs[i]!.headers[ORIGIN_HEADER] = `${this.names.taskId}|${b}|${i}`;
    return {
      task: this,
      records,
      changelog,
      outbox: { b, st: this.streamTime, out: outputs.map((o) => ({ t: o.topic, k: o.key, c: o.contentType, v: o.payload, h: o.headers })) },
      outputs,
    };
  }

  /** The flush of the last snapshot is complete (outputs acknowledged). */
  flushed(): void {
    for (const store of this.stores()) store.flushed();
  }

  /** Restore: a changelog record of `store`. */
  restoreRecord(store: string, record: ChangelogRecord): void {
    (this.#kv.get(store) ?? this.#windowed.get(store))!.restore(record);
  }

  /** Restore: the last outbox, after the changelogs; windows it closed are dropped. */
  restoreOutbox(outbox: Pick<Outbox, "b" | "st"> | null): void {
    if (outbox) {
      this.streamTime = Math.max(this.streamTime, outbox.st);
      this.skipBelow = outbox.b;
      this.next = Math.max(this.next, outbox.b);
    }
    for (const store of this.#windowed.values()) store.dropClosed(this.streamTime);
  }
}

/** The event time of a record: the extractor's, else the event-time header (repartition topics), else its timestamp. */
export function eventTimeOf(sub: SubTopology, input: InputRecord): number {
  if (sub.options.timestamp) return sub.options.timestamp(input);
  if (typeof sub.source !== "string") {
    const header = input.headers[EVENT_TIME_HEADER];
    if (typeof header === "string") return Number(header);
  }
  return input.timestamp;
}
