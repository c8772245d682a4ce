import type { Broker, ProduceRecord } from "../../broker/broker.ts";

export interface IngressItem {
  logTopic: string;
  record: ProduceRecord;
  /** Called in arrival order once the record is in the log (err null) or failed. */
  done: (err: unknown) => void;
  /** Set when the produce of this item failed. */
  error?: unknown;
}

/**
 * The publish path of one connection. PUBLISH packets that arrive in the same tick are
 * produced together (one `Broker.produce` per log topic, hence one append per partition),
 * and completions run strictly in arrival order, so PUBACK/PUBREC go out in the order the
 * PUBLISH packets came in [MQTT-4.6.0-2]. Appends of a later batch are issued after those
 * of an earlier one, so per-client order is kept in the log.
 */
export class IngressPipeline {
  readonly #onCompletionError: (err: unknown) => void;
  pending = 0;
  readonly #broker: Broker;
  readonly #onTopic: (logTopic: string) => void;
  readonly #onIdle: () => void;
  #batch: IngressItem[] = [];
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  /** Batches produced whose completions have not run yet. */
  #batches = 0;

  /** `onCompletionError`: a completion (`done`) threw; logged and counted by the caller, the next completions still run. */
  constructor(broker: Broker, onTopic: (logTopic: string) => void, onIdle: () => void, onCompletionError: (err: unknown) => void) {
    this.#onCompletionError = onCompletionError;
    this.#broker = broker;
    this.#onTopic = onTopic;
    this.#onIdle = onIdle;
  }

  push(item: IngressItem): void {
    this.#batch.push(item);
    this.pending++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#flush);
    }
  }

  /** Resolves once everything pushed so far has completed. */
  drained(): Promise<void> {
    this.#flush();
    return this.#chain;
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const items = this.#batch;
    if (items.length === 0) return;
    this.#batch = [];
    const first = items[0]!.logTopic;
    let single = true;
    for (let i = 1; i < items.length; i++) {
      if (items[i]!.logTopic !== first) {
        single = false;
        break;
      }
    }
    let settled: Promise<unknown>;
    if (single) {
      // The common case (a client publishing under one first level): no Map, one produce.
      this.#onTopic(first);
      const records = new Array<ProduceRecord>(items.length);
      for (let i = 0; i < items.length; i++) records[i] = items[i]!.record;
      settled = this.#broker.produce(first, records, ACKS_1).then(undefined, (err: unknown) => {
        for (const i of items) i.error = err;
      });
    } else {
      const groups = new Map<string, IngressItem[]>();
      for (const item of items) {
        let g = groups.get(item.logTopic);
        if (!g) groups.set(item.logTopic, (g = []));
        g.push(item);
      }
      const work: Promise<unknown>[] = [];
      for (const [logTopic, group] of groups) {
        this.#onTopic(logTopic);
        const records = group.map((i) => i.record);
        work.push(
          this.#broker.produce(logTopic, records, ACKS_1).then(undefined, (err: unknown) => {
            for (const i of group) i.error = err;
          }),
        );
      }
      settled = Promise.all(work);
    }
    const complete = (): void => {
      for (const item of items) {
        try {
          item.done(item.error ?? null);
        } catch (err) {
          this.#onCompletionError(err); // and go on: a completion must not break the chain of the next ones
        }
      }
      this.#batches--;
      this.pending -= items.length;
      if (this.pending === 0) this.#onIdle();
    };
    // Completions run in arrival order: behind the previous batch's, unless none is pending.
    this.#chain = this.#batches++ === 0 ? settled.then(complete) : this.#chain.then(() => settled).then(complete);
  };
}

const ACKS_1 = { acks: 1, source: "mqtt" } as const;
