import type { Broker, ProduceRecord } from "../../broker/broker.ts";

export interface IngressItem {
  logTopic: string;
  record: ProduceRecord;
  /** Called in arrival order once the record is in the log (err null) or failed. */
  done: (err: unknown) => void;
}

/**
 * The publish path of one connection. PUBLISH packets that arrive in the same tick are
 * produced together (one `Broker.produce` per log topic, hence one append per partition),
 * and completions run strictly in arrival order, so PUBACK/PUBREC go out in the order the
 * PUBLISH packets came in [MQTT-4.6.0-2]. Appends of a later batch are issued after those
 * of an earlier one, so per-client order is kept in the log.
 */
export class IngressPipeline {
  pending = 0;
  readonly #broker: Broker;
  readonly #onTopic: (logTopic: string) => void;
  readonly #onIdle: () => void;
  #batch: IngressItem[] = [];
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();

  constructor(broker: Broker, onTopic: (logTopic: string) => void, onIdle: () => void) {
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
    const groups = new Map<string, IngressItem[]>();
    for (const item of items) {
      let g = groups.get(item.logTopic);
      if (!g) groups.set(item.logTopic, (g = []));
      g.push(item);
    }
    const failures = new Map<IngressItem, unknown>();
    const work: Promise<void>[] = [];
    for (const [logTopic, group] of groups) {
      this.#onTopic(logTopic);
      const records = group.map((i) => i.record);
      work.push(
        this.#broker.produce(logTopic, records, { acks: 1 }).then(
          () => undefined,
          (err: unknown) => {
            for (const i of group) failures.set(i, err);
          },
        ),
      );
    }
    const settled: Promise<unknown> = work.length === 1 ? work[0]! : Promise.all(work);
    this.#chain = this.#chain
      .then(() => settled)
      .then(() => {
        for (const item of items) {
          try {
            item.done(failures.get(item) ?? null);
          } catch {
            // a completion must not break the chain of the next ones
          }
        }
        this.pending -= items.length;
        if (this.pending === 0) this.#onIdle();
      });
  };
}
