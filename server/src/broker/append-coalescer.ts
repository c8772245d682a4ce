import { isTributaryError } from "../errors.ts";
import type { Acks, LogEngine, ProducerEntry, RecordInput } from "../log/log-engine.ts";

export interface AppendCoalescerOptions {
  /** Most records one merged append carries (a single larger request still goes alone). */
  maxBatchRecords: number;
  /** Most estimated bytes one merged append carries (keep under every engine's maxBatchBytes). */
  maxBatchBytes: number;
  /** Called for each request the engine recognised as already written (idempotent produce). */
  onDuplicate?: () => void;
  /** Idle partition queues kept before a sweep forgets them (default 1024; the next sweep waits until the count doubles). */
  minSweepAt?: number;
}

/** A request's completion: `err` null and the offset of its first record, or the error. Must not throw. */
export type AppendDone = (err: unknown, baseOffset: number) => void;

/** The producer of a request: the engine deduplicates by it (see AppendOptions.producers). */
export interface RequestProducer {
  producerId: string;
  sequence: number;
}

interface PendingAppend {
  readonly records: RecordInput[];
  readonly acks: Acks;
  readonly bytes: number;
  readonly producer: RequestProducer | undefined;
  /** Appended alone (after its merged batch failed for a reason that may be its own). */
  solo: boolean;
  readonly done: AppendDone;
}

interface PartitionQueue {
  readonly topic: string;
  readonly partition: number;
  /** Requests not yet handed to the engine, in arrival order. */
  pending: PendingAppend[];
  /** Engine appends in flight, per acks level (index: `level(acks)`). */
  readonly inFlight: [number, number, number];
  scheduled: boolean;
}

/** Index of an acks level in `PartitionQueue.inFlight`. */
const level = (acks: Acks): number => (acks === 0 ? 0 : acks === 1 ? 1 : 2);
const idle = (q: PartitionQueue): boolean => q.pending.length === 0 && !q.scheduled && q.inFlight[0] + q.inFlight[1] + q.inFlight[2] === 0;

/** Idle queues are kept (no Map churn per append) until the count passes this, then swept. */
const MIN_SWEEP_AT = 1024;

/** Per-record framing the estimate adds to key + value + headers (offset delta, lengths, attributes). */
const RECORD_OVERHEAD = 32;

/** Errors that may be caused by one request of a merged batch (nothing was written): retry each alone. */
const PER_REQUEST_CODES = new Set(["BAD_REQUEST", "RECORD_TOO_LARGE", "POLICY_VIOLATION"]);

/**
 * Merges produce requests to one partition into one `LogEngine.append`: requests that
 * arrive in the same event-loop turn, or while the partition's previous append of the same
 * acks level is in flight, go to the engine as one batch (one write, one notification, one
 * round trip for Redis) and each request gets its own slice of the offsets back.
 *
 * Guarantees:
 * - Order: requests are handed to the engine strictly in arrival order per partition, so
 *   a request that arrives after another (e.g. the next publish of the same connection)
 *   gets higher offsets. A merged batch holds consecutive requests of one acks level;
 *   a request of another level waits until the ones before it were issued.
 * - Atomicity: each request's records stay contiguous (a batch is atomic in the engine).
 * - Acks: a request resolves when its batch resolved at the request's acks level.
 * - Idempotence: requests carrying a producer are passed to the engine as producer entries;
 *   a request the engine reports as a duplicate resolves with the first write's offset and
 *   takes no offsets of this batch (the others stay contiguous, in order).
 * - Errors: a failed append rejects only the requests of that batch. When the error may
 *   be a single request's fault (BAD_REQUEST, RECORD_TOO_LARGE, POLICY_VIOLATION, nothing
 *   written), the batch's requests are retried one by one, in order, so only the culprit
 *   fails; other errors (storage, unknown partition, replicas) reject the whole batch.
 */
export class AppendCoalescer {
  readonly #engine: LogEngine;
  readonly #options: AppendCoalescerOptions;
  /** Per topic, its partitions' queues (by partition number). */
  readonly #queues = new Map<string, PartitionQueue[]>();
  #queueCount = 0;
  #sweepAt: number;
  /** Queues with requests waiting for the end of the event-loop turn. */
  #ready: PartitionQueue[] = [];
  /** Engine appends issued so far (for tests and metrics). */
  appends = 0;

  constructor(engine: LogEngine, options: AppendCoalescerOptions) {
    this.#engine = engine;
    this.#options = options;
    this.#sweepAt = options.minSweepAt ?? MIN_SWEEP_AT;
  }

  /** Partition queues held (active and idle not yet swept). */
  get queueCount(): number {
    return this.#queueCount;
  }

  /** Appends `records` (non-empty) to the partition; resolves with the offset of the first one. */
  append(topic: string, partition: number, records: RecordInput[], acks: Acks, producer?: RequestProducer): Promise<number> {
    return new Promise<number>((resolve, reject) => this.appendThen(topic, partition, records, acks, producer, (err, offset) => (err === null ? resolve(offset) : reject(err))));
  }

