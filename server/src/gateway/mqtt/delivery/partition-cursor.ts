import { isTributaryError } from "../../../errors.ts";
import type { Broker } from "../../../broker/broker.ts";
import type { Logger } from "../../../logger.ts";
import { toOutgoing, type OutgoingMessage } from "../record-mapping.ts";
import type { FanoutRegistry, PartitionFanout } from "./fanout.ts";

/** Whoever consumes a cursor: an MQTT session or a shared-subscription group. */
export interface DeliveryTarget {
  /**
   * Offers the next record of the cursor's partition. `true` = taken or not wanted (the
   * cursor moves past it); `false` = cannot take it now (in-flight window or socket
   * buffer full): the cursor pauses AT this record and reads it again from the log
   * after `resume()`.
   */
  offer(msg: OutgoingMessage, cursor: PartitionCursor): boolean;
  /** A position worth persisting changed. */
  positionChanged(cursor: PartitionCursor): void;
}

type Mode = "idle" | "catchup" | "live" | "paused" | "closed";

/** Live records a paused cursor keeps in memory before it falls back to reading the log. */
const BACKLOG_MAX = 1024;

/**
 * One consumer's position in one partition. Live records come from the shared
 * PartitionFanout; a cursor behind the fanout (resuming, paused by flow control, or after
 * a gap) reads the log itself until it reaches the fanout, then rejoins it. The log is the
 * queue: nothing is buffered per consumer.
 *
 * `next` = the next offset to offer; `committed()` = the lowest offset not yet
 * acknowledged (what a persistent session resumes from).
 */
export class PartitionCursor {
  readonly logTopic: string;
  readonly partition: number;
  readonly level: string;
  next: number;
  lastCommitted = -1;
  readonly #target: DeliveryTarget;
  readonly #broker: Broker;
  readonly #registry: FanoutRegistry;
  readonly #log: Logger;
  #fanout: PartitionFanout | null = null;
  #mode: Mode = "idle";
  #generation = 0;
  /** Offsets handed out and not yet acknowledged, in offset (= insertion) order. */
  readonly #unacked = new Set<number>();
  /**
   * While paused: live records from `next` on, kept (up to BACKLOG_MAX) so that a short
   * stall does not cost a read from the log. `#overflow` = records were dropped from it,
   * so resuming must read the log.
   */
  #backlog: OutgoingMessage[] = [];
  /** Index of the first backlog entry not yet delivered. */
  #head = 0;
  #overflow = false;

  constructor(opts: { target: DeliveryTarget; broker: Broker; registry: FanoutRegistry; log: Logger; logTopic: string; partition: number; level: string; next: number }) {
    this.#target = opts.target;
    this.#broker = opts.broker;
    this.#registry = opts.registry;
    this.#log = opts.log;
    this.logTopic = opts.logTopic;
    this.partition = opts.partition;
    this.level = opts.level;
    this.next = opts.next;
  }

  get mode(): Mode {
    return this.#mode;
  }

