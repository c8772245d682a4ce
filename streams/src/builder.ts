/**
 * The fluent builder:
 *
 *   const builder = new StreamsBuilder();
 *   builder.from<Reading>("sensor-data")
 *     .filter((r) => r.temp !== null)
 *     .groupByKey()
 *     .windowedBy(tumbling(60_000, { grace: 10_000 }))
 *     .aggregate(() => ({ sum: 0, count: 0 }), (key, r, agg) => ({ sum: agg.sum + r.temp, count: agg.count + 1 }))
 *     .toStream()
 *     .mapValues((agg) => agg.sum / agg.count)
 *     .to("sensor-averages");
 *
 * Each `from` starts a sub-topology. A re-key (`selectKey`, `map`, `flatMap`, `groupBy`)
 * followed by a grouping goes through a repartition topic, so that every key is
 * aggregated by exactly one task: the builder ends the sub-topology with a sink to
 * `<applicationId>-<store>-repartition` and starts the next one from it.
 */
import { StreamsError } from "./errors.ts";
import {
  AggregateNode,
  FilterNode,
  FlatMapNode,
  JoinNode,
  MapNode,
  PeekNode,
  SinkNode,
  SubTopology,
  type Aggregation,
  type KeyValue,
  type SourceOptions,
  type StreamNode,
  type StreamRecord,
  type Topology,
} from "./topology.ts";
import type { TimeWindows, Window } from "./windows.ts";

export interface StoreOptions {
  /** Store name: names the changelog topic `<applicationId>-<name>-changelog` (default `<op>-<n>`). Keep it stable across versions. */
  name?: string;
}

export class StreamsBuilder {
  readonly #subTopologies: SubTopology[] = [];
  readonly #tables = new Set<string>();
  readonly #storeNames = new Set<string>();
  #counter = 0;

  /** A stream of the records of `topic` (one task per partition). */
  from<V = unknown>(topic: string, options: SourceOptions = {}): KStream<V> {
    if (this.#subTopologies.some((s) => s.source === topic)) {
      throw new StreamsError("INVALID_TOPOLOGY", `topic "${topic}" is read by from() twice; read it once and use the stream twice`);
    }
    const sub = new SubTopology(topic, options);
    this.#subTopologies.push(sub);
    return new KStream<V>(this, sub, sub.root, false);
  }

  /**
   * A table (last value per key) of a compacted topic, for `join`. Every instance reads all
   * its partitions (a global table: no co-partitioning with the stream needed) and stream
   * records are processed only once it caught up with the topic's end at start.
   */
  table<V = unknown>(topic: string): GlobalTable<V> {
    this.#tables.add(topic);
    return new GlobalTable<V>(topic);
  }