  /** `append` with a callback instead of a promise (the per-publish paths: no promise per request). */
  appendThen(topic: string, partition: number, records: RecordInput[], acks: Acks, producer: RequestProducer | undefined, done: AppendDone): void {
    const q = this.#queue(topic, partition);
    q.pending.push({ records, acks, bytes: estimateBytes(records), producer, solo: false, done });
    if (!q.scheduled && q.inFlight[level(acks)] === 0) {
      q.scheduled = true;
      if (this.#ready.length === 0) setImmediate(() => this.#flushReady());
      this.#ready.push(q);
    }
  }

  #queue(topic: string, partition: number): PartitionQueue {
    const known = this.#queues.get(topic)?.[partition];
    if (known) return known;
    if (this.#queueCount >= this.#sweepAt) this.#sweep(); // before the new queue exists: it is idle until its request is pushed
    let queues = this.#queues.get(topic);
    if (!queues) this.#queues.set(topic, (queues = []));
    this.#queueCount++;
    return (queues[partition] = { topic, partition, pending: [], inFlight: [0, 0, 0], scheduled: false });
  }

  /** Forgets idle queues (the partitions of topics no longer produced to); the next sweep waits until the count doubles. */
  #sweep(): void {
    let count = 0;
    for (const [topic, queues] of this.#queues) {
      let left = 0;
      for (let p = 0; p < queues.length; p++) {
        const q = queues[p];
        if (q === undefined) continue;
        if (idle(q)) delete queues[p];
        else left++;
      }
      if (left === 0) this.#queues.delete(topic);
      count += left;
    }
    this.#queueCount = count;
    this.#sweepAt = Math.max(this.#options.minSweepAt ?? MIN_SWEEP_AT, 2 * count);
  }

  #flushReady(): void {
    const ready = this.#ready;
    this.#ready = [];
    for (const q of ready) {
      q.scheduled = false;
      this.#issue(q);
    }
  }

  /** Hands the queue's head runs to the engine while their acks level has nothing in flight. */
  #issue(q: PartitionQueue): void {
    const { maxBatchRecords, maxBatchBytes } = this.#options;
    while (q.pending.length > 0) {
      const head = q.pending[0]!;
      const acks = head.acks;
      if (q.inFlight[level(acks)]! > 0) return; // merges with what arrives meanwhile
      let n = 1;
      let records = head.records.length;
      let bytes = head.bytes;
      if (!head.solo) {
        for (; n < q.pending.length; n++) {
          const next = q.pending[n]!;
          if (next.solo || next.acks !== acks) break;
          if (records + next.records.length > maxBatchRecords || bytes + next.bytes > maxBatchBytes) break;
          records += next.records.length;
          bytes += next.bytes;
        }
      }
      const batch = q.pending.splice(0, n);
      this.#send(q, batch, acks);
    }
  }

  #send(q: PartitionQueue, batch: PendingAppend[], acks: Acks): void {
    const inputs = batch.length === 1 ? batch[0]!.records : batch.flatMap((r) => r.records);
    q.inFlight[level(acks)]++;
    this.appends++;
    let producers: ProducerEntry[] | undefined;
    let first = 0;
    for (const request of batch) {
      if (request.producer) (producers ??= []).push({ ...request.producer, first, count: request.records.length });
      first += request.records.length;
    }
    let appended: ReturnType<LogEngine["append"]>;
    try {
      appended = this.#engine.append(q.topic, q.partition, inputs, producers ? { acks, producers } : { acks });
    } catch (err) {
      appended = Promise.reject(err);
    }
    appended.then(
      ({ baseOffset, duplicates }) => {
        this.#done(q, acks);
        const written = duplicates?.length ? new Map(duplicates.map((d) => [producers![d.entry]!.first, d.baseOffset])) : undefined;
        let offset = baseOffset;
        let index = 0;
        for (const request of batch) {
          const duplicate = written?.get(index);
          index += request.records.length;
          if (duplicate !== undefined && request.producer) {
            this.#options.onDuplicate?.();
            complete(request, null, duplicate);
            continue;
          }
          complete(request, null, offset);
          offset += request.records.length;
        }
      },
      (err: unknown) => {
        if (batch.length > 1 && PER_REQUEST_CODES.has(isTributaryError(err) ? err.code : "")) {
          // Nothing of the batch was written: retry each request alone, before anything newer.
          for (const request of batch) request.solo = true;
          q.pending.unshift(...batch);
          this.#done(q, acks);
          return;
        }
        this.#done(q, acks);
        for (const request of batch) complete(request, err ?? new Error("append failed without a reason"), -1);
      },
    );
  }

  #done(q: PartitionQueue, acks: Acks): void {
    q.inFlight[level(acks)]--;
    if (!q.scheduled) this.#issue(q);
  }
}

/** Calls a request's `done`; one that throws (a bug) is rethrown outside this loop, so the batch's other requests still complete. */
function complete(request: PendingAppend, err: unknown, offset: number): void {
  try {
    request.done(err, offset);
  } catch (thrown) {
    queueMicrotask(() => {
      throw thrown;
    });
  }
}

function estimateBytes(records: RecordInput[]): number {
  let bytes = 0;
  for (const r of records) {
    bytes += RECORD_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
    if (r.headers) for (const name in r.headers) bytes += name.length + (r.headers[name]?.length ?? 0) + 8;
  }
  return bytes;
}