  /** Starts (or restarts) delivery from `next`. */
  start(): void {
    if (this.#mode === "closed") return;
    if (!this.#fanout) this.#fanout = this.#registry.attach(this);
    if (this.#mode === "idle" || this.#mode === "paused") void this.#catchUp();
  }

  /** Stops delivery (session offline); position kept. */
  stop(): void {
    if (this.#mode === "closed") return;
    this.#mode = "idle";
    this.#backlog = [];
    this.#head = 0;
    this.#overflow = false;
    this.#generation++;
    if (this.#fanout) this.#registry.detach(this, this.#fanout);
    this.#fanout = null;
  }

  close(): void {
    this.stop();
    this.#mode = "closed";
  }

  /** Flow control freed room: deliver the backlog, then read on from the log if needed. */
  resume(): void {
    if (this.#mode !== "paused") return;
    const backlog = this.#backlog;
    const overflow = this.#overflow;
    let i = this.#head;
    this.#mode = "live";
    while (i < backlog.length) {
      if (!this.#deliver(backlog[i]!)) {
        this.#backlog = backlog;
        this.#head = i;
        this.#overflow = overflow;
        return;
      }
      i++;
    }
    this.#backlog = [];
    this.#head = 0;
    this.#overflow = false;
    if (overflow) void this.#catchUp();
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
    return this.next;
  }

  /** Live records from the fanout (same partition, ascending, contiguous). */
  onLive(msgs: OutgoingMessage[]): void {
    if (this.#mode === "paused") {
      this.#keep(msgs, 0);
      return;
    }
    if (this.#mode !== "live") return;
    for (let i = 0; i < msgs.length; i++) {
      const msg = msgs[i]!;
      if (msg.offset < this.next) continue;
      if (msg.offset > this.next) {
        void this.#catchUp(); // we missed records: read them from the log
        return;
      }
      if (!this.#deliver(msg)) {
        this.#keep(msgs, i);
        return;
      }
    }
  }

  /** Paused: keep msgs[from..] in the backlog while they continue it and it has room. */
  #keep(msgs: OutgoingMessage[], from: number): void {
    if (this.#overflow) return;
    let backlog = this.#backlog;
    if (this.#head > 256) {
      backlog = this.#backlog = backlog.slice(this.#head);
      this.#head = 0;
    }
    for (let i = from; i < msgs.length; i++) {
      const msg = msgs[i]!;
      const pending = backlog.length - this.#head;
      const expected = this.next + pending;
      if (msg.offset < expected) continue;
      if (msg.offset > expected || pending >= BACKLOG_MAX) {
        this.#overflow = true;
        return;
      }
      backlog.push(msg);
    }
  }

  #deliver(msg: OutgoingMessage): boolean {
    if (!this.#target.offer(msg, this)) {
      if (this.#mode !== "paused") {
        this.#mode = "paused";
        this.#generation++;
        this.#backlog = [];
        this.#head = 0;
        this.#overflow = false;
      }
      return false;
    }
    this.next = msg.offset + 1;
    if (this.#unacked.size === 0) this.#target.positionChanged(this);
    return true;
  }

  #catchUp(): Promise<void> {
    return this.#catchUpLoop().catch((err: unknown) => {
      this.#log.error("mqtt.cursor.catchup_failed", { topic: this.logTopic, partition: this.partition, offset: this.next, error: String(err) });
      if (this.#mode === "catchup") {
        this.#mode = "paused";
        this.#overflow = true;
        setTimeout(() => this.resume(), 1000).unref(); // try again (also on the next resume)
      }
    });
  }

  async #catchUpLoop(): Promise<void> {
    const generation = ++this.#generation;
    this.#mode = "catchup";
    let failures = 0;
    while (this.#generation === generation) {
      let records;
      try {
        records = await this.#broker.engine.read(this.logTopic, this.partition, this.next, { maxRecords: 500, maxBytes: 1 << 20 });
        failures = 0;
      } catch (err) {
        if (this.#generation !== generation) return;
        if (isTributaryError(err, "OFFSET_OUT_OF_RANGE")) {
          try {
            const info = await this.#broker.engine.offsets(this.logTopic, this.partition);
            if (this.#generation !== generation) return;
            this.next = this.next < info.earliestOffset ? info.earliestOffset : Math.min(this.next, info.endOffset);
            continue;
          } catch {
            // fall through to the retry below
          }
        }
        if (++failures === 1) this.#log.warn("mqtt.cursor.read_failed", { topic: this.logTopic, partition: this.partition, offset: this.next, error: String(err) });
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * failures)));
        continue;
      }
      if (this.#generation !== generation) return;
      if (records.length === 0) {
        if ((this.#fanout?.position ?? -1) > this.next) continue;
        this.#mode = "live";
        return;
      }
      for (const record of records) {
        if (record.offset < this.next) continue;
        if (!this.#deliver(toOutgoing(this.logTopic, this.level, record))) {
          this.#overflow = true; // the rest of this read is not kept: read it again on resume
          return;
        }
        if (this.#generation !== generation) return;
      }
    }
  }
}
