/**
 * A small in-memory LogEngine for the WebSocket gateway tests and bench (fast, no disk),
 * built on the shared tail loop. Not a product engine: no persistence, no retention by
 * time; `truncateBefore` simulates retention dropping old records.
 */
import { randomUUID } from "node:crypto";
import { TributaryError } from "../../server/src/errors.ts";
import {
  DEFAULT_TOPIC_CONFIG,
  TOPIC_NAME_PATTERN,
  type AppendOptions,
  type AppendResult,
  type CommittedOffset,
  type LogEngine,
  type LogRecord,
  type PartitionInfo,
  type ReadOptions,
  type RecordInput,
  type Tail,
  type TailHandler,
  type TopicConfig,
  type TopicDescription,
} from "../../server/src/log/log-engine.ts";
import { AppendNotifier, startTailLoop } from "../../server/src/log/tail-loop.ts";

interface MemPartition {
  records: LogRecord[];
  /** Offset of records[0]. */
  base: number;
  epoch: string;
}

interface MemTopic {
  config: TopicConfig;
  createdAt: number;
  partitions: MemPartition[];
}

export class WsMemoryEngine implements LogEngine {
  readonly kind = "memory";
  readonly #topics = new Map<string, MemTopic>();
  readonly #notifier = new AppendNotifier();
  readonly #offsets = new Map<string, Map<string, Map<number, CommittedOffset>>>();
  #closed = false;
  /** Test knob: every append waits this long before it is written (a slow disk). */
  appendDelayMs = 0;

  async createTopic(name: string, config: Partial<TopicConfig>): Promise<TopicDescription> {
    this.#check();
    if (!TOPIC_NAME_PATTERN.test(name)) throw new TributaryError("INVALID_TOPIC", `invalid topic name "${name}"`, { topic: name });
    if (this.#topics.has(name)) throw new TributaryError("TOPIC_EXISTS", `topic "${name}" exists`, { topic: name });
    const full = { ...DEFAULT_TOPIC_CONFIG, ...config };
    const partitions = Array.from({ length: full.partitions }, () => ({ records: [], base: 0, epoch: randomUUID() }));
    this.#topics.set(name, { config: full, createdAt: Date.now(), partitions });
    return this.describeTopic(name);
  }

  async deleteTopic(name: string): Promise<void> {
    this.#topic(name);
    this.#topics.delete(name);
    this.#notifier.notifyAll();
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    const topic = this.#topic(name);
    return {
      name,
      ...topic.config,
      createdAt: topic.createdAt,
      partitionInfo: topic.partitions.map((p, i) => this.#info(p, i)),
    };
  }

  async listTopics(): Promise<string[]> {
    return [...this.#topics.keys()];
  }

  async append(topic: string, partition: number, records: RecordInput[], _options?: AppendOptions): Promise<AppendResult> {
    if (this.appendDelayMs > 0) await new Promise((r) => setTimeout(r, this.appendDelayMs));
    const p = this.#partition(topic, partition);
    const baseOffset = p.base + p.records.length;
    const now = Date.now();
    let timestamp = 0;
    records.forEach((r, i) => {
      const ts = r.timestamp ?? now;
      timestamp = Math.max(timestamp, ts);
      p.records.push({ offset: baseOffset + i, timestamp: ts, key: r.key, value: r.value, headers: r.headers ?? {} });
    });
    queueMicrotask(() => this.#notifier.notify(topic, partition));
    return { baseOffset, timestamp };
  }

  async read(topic: string, partition: number, offset: number, options: ReadOptions = {}): Promise<LogRecord[]> {
    const p = this.#partition(topic, partition);
    const end = p.base + p.records.length;
    if (offset < p.base || offset > end) {
      throw new TributaryError("OFFSET_OUT_OF_RANGE", `offset ${offset} outside ${p.base}..${end}`, { topic, partition, offset, earliest: p.base });
    }
    const max = options.maxRecords ?? 500;
    const maxBytes = options.maxBytes ?? Infinity;
    const out: LogRecord[] = [];
    let bytes = 0;
    for (let i = offset - p.base; i < p.records.length && out.length < max; i++) {
      const r = p.records[i]!;
      bytes += (r.value?.length ?? 0) + (r.key?.length ?? 0);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(r);
    }
    return out;
  }

  async offsets(topic: string, partition: number): Promise<PartitionInfo> {
    return this.#info(this.#partition(topic, partition), partition);
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    const p = this.#partition(topic, partition);
    const hit = p.records.find((r) => r.timestamp >= timestamp);
    return hit ? hit.offset : p.base + p.records.length;
  }

  tail(topic: string, partition: number, fromOffset: number, handler: TailHandler): Tail {
    const source = {
      read: (t: string, p: number, o: number, opts?: ReadOptions) => this.read(t, p, o, opts),
      epoch: async (t: string, p: number) => this.#partition(t, p).epoch,
    };
    return startTailLoop(source, this.#notifier, topic, partition, fromOffset, handler);
  }

  /** Test hook: drops records below `offset` (as retention would). */
  truncateBefore(topic: string, partition: number, offset: number): void {
    const p = this.#partition(topic, partition);
    const drop = Math.min(offset - p.base, p.records.length);
    if (drop <= 0) return;
    p.records.splice(0, drop);
    p.base += drop;
  }

  async commitOffset(group: string, topic: string, partition: number, offset: number, metadata = ""): Promise<void> {
    let g = this.#offsets.get(group);
    if (!g) this.#offsets.set(group, (g = new Map()));
    let t = g.get(topic);
    if (!t) g.set(topic, (t = new Map()));
    t.set(partition, { offset, metadata, committedAt: Date.now() });
  }

  async fetchOffset(group: string, topic: string, partition: number): Promise<CommittedOffset | null> {
    return this.#offsets.get(group)?.get(topic)?.get(partition) ?? null;
  }

  async fetchGroupOffsets(group: string): Promise<Map<string, Map<number, CommittedOffset>>> {
    return this.#offsets.get(group) ?? new Map();
  }

  async listGroups(): Promise<string[]> {
    return [...this.#offsets.keys()];
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.#closed = true;
    this.#notifier.notifyAll();
  }

  #check(): void {
    if (this.#closed) throw new TributaryError("UNAVAILABLE", "engine closed");
  }

  #topic(name: string): MemTopic {
    this.#check();
    const topic = this.#topics.get(name);
    if (!topic) throw new TributaryError("UNKNOWN_TOPIC", `topic "${name}" does not exist`, { topic: name });
    return topic;
  }

  #partition(topic: string, partition: number): MemPartition {
    const p = this.#topic(topic).partitions[partition];
    if (!p) throw new TributaryError("UNKNOWN_PARTITION", `no partition ${partition} in "${topic}"`, { topic, partition });
    return p;
  }

  #info(p: MemPartition, partition: number): PartitionInfo {
    return { partition, earliestOffset: p.base, endOffset: p.base + p.records.length, epoch: p.epoch };
  }
}