  build(): Topology {
    const subTopologies = [...this.#subTopologies];
    const tables = [...this.#tables];
    if (subTopologies.length === 0) throw new StreamsError("INVALID_TOPOLOGY", "the topology reads no topic: call from() first");
    return {
      subTopologies,
      tables,
      describe: () => subTopologies.map((s, i) => `sub-topology ${i}: ${describeNode(s.root, typeof s.source === "string" ? `from ${s.source}` : `from repartition ${s.source.repartition}`, "")}`).join("\n"),
    };
  }

  /** @internal */
  storeName(op: string, options: StoreOptions): string {
    const name = options.name ?? `${op}-${++this.#counter}`;
    if (!/^[a-zA-Z0-9._-]{1,100}$/.test(name)) throw new StreamsError("INVALID_TOPOLOGY", `store name "${name}" must match [a-zA-Z0-9._-]{1,100}`);
    if (this.#storeNames.has(name)) throw new StreamsError("INVALID_TOPOLOGY", `store name "${name}" is used twice`);
    this.#storeNames.add(name);
    return name;
  }

  /** @internal */
  repartition(sub: SubTopology, node: StreamNode, store: string): { sub: SubTopology; node: StreamNode } {
    const target = { repartition: store };
    const sink = new SinkNode(target);
    node.children.push(sink);
    sub.sinks.push(target);
    const next = new SubTopology(target, {});
    this.#subTopologies.push(next);
    return { sub: next, node: next.root };
  }
}

function describeNode(node: StreamNode, label: string, indent: string): string {
  const lines = [`${indent}${label}`];
  for (const child of node.children) lines.push(describeNode(child, child.constructor.name.replace(/Node$/, "").toLowerCase(), `${indent}  `));
  return lines.join("\n");
}

export class GlobalTable<V = unknown> {
  /** @internal */
  readonly _value?: V;
  constructor(readonly topic: string) {}
}

export class KStream<V = unknown> {
  readonly #builder: StreamsBuilder;
  readonly #sub: SubTopology;
  readonly #node: StreamNode;
  /** The key may differ from the one the records' partition was chosen by. */
  readonly #rekeyed: boolean;

  /** @internal */
  constructor(builder: StreamsBuilder, sub: SubTopology, node: StreamNode, rekeyed: boolean) {
    this.#builder = builder;
    this.#sub = sub;
    this.#node = node;
    this.#rekeyed = rekeyed;
  }

  #then<W>(node: StreamNode, rekeyed = this.#rekeyed): KStream<W> {
    this.#node.children.push(node);
    return new KStream<W>(this.#builder, this.#sub, node, rekeyed);
  }

  /** Keeps the records `predicate` accepts. */
  filter(predicate: (value: V, key: string | null, record: StreamRecord<V>) => boolean): KStream<V> {
    return this.#then(new FilterNode(predicate));
  }

  /** Drops the records `predicate` accepts. */
  filterNot(predicate: (value: V, key: string | null, record: StreamRecord<V>) => boolean): KStream<V> {
    return this.#then(new FilterNode((v, k, r) => !predicate(v, k, r)));
  }

  /** A new key and value per record (a re-key: a later grouping repartitions). */
  map<W>(fn: (value: V, key: string | null, record: StreamRecord<V>) => KeyValue<string | null, W>): KStream<W> {
    return this.#then(new MapNode((v, k, r) => ({ ...r, ...fn(v, k, r) })), true);
  }

  /** A new value per record; the key stays. */
  mapValues<W>(fn: (value: V, key: string | null, record: StreamRecord<V>) => W): KStream<W> {
    return this.#then(new MapNode((v, k, r) => ({ ...r, value: fn(v, k, r) })));
  }

  /** Zero or more records per record (a re-key: a later grouping repartitions). */
  flatMap<W>(fn: (value: V, key: string | null, record: StreamRecord<V>) => Iterable<KeyValue<string | null, W>>): KStream<W> {
    return this.#then(
      new FlatMapNode(function* (v, k, r) {
        for (const kv of fn(v, k, r)) yield { ...r, ...kv };
      }),
      true,
    );
  }

  /** Zero or more values per record, same key. */
  flatMapValues<W>(fn: (value: V, key: string | null, record: StreamRecord<V>) => Iterable<W>): KStream<W> {
    return this.#then(
      new FlatMapNode(function* (v, k, r) {
        for (const value of fn(v, k, r)) yield { ...r, value };
      }),
    );
  }

  /** A new key per record (a re-key). */
  selectKey(fn: (value: V, key: string | null, record: StreamRecord<V>) => string | null): KStream<V> {
    return this.#then(new MapNode((v, k, r) => ({ ...r, key: fn(v, k, r) })), true);
  }

  /** Calls `fn` for each record (side effects: logging, metrics); the records go on unchanged. */
  peek(fn: (value: V, key: string | null, record: StreamRecord<V>) => void): KStream<V> {
    return this.#then(new PeekNode(fn));
  }

  /** Inner join with a table by key: records whose key has no table value are dropped. */
  join<T, W>(table: GlobalTable<T>, joiner: (value: V, tableValue: T, key: string | null) => W): KStream<W> {
    this.#sub.tables.add(table.topic);
    return this.#then(new JoinNode(table.topic, joiner, false));
  }

  /** Left join with a table by key: `tableValue` is null when the key has none. */
  leftJoin<T, W>(table: GlobalTable<T>, joiner: (value: V, tableValue: T | null, key: string | null) => W): KStream<W> {
    this.#sub.tables.add(table.topic);
    return this.#then(new JoinNode(table.topic, joiner, true));
  }

  /** Groups by the current key (through a repartition topic when the key was changed upstream). */
  groupByKey(): KGroupedStream<V> {
    return new KGroupedStream<V>(this.#builder, this.#sub, this.#node, this.#rekeyed);
  }

  /** Groups by a new key (always through a repartition topic). */
  groupBy(fn: (value: V, key: string | null, record: StreamRecord<V>) => string | null): KGroupedStream<V> {
    return this.selectKey(fn).groupByKey();
  }

  /** Produces every record to `topic` (keyed records land by murmur2(key) like any keyed publish). */
  to(topic: string): void {
    this.#sub.sinks.push(topic);
    this.#node.children.push(new SinkNode(topic));
  }
}

export class KGroupedStream<V = unknown> {
  /** @internal */
  constructor(
    readonly builder: StreamsBuilder,
    readonly sub: SubTopology,
    readonly node: StreamNode,
    readonly rekeyed: boolean,
  ) {}

  /** Aggregates per key and time window (see `tumbling`, `hopping`). */
  windowedBy(windows: TimeWindows): TimeWindowedKStream<V> {
    return new TimeWindowedKStream<V>(this, windows);
  }

  /** Running count per key (a table: the latest count of each changed key is emitted at every flush). */
  count(options: StoreOptions = {}): KTable<number> {
    return this.aggregate(() => 0, (_k, _v, n: number) => n + 1, { name: options.name ?? this.builder.storeName("count", {}) });
  }

  /** Running reduction per key: the first value, then `reducer(agg, value)`. */
  reduce(reducer: (agg: V, value: V) => V, options: StoreOptions = {}): KTable<V> {
    return this.aggregate<V>(() => FIRST as V, (_k, v, agg) => (agg === FIRST ? v : reducer(agg, v)), { name: options.name ?? this.builder.storeName("reduce", {}) });
  }

  /** Running aggregate per key: `initializer()`, then `aggregator(key, value, agg)` per record. Aggregates must be JSON values (they go to the changelog). */
  aggregate<A>(initializer: () => A, aggregator: (key: string, value: V, agg: A) => A, options: StoreOptions = {}): KTable<A> {
    return aggregateInto<A>(this, { init: initializer, add: aggregator as Aggregation["add"] }, undefined, options.name ?? this.builder.storeName("aggregate", {}));
  }
}

/** Marks "no value yet" in reduce; never leaves the process (replaced by the first value). */
const FIRST = "\u0000tributary-streams-reduce-first";

export class TimeWindowedKStream<V = unknown> {
  /** @internal */
  constructor(
    readonly grouped: KGroupedStream<V>,
    readonly windows: TimeWindows,
  ) {}

  /** Count per key and window; one final result per window, when it closes. */
  count(options: StoreOptions = {}): KTable<number> {
    return aggregateInto<number>(this.grouped, { init: () => 0, add: (_k, _v, n: number) => n + 1 }, this.windows, options.name ?? this.grouped.builder.storeName("count", {}));
  }

  /** Reduction per key and window; one final result per window. */
  reduce(reducer: (agg: V, value: V) => V, options: StoreOptions = {}): KTable<V> {
    return aggregateInto<V>(this.grouped, { init: () => FIRST, add: (_k, v, agg) => (agg === FIRST ? v : reducer(agg, v)) }, this.windows, options.name ?? this.grouped.builder.storeName("reduce", {}));
  }

  /** Aggregate per key and window; one final result per window, emitted once when the stream time passes its end + grace. */
  aggregate<A>(initializer: () => A, aggregator: (key: string, value: V, agg: A) => A, options: StoreOptions = {}): KTable<A> {
    return aggregateInto<A>(this.grouped, { init: initializer, add: aggregator as Aggregation["add"] }, this.windows, options.name ?? this.grouped.builder.storeName("aggregate", {}));
  }
}

function aggregateInto<A>(grouped: KGroupedStream<any>, aggregation: Aggregation, windows: TimeWindows | undefined, store: string): KTable<A> {
  let { sub, node } = grouped;
  if (grouped.rekeyed) ({ sub, node } = grouped.builder.repartition(sub, node, store));
  const aggregate = new AggregateNode(store, aggregation, windows);
  node.children.push(aggregate);
  sub.stores.push({ name: store, windows });
  sub.aggregates.push(aggregate);
  return new KTable<A>(grouped.builder, sub, aggregate);
}

/**
 * The result of an aggregation. `toStream()` gives its updates as a stream: for windowed
 * aggregates one record per closed window (`record.window` set, key = the group key), for
 * the others the latest value of each key changed since the last flush.
 */
export class KTable<V = unknown> {
  /** @internal */
  constructor(
    readonly builder: StreamsBuilder,
    readonly sub: SubTopology,
    readonly node: StreamNode,
  ) {}

  toStream(): KStream<V> {
    return new KStream<V>(this.builder, this.sub, this.node, false);
  }

  /** Shortcut for `toStream().to(topic)`: windowed results carry `tributary-window-start` / `-end` headers. */
  to(topic: string): void {
    this.toStream().to(topic);
  }
}

export type { Window };
