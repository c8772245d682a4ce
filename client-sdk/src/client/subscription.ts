/**
 * One subscription: the client-side cursor of a topic (or filter) tail.
 *
 * Guarantees to the application, per partition: messages in offset order, none twice,
 * none skipped across reconnects (the SDK resumes at the next offset it has not received,
 * with the partition's epoch, and drops anything at or below what it already received).
 * Offsets only move past data without delivering it through a `reset` (the position was
 * gone or stale), which is reported as `offsetOutOfRange`.
 *
 * Flow control: the server may send `window` messages ahead; the SDK grants more credit
 * as the application consumes them (in batches of half the window), so a slow handler or
 * a slow `for await` loop holds the server back instead of filling memory.
 */
import type { MessageFrame, ResetFrame, ResetPolicy, StartPosition, SubscribeFrame, SubscribedFrame } from "../protocol/index.ts";
import { Emitter } from "./emitter.ts";
import { TributaryClientError } from "./errors.ts";
import type { Message, Position, SubscribeOptions, SubscriptionEvents } from "./types.ts";
import { bytesToString, type ValueCodec } from "./value-codec.ts";

export type MessageHandler<T = unknown> = (message: Message<T>) => void | Promise<void>;

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  sendCredit(sub: number, credit: number): void;
  removeSubscription(subscription: Subscription<any>): Promise<void>;
  reportError(err: TributaryClientError): void;
  reportReset(subscription: Subscription<any>, frame: ResetFrame, reset: ResetPolicy): void;
}

const EMPTY_HEADERS: Record<string, Uint8Array> = Object.freeze({}) as Record<string, Uint8Array>;

export class Subscription<T = unknown> extends Emitter<SubscriptionEvents> implements AsyncIterable<Message<T>> {
  /** Id of the subscription on the wire (unique per client). */
  readonly id: number;
  /** The topic or filter subscribed to. */
  readonly topic: string;
  readonly reset: ResetPolicy;
  readonly #from: StartPosition;
  readonly #requestedCredit: number | undefined;
  readonly #codec: ValueCodec<T>;
  readonly #handler: MessageHandler<T> | undefined;
  readonly #host: SubscriptionHost;

  /** Per partition: next offset to accept from the server. */
  readonly #received = new Map<number, number>();
  /** Per partition: next offset to hand to the application. */
  readonly #delivered = new Map<number, number>();
  readonly #epochs = new Map<number, string>();

  #window = 0;
  #consumedSinceGrant = 0;
  readonly #buffer: Message<T>[] = [];
  #pumping = false;
  #waiter: ((result: IteratorResult<Message<T>>) => void) | undefined;
  #waiterReject: ((err: unknown) => void) | undefined;
  #closed = false;
  #failure: TributaryClientError | undefined;

  constructor(id: number, topic: string, options: SubscribeOptions, codec: ValueCodec<T>, handler: MessageHandler<T> | undefined, host: SubscriptionHost) {
    super();
    this.id = id;
    this.topic = topic;
    this.reset = options.reset ?? "latest";
    this.#from = options.from ?? "latest";
    this.#requestedCredit = options.credit;
    this.#codec = codec;
    this.#handler = handler;
    this.#host = host;
    if (options.from && typeof options.from === "object" && "offsets" in options.from) {
      for (const [partition, offset] of Object.entries(options.from.offsets)) {
        this.#received.set(Number(partition), offset);
        this.#delivered.set(Number(partition), offset);
      }
      for (const [partition, epoch] of Object.entries(options.from.epochs ?? {})) this.#epochs.set(Number(partition), epoch);
    }
  }

