import type { BatchView, DeliveryBatch } from "../../../broker/delivery/delivery-batch.ts";
import { DeliveryCursor, type CursorReset, type DeliveryConsumer, type DeliveryEnv } from "../../../broker/delivery/delivery-cursor.ts";
import type { TributaryError } from "../../../errors.ts";
import { levelFor, toOutgoing, type OutgoingMessage } from "../record-mapping.ts";

/** Whoever consumes an MQTT cursor: a session, a shared-subscription group, or a `$share` group member. */
export interface DeliveryTarget {
  /**
   * Offers the next record of the cursor's partition. `true` = taken or not wanted (the
   * cursor moves past it); `false` = cannot take it now (in-flight window or socket budget
   * full): the cursor stops AT this record, stops reading the log, and offers it again
   * (read from the log) after the target calls `resume()`.
   */
  offer(msg: OutgoingMessage, cursor: MqttCursor): boolean;
  /** A position worth persisting changed. */
  positionChanged(cursor: MqttCursor): void;
  /** Delivery of the cursor's partition ended (e.g. UNKNOWN_TOPIC: the topic was deleted). */
  cursorFailed?(cursor: MqttCursor, err: TributaryError): void;
}

/** A batch as MQTT messages: each record decoded once per batch, shared by every session of the partition. */
const MQTT_MESSAGES: BatchView<OutgoingMessage[]> = {
  make(batch: DeliveryBatch) {
    const level = levelFor(batch.topic) ?? batch.topic;
    return batch.records.map((r) => toOutgoing(batch.topic, level, r));
  },
};

/**
 * One MQTT consumer's position in one partition, delivered by the broker's DeliveryCursor
 * (catch-up from the log, then the partition's shared live feed; the log is the queue:
 * nothing is buffered per consumer, a blocked target stops the cursor reading).
 *
 * Positions are (epoch, offset): `next` = the next offset to offer, `committed()` = the
 * lowest offset not yet acknowledged (what a persistent session or a group resumes from),
 * both in `epoch`. MQTT's reset policy is `earliest`: a position below the earliest offset
 * continues there, and a changed history (topic deleted and re-created, a lost Redis tail)
 * continues from the earliest offset of the new epoch; in-flight offsets of the old epoch
 * no longer hold the position back.
 */
export class MqttCursor implements DeliveryConsumer {
  readonly logTopic: string;
  readonly partition: number;
  readonly level: string;
  readonly resetPolicy = "earliest" as const;
  /** Last position written to the session store / group (by the owner). */
  lastCommitted = -1;
  lastCommittedEpoch: string | null = null;
  readonly #target: DeliveryTarget;
  readonly #delivery: DeliveryCursor;
  #next: number;
  /** `next` is the partition's end offset (the first start may create the shared feed at once). */
  #atEnd: boolean;
  #running = false;
  #closed = false;
  /** Offsets handed out and not yet acknowledged, in offset (= insertion) order. */
  readonly #unacked = new Set<number>();
  #waiters: (() => void)[] = [];

  constructor(opts: { target: DeliveryTarget; env: DeliveryEnv; logTopic: string; partition: number; level: string; epoch: string; next: number; atEnd: boolean }) {
    this.#target = opts.target;
    this.logTopic = opts.logTopic;
    this.partition = opts.partition;
    this.level = opts.level;
    this.#next = opts.next;
    this.#atEnd = opts.atEnd;
    this.#delivery = new DeliveryCursor(opts.env, this, opts.logTopic, opts.partition, opts.epoch, opts.next);
  }

  get next(): number {
    return this.#next;
  }

  get epoch(): string {
    return this.#delivery.epoch;
  }

  get mode(): "feed" | "tail" | "waiting" | "stopped" {
    return this.#delivery.mode;
  }

  get active(): boolean {
    return this.#running && !this.#closed;
  }

  /** Starts (or restarts) delivery from `next`. */
  start(): void {
    if (this.#closed || this.#running) return;
    this.#running = true;
    this.#delivery.start(this.#atEnd);
    this.#atEnd = false;
  }

  /** Stops delivery (session offline); position kept. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#delivery.stop();
    this.#wake();
  }

  close(): void {
    this.stop();
    this.#closed = true;
    this.#delivery.close();
  }

  /** The target has room again: a cursor waiting for it offers on. */
  resume(): void {
    this.#wake();
  }

  /** Records the offset as handed out and awaiting acknowledgement (QoS ≥ 1). */
  track(offset: number): void {
    this.#unacked.add(offset);
  }

  ack(offset: number): void {
    if (!this.#unacked.delete(offset)) return;
    this.#target.positionChanged(this);
  }

  /** The lowest offset handed out and not acknowledged, else `next`: where a restarted session resumes. */
  committed(): number {
    for (const o of this.#unacked) return o;
    return this.#next;
  }

  // ---- DeliveryConsumer ------------------------------------------------------------------

  take(_cursor: DeliveryCursor, batch: DeliveryBatch, from: number): number {
    const msgs = batch.view(MQTT_MESSAGES);
    let i = from;
    for (; i < msgs.length && this.#running; i++) {
      const msg = msgs[i]!;
      if (!this.#target.offer(msg, this)) break;
      this.#next = msg.offset + 1;
    }
    if (i > from && this.#unacked.size === 0) this.#target.positionChanged(this);
    return i - from;
  }

  whenReady(): Promise<void> {
    if (!this.active) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  resetTo(_cursor: DeliveryCursor, r: CursorReset): void {
    if (r.epoch !== r.previousEpoch) this.#unacked.clear();
    this.#next = r.offset;
    this.#target.positionChanged(this);
  }

  failed(_cursor: DeliveryCursor, err: TributaryError): void {
    this.#running = false;
    this.#wake();
    this.#target.cursorFailed?.(this, err);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
