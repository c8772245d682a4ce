/**
 * A global table: the last value per key of a (compacted) topic, every partition, kept in
 * memory by every instance. `ready` resolves once it holds every record that was in the
 * topic when `start()` was called; later records are applied as they arrive.
 */
import type { Message, Subscription, TributaryClient } from "@tributary/client";
import type { NodeAdmin } from "./node-admin.ts";
import { StreamsError } from "./errors.ts";

export class GlobalTableState {
  readonly topic: string;
  readonly #values = new Map<string, unknown>();
  #subscription: Subscription<unknown> | undefined;

  constructor(topic: string) {
    this.topic = topic;
  }

  get size(): number {
    return this.#values.size;
  }

  get(key: string): unknown {
    return this.#values.get(key);
  }

  /** Subscribes from the earliest offset; resolves when it caught up with the end offsets read now. */
  async start(client: TributaryClient, admin: NodeAdmin): Promise<void> {
    const info = await admin.describeTopic(this.topic);
    if (!info) throw new StreamsError("TOPIC_MISMATCH", `table topic "${this.topic}" does not exist`, { topic: this.topic });
    const pending = new Map<number, number>();
    for (const p of info.partitionInfo) if (p.endOffset > p.earliestOffset) pending.set(p.partition, p.endOffset);
    let caughtUp: () => void = () => {};
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    if (pending.size === 0) caughtUp();
    this.#subscription = client.subscribe(
      this.topic,
      (message: Message<unknown>) => {
        if (message.key !== null) {
          if (message.value === null) this.#values.delete(message.key);
          else this.#values.set(message.key, message.value);
        }
        const end = pending.get(message.partition);
        if (end !== undefined && message.offset + 1 >= end) {
          pending.delete(message.partition);
          if (pending.size === 0) caughtUp();
        }
      },
      { from: "earliest", reset: "earliest", presence: false, codec: "json" },
    );
    await ready;
  }

  async close(): Promise<void> {
    await this.#subscription?.unsubscribe();
  }
}
