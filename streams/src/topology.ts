/**
 * The processing graph the builder describes: per input topic a sub-topology (a source and
 * a tree of nodes). Nodes hold no state: a task (one input partition) runs a record
 * through them with its own `TaskContext` (stores, stream time, collected outputs).
 */
import type { KeyValueStore, WindowStore } from "./stores.ts";
import { isClosed, windowsFor, type TimeWindows, type Window } from "./windows.ts";

/** One record flowing through the graph. Keys are text (the record key as UTF-8). */
export interface StreamRecord<V = unknown> {
  key: string | null;
  value: V;
  /** Event time, ms since the epoch. */
  timestamp: number;
  /** Set on the results of a windowed aggregate. */
  window?: Window;
}

export interface KeyValue<K = string | null, V = unknown> {
  key: K;
  value: V;
}

/** A record to produce. */
export interface OutputRecord {
  topic: string;
  key: string | null;
  value: unknown;
  headers: Record<string, string>;
}

/** What a node sees of the task running it. */
export interface TaskContext {
  /** Offset of the input record being processed (-1 when forwarding table updates at a flush). */
  readonly offset: number;
  readonly streamTime: number;
  keyValueStore(name: string): KeyValueStore;
  windowStore(name: string): WindowStore;
  /** The current value of a global table. */
  tableValue(table: string, key: string): unknown;
  /** A topic name the application resolves (repartition topics are named after the application). */
  topicName(topic: SinkTarget): string;
  emit(record: OutputRecord): void;
  /** Counts a record dropped because all its windows were closed. */
  late(): void;
}

export type SinkTarget = string | { repartition: string };

/** Header carrying a record's event time through output and repartition topics. */
export const EVENT_TIME_HEADER = "tributary-streams-time";
export const WINDOW_START_HEADER = "tributary-window-start";
export const WINDOW_END_HEADER = "tributary-window-end";

export abstract class StreamNode {
  readonly children: StreamNode[] = [];
  abstract process(ctx: TaskContext, record: StreamRecord): void;

  forward(ctx: TaskContext, record: StreamRecord): void {
    for (const child of this.children) child.process(ctx, record);
  }
}

export class PassNode extends StreamNode {
  process(ctx: TaskContext, record: StreamRecord): void {
    this.forward(ctx, record);
  }
}

export class FilterNode extends StreamNode {
  constructor(readonly predicate: (value: any, key: string | null, record: StreamRecord<any>) => boolean) {
    super();
  }
  process(ctx: TaskContext, record: StreamRecord): void {
    if (this.predicate(record.value, record.key, record)) this.forward(ctx, record);
  }
}

export class MapNode extends StreamNode {
  constructor(readonly fn: (value: any, key: string | null, record: StreamRecord<any>) => StreamRecord) {
    super();
  }
  process(ctx: TaskContext, record: StreamRecord): void {
    this.forward(ctx, this.fn(record.value, record.key, record));
  }
}

export class FlatMapNode extends StreamNode {
  constructor(readonly fn: (value: any, key: string | null, record: StreamRecord<any>) => Iterable<StreamRecord>) {
    super();
  }
  process(ctx: TaskContext, record: StreamRecord): void {
    for (const out of this.fn(record.value, record.key, record)) this.forward(ctx, out);
  }
}

export class PeekNode extends StreamNode {
  constructor(readonly fn: (value: any, key: string | null, record: StreamRecord<any>) => void) {
    super();
  }
  process(ctx: TaskContext, record: StreamRecord): void {
    this.fn(record.value, record.key, record);
    this.forward(ctx, record);
  }
}

export class JoinNode extends StreamNode {
  constructor(
    readonly table: string,
    readonly joiner: (value: any, tableValue: any, key: string | null) => unknown,
    readonly left: boolean,
  ) {
    super();
  }
  process(ctx: TaskContext, record: StreamRecord): void {
    const tableValue = record.key === null ? undefined : ctx.tableValue(this.table, record.key);
    if (tableValue === undefined && !this.left) return;
    this.forward(ctx, { ...record, value: this.joiner(record.value, tableValue ?? null, record.key) });
  }
}

export interface Aggregation {
  init: () => unknown;
  add: (key: string, value: any, agg: any) => unknown;
}

/** Aggregates records by key into a store; records without a key are dropped (as in Kafka). */
export class AggregateNode extends StreamNode {
  constructor(
    readonly store: string,
    readonly aggregation: Aggregation,
    readonly windows: TimeWindows | undefined,
  ) {
    super();
  }

  process(ctx: TaskContext, record: StreamRecord): void {
    const key = record.key;
    if (key === null) return;
    const { init, add } = this.aggregation;
    if (!this.windows) {
      ctx.keyValueStore(this.store).update(key, ctx.offset, (agg) => add(key, record.value, agg), init);
      return;
    }
    const store = ctx.windowStore(this.store);
    let accepted = false;
    for (const window of windowsFor(this.windows, record.timestamp)) {
      if (isClosed(this.windows, window.end, ctx.streamTime)) continue;
      accepted = true;
      store.update(key, window, ctx.offset, (agg) => add(key, record.value, agg), init);
    }
    if (!accepted) ctx.late();
  }

  /** Windowed: forwards the final result of every window closed at the task's stream time. */
  closeWindows(ctx: TaskContext): void {
    if (!this.windows) return;
    for (const closed of ctx.windowStore(this.store).close(ctx.streamTime)) {
      this.forward(ctx, { key: closed.key, value: closed.agg, timestamp: closed.window.end - 1, window: closed.window });
    }
  }

  /** Non-windowed: forwards the latest value of every key changed since the last flush (a table's updates). */
  forwardUpdates(ctx: TaskContext): void {
    if (this.windows) return;
    for (const { key, agg } of ctx.keyValueStore(this.store).changed()) this.forward(ctx, { key, value: agg, timestamp: ctx.streamTime });
  }
}

export class SinkNode extends StreamNode {
  constructor(readonly target: SinkTarget) {
    super();
  }
  process(ctx: TaskContext, record: StreamRecord): void {
    const headers: Record<string, string> = { [EVENT_TIME_HEADER]: String(record.timestamp) };
    if (record.window) {
      headers[WINDOW_START_HEADER] = String(record.window.start);
      headers[WINDOW_END_HEADER] = String(record.window.end);
    }
    ctx.emit({ topic: ctx.topicName(this.target), key: record.key, value: record.value, headers });
  }
}

export interface SourceOptions {
  /** Event time of a record (default: the record's timestamp; a repartition source reads the event-time header). */
  timestamp?: (record: { key: string | null; value: unknown; timestamp: number; headers: Record<string, string | Uint8Array> }) => number;
}

/** A sub-topology: one input topic (or repartition topic) and the nodes below it. */
export class SubTopology {
  readonly root = new PassNode();
  readonly stores: Array<{ name: string; windows: TimeWindows | undefined }> = [];
  readonly aggregates: AggregateNode[] = [];
  readonly sinks: SinkTarget[] = [];
  readonly tables = new Set<string>();

  constructor(
    readonly source: SinkTarget,
    readonly options: SourceOptions,
  ) {}
}

/** What `StreamsBuilder.build()` returns: the sub-topologies and the global tables they join with. */
export interface Topology {
  readonly subTopologies: readonly SubTopology[];
  readonly tables: readonly string[];
  /** A text description (one line per node), for logs and docs. */
  describe(): string;
}
