import type { Broker } from "../../../broker/broker.ts";
import type { LogRecord, Tail } from "../../../log/log-engine.ts";
import type { Logger } from "../../../logger.ts";
import { toOutgoing, type OutgoingMessage } from "../record-mapping.ts";
import type { PartitionCursor } from "./partition-cursor.ts";

/**
 * One live tail per (log topic, partition) for the whole gateway: each record is read
 * and decoded once, then offered to every live cursor of that partition. Started at the
 * partition's end offset when its first cursor attaches, closed with its last one.
 */
export class PartitionFanout {
  readonly logTopic: string;
  readonly partition: number;
  readonly level: string;
  readonly cursors = new Set<PartitionCursor>();
  /** Offset after the last record dispatched; -1 until the tail started. */
  position = -1;
  #tail: Tail | null = null;
  #closed = false;
  readonly #broker: Broker;
  readonly #log: Logger;

  constructor(broker: Broker, log: Logger, logTopic: string, partition: number, level: string) {
    this.#broker = broker;
    this.#log = log;
    this.logTopic = logTopic;
    this.partition = partition;
    this.level = level;
    void this.#start();
  }

  async #start(): Promise<void> {
    let from: number;
    try {
      from = (await this.#broker.engine.offsets(this.logTopic, this.partition)).endOffset;
    } catch (err) {
      this.#log.warn("mqtt.fanout.start_failed", { topic: this.logTopic, partition: this.partition, error: String(err) });
      if (!this.#closed) setTimeout(() => void this.#start(), 1000).unref();
      return;
    }
    if (this.#closed) return;
    this.position = from;
    this.#tail = this.#broker.tail(this.logTopic, this.partition, from, {
      onRecords: (records) => this.#dispatch(records),
      onError: (err) => {
        this.#log.warn("mqtt.fanout.tail_failed", { topic: this.logTopic, partition: this.partition, error: String(err) });
        this.#tail = null;
        if (!this.#closed) setTimeout(() => void this.#start(), 500).unref();
      },
    });
  }

  #dispatch(records: LogRecord[]): void {
    if (records.length === 0) return;
    const msgs: OutgoingMessage[] = new Array(records.length);
    for (let i = 0; i < records.length; i++) msgs[i] = toOutgoing(this.logTopic, this.level, records[i]!);
    this.position = records[records.length - 1]!.offset + 1;
    for (const cursor of this.cursors) {
      try {
        cursor.onLive(msgs);
      } catch (err) {
        // one consumer's failure must not stop the partition for the others
        this.#log.error("mqtt.fanout.deliver_failed", { topic: this.logTopic, partition: this.partition, error: String(err) });
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#tail?.close();
    this.#tail = null;
  }
}

export class FanoutRegistry {
  readonly #fanouts = new Map<string, PartitionFanout>();
  readonly #broker: Broker;
  readonly #log: Logger;

  constructor(broker: Broker, log: Logger) {
    this.#broker = broker;
    this.#log = log;
  }

  attach(cursor: PartitionCursor): PartitionFanout {
    const key = `${cursor.logTopic}\u0000${cursor.partition}`;
    let fanout = this.#fanouts.get(key);
    if (!fanout) {
      fanout = new PartitionFanout(this.#broker, this.#log, cursor.logTopic, cursor.partition, cursor.level);
      this.#fanouts.set(key, fanout);
    }
    fanout.cursors.add(cursor);
    return fanout;
  }

  detach(cursor: PartitionCursor, fanout: PartitionFanout): void {
    fanout.cursors.delete(cursor);
    if (fanout.cursors.size === 0) {
      fanout.close();
      this.#fanouts.delete(`${cursor.logTopic}\u0000${cursor.partition}`);
    }
  }

  closeAll(): void {
    for (const fanout of this.#fanouts.values()) fanout.close();
    this.#fanouts.clear();
  }
}
