import type { LogRecord } from "../../log/log-engine.ts";

/** A lazily computed, cached shape of a batch for one protocol (e.g. encoded WebSocket frames, MQTT messages). */
export interface BatchView<T> {
  make(batch: DeliveryBatch): T;
}

/**
 * Records of one partition in offset order (contiguous, except where compaction removed
 * records), as handed to consumers. A batch
 * from a shared feed (`feedId` set) is offered to every member of the feed: protocol
 * gateways derive what they need from it once (`view`) and every subscriber reuses it,
 * so 1,000 subscribers of a partition decode and encode each record once, not 1,000 times.
 */
export class DeliveryBatch {
  readonly topic: string;
  readonly partition: number;
  readonly epoch: string;
  readonly records: readonly LogRecord[];
  /** The feed that produced the batch; null for a cursor's own catch-up read. */
  readonly feedId: number | null;
  readonly firstOffset: number;
  /** The first view made (most batches are read by one protocol): no Map lookup for it. */
  #firstView: BatchView<unknown> | null = null;
  #firstValue: unknown = undefined;
  #views: Map<BatchView<unknown>, unknown> | null = null;

  constructor(topic: string, partition: number, epoch: string, records: readonly LogRecord[], feedId: number | null) {
    this.topic = topic;
    this.partition = partition;
    this.epoch = epoch;
    this.records = records;
    this.feedId = feedId;
    this.firstOffset = records[0]!.offset;
  }

  get length(): number {
    return this.records.length;
  }

  /** Offset after the batch's last record. */
  get endOffset(): number {
    return this.records[this.records.length - 1]!.offset + 1;
  }

  #payloadBytes = -1;

  /** Bytes of keys and values (a budget estimate; headers and framing not counted); summed once per batch. */
  get payloadBytes(): number {
    if (this.#payloadBytes < 0) this.#payloadBytes = payloadBytes(this.records, 0, this.records.length);
    return this.#payloadBytes;
  }

  /** Bytes of keys and values of `count` records from index `from` (the whole batch's sum is cached). */
  payloadBytesOf(from: number, count: number): number {
    return from === 0 && count === this.records.length ? this.payloadBytes : payloadBytes(this.records, from, count);
  }

  /** `view.make(this)`, computed on first use and cached for the batch's life. */
  view<T>(view: BatchView<T>): T {
    if (this.#firstView === view) return this.#firstValue as T;
    if (this.#firstView === null) {
      this.#firstView = view;
      this.#firstValue = view.make(this);
      return this.#firstValue as T;
    }
    const views = (this.#views ??= new Map());
    let value = views.get(view) as T | undefined;
    if (value === undefined) {
      value = view.make(this);
      views.set(view, value);
    }
    return value;
  }
}

function payloadBytes(records: readonly LogRecord[], from: number, count: number): number {
  let n = 0;
  for (let k = from; k < from + count; k++) {
    const r = records[k]!;
    n += (r.key?.length ?? 0) + (r.value?.length ?? 0);
  }
  return n;
}