  /** True once unsubscribed, failed, or the client closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Messages received and not yet handed to the application. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /**
   * Per partition, the offset of the next message this subscription will hand to the
   * application, and the partition epoch. Feed it back as `from: { offsets, epochs }`.
   */
  position(): Position {
    const out: Position = {};
    for (const [partition, offset] of this.#delivered) out[partition] = { offset, epoch: this.#epochs.get(partition) ?? "" };
    return out;
  }

  /** Stops the subscription; buffered messages are dropped and `for await` loops end. */
  unsubscribe(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#close(undefined);
    return this.#host.removeSubscription(this);
  }

  // ---- used by the client --------------------------------------------------------------

  /** The subscribe frame for this (re)connection: resumes where the last one stopped. */
  subscribeFrame(requestId: number, defaultCredit: number): SubscribeFrame {
    this.#window = Math.max(1, this.#requestedCredit ?? defaultCredit);
    this.#consumedSinceGrant = 0;
    const frame: SubscribeFrame = {
      op: "subscribe",
      id: requestId,
      sub: this.id,
      topic: this.topic,
      from: this.#resumeFrom(),
      reset: this.reset,
      credit: Math.max(1, this.#window - this.#buffer.length),
    };
    return frame;
  }

  #resumeFrom(): StartPosition {
    if (this.#received.size === 0) return this.#from;
    const offsets: Record<number, number> = {};
    const epochs: Record<number, string> = {};
    for (const [partition, offset] of this.#received) {
      offsets[partition] = offset;
      const epoch = this.#epochs.get(partition);
      if (epoch !== undefined) epochs[partition] = epoch;
    }
    return { offsets, epochs };
  }

  onSubscribed(frame: SubscribedFrame): void {
    for (const { partition, offset, epoch } of frame.partitions) {
      if (!this.#received.has(partition)) this.#received.set(partition, offset);
      if (!this.#delivered.has(partition)) this.#delivered.set(partition, offset);
      this.#epochs.set(partition, epoch);
    }
    this.emit("subscribed", { topic: frame.topic, partitions: frame.partitions });
  }

  onReset(frame: ResetFrame): void {
    this.#received.set(frame.partition, frame.offset);
    if (!this.#buffer.some((m) => m.partition === frame.partition)) this.#delivered.set(frame.partition, frame.offset);
    this.#epochs.set(frame.partition, frame.epoch);
    const event = { topic: this.topic, partition: frame.partition, reason: frame.reason, requested: frame.requested, offset: frame.offset, epoch: frame.epoch, reset: this.reset };
    this.emit("offsetOutOfRange", event);
    this.#host.reportReset(this, frame, this.reset);
  }

  /** A message frame for this subscription: dropped if already received, else queued for the app. */
  onMessage(frame: MessageFrame): void {
    if (this.#closed) return;
    const next = this.#received.get(frame.partition);
    if (next !== undefined && frame.offset < next) return; // duplicate (defence in depth)
    this.#received.set(frame.partition, frame.offset + 1);
    this.#buffer.push(this.#toMessage(frame));
    this.#pump();
  }

  /** The subscription failed for good (server error, reset "error"). */
  fail(err: TributaryClientError): void {
    if (this.#closed) return;
    this.#close(err);
    this.emit("error", err);
  }

  /** The client closed. */
  end(): void {
    if (!this.#closed) this.#close(undefined);
  }

  // ---- delivery --------------------------------------------------------------------------

  #toMessage(frame: MessageFrame): Message<T> {
    let value: T;
    if (frame.value === null || frame.value === undefined) {
      value = null as T;
    } else {
      try {
        value = this.#codec.decode(frame.value);
      } catch (cause) {
        value = frame.value as T;
        this.#host.reportError(
          new TributaryClientError("MALFORMED_FRAME", `value at ${frame.topic}/${frame.partition}@${frame.offset} is not valid ${this.#codec.name}; delivered as bytes`, { topic: frame.topic, partition: frame.partition, offset: frame.offset }, { cause }),
        );
      }
    }
    const keyBytes = frame.key ?? null;
    return {
      topic: frame.topic,
      partition: frame.partition,
      offset: frame.offset,
      timestamp: frame.timestamp,
      key: keyBytes ? bytesToString(keyBytes) : null,
      keyBytes,
      value,
      bytes: frame.value ?? null,
      headers: frame.headers ?? EMPTY_HEADERS,
    };
  }

  /** Marks `message` handed to the application and grants credit back in half-window batches. */
  #consumed(message: Message<T>): void {
    this.#delivered.set(message.partition, message.offset + 1);
    this.#consumedSinceGrant++;
    if (this.#consumedSinceGrant >= Math.max(1, Math.ceil(this.#window / 2))) {
      const credit = this.#consumedSinceGrant;
      this.#consumedSinceGrant = 0;
      if (!this.#closed) this.#host.sendCredit(this.id, credit);
    }
  }

  #pump(): void {
    if (this.#handler) {
      if (!this.#pumping) void this.#runHandler();
      return;
    }
    if (this.#waiter && this.#buffer.length > 0) {
      const resolve = this.#waiter;
      this.#waiter = this.#waiterReject = undefined;
      const message = this.#buffer.shift()!;
      this.#consumed(message);
      resolve({ value: message, done: false });
    }
  }

  async #runHandler(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#buffer.length > 0 && !this.#closed) {
        const message = this.#buffer.shift()!;
        try {
          const result = this.#handler!(message);
          if (result && typeof (result as Promise<void>).then === "function") await result;
        } catch (cause) {
          this.#host.reportError(new TributaryClientError("INTERNAL", `subscription handler for "${this.topic}" threw: ${String((cause as Error)?.message ?? cause)}`, { topic: this.topic, partition: message.partition, offset: message.offset }, { cause }));
        }
        this.#consumed(message);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #close(err: TributaryClientError | undefined): void {
    this.#closed = true;
    this.#failure = err;
    this.#buffer.length = 0;
    const resolve = this.#waiter;
    const reject = this.#waiterReject;
    this.#waiter = this.#waiterReject = undefined;
    if (err && reject) reject(err);
    else resolve?.({ value: undefined, done: true });
  }

  /** Iterates messages as they arrive; the loop's pace is the flow-control pace. */
  [Symbol.asyncIterator](): AsyncIterator<Message<T>> {
    if (this.#handler) throw new TypeError("this subscription has a handler; subscribe without one to iterate");
    return {
      next: () => {
        if (this.#buffer.length > 0) {
          const message = this.#buffer.shift()!;
          this.#consumed(message);
          return Promise.resolve({ value: message, done: false });
        }
        if (this.#closed) return this.#failure ? Promise.reject(this.#failure) : Promise.resolve({ value: undefined, done: true });
        if (this.#waiter) return Promise.reject(new TypeError("next() called again before the previous call settled"));
        return new Promise<IteratorResult<Message<T>>>((resolve, reject) => {
          this.#waiter = resolve;
          this.#waiterReject = reject;
        });
      },
      return: async () => {
        await this.unsubscribe();
        return { value: undefined, done: true };
      },
    };
  }
}
