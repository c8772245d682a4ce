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
import type { AssignFrame, ClientFrame, JoinedFrame, MessageFrame, ResetFrame, ResetPolicy, RevokeFrame, ServerFrame, StartPosition, SubscribeFrame, SubscribedFrame } from "../protocol/index.ts";
import { Emitter } from "./emitter.ts";
import { TributaryClientError } from "./errors.ts";
import { GroupMember, type GroupPartitionControl } from "./group-member.ts";
import type { Message, Position, SubscribeOptions, SubscriptionEvents } from "./types.ts";
import { contentTypeOfFrame, ReceivedMessage } from "./message.ts";
import type { ValueCodec } from "./value-codec.ts";
import { Fifo } from "./fifo.ts";

export type MessageHandler<T = unknown> = (message: Message<T>) => void | Promise<void>;

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  sendCredit(sub: number, credit: number): void;
  removeSubscription(subscription: Subscription<any>): Promise<void>;
  reportError(err: TributaryClientError): void;
  reportReset(subscription: Subscription<any>, frame: ResetFrame, reset: ResetPolicy): void;
  /** Sends a frame on the current connection; false when not connected. */
  send(frame: ClientFrame): boolean;
  /** Sends a request (fresh id) and resolves with its reply; rejects on `error`. */
  request(frame: ClientFrame): Promise<ServerFrame>;
  /** Sends this subscription's `subscribe` again (a group member that must join anew). */
  resubscribe(subscription: Subscription<any>): void;
}

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
  readonly #buffer = new Fifo<Message<T>>();
  #pumping = false;
  #waiter: ((result: IteratorResult<Message<T>>) => void) | undefined;
  #waiterReject: ((err: unknown) => void) | undefined;
  #closed = false;
  #failure: TributaryClientError | undefined;
  /** The message the handler is processing now (group revokes wait for it). */
  #current: Message<T> | undefined;
  #idleWaiters: (() => void)[] = [];
  readonly #presence: boolean;
  /** Consumer-group membership (subscribe with `group`); undefined for a plain subscription. */
  readonly group: GroupMember | undefined;

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
    this.#presence = options.presence ?? true;
    if (options.group !== undefined) {
      const control: GroupPartitionControl = {
        start: (partition, offset, epoch) => {
          this.#received.set(partition, offset);
          this.#delivered.set(partition, offset);
          this.#epochs.set(partition, epoch);
        },
        drop: (partitions) => this.#dropPartitions(partitions),
        whenIdle: (partitions) => this.#whenIdle(partitions),
        processed: (partition) => this.#delivered.get(partition),
        epoch: (partition) => this.#epochs.get(partition),
        emit: (event, payload) => this.emit(event, payload),
      };
      this.group = new GroupMember(this, options, control, host);
    }
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

  /**
   * Stops the subscription; buffered messages are dropped and `for await` loops end. A
   * group member first lets the handler finish its message, commits what was processed
   * (with `autoCommit`), then leaves the group (its partitions move at once).
   */
  async unsubscribe(): Promise<void> {
    if (this.#closed) return;
    this.#close(undefined);
    if (this.group) await this.group.beforeLeave();
    return this.#host.removeSubscription(this);
  }

  /**
   * Group subscriptions: commits the processed position (next offset) of every owned
   * partition that moved since the last commit. Rejects with UNKNOWN_MEMBER,
   * ILLEGAL_GENERATION or PARTITION_NOT_OWNED when fenced (the records will be
   * re-delivered to the partition's next owner), UNAVAILABLE when disconnected.
   *
   * `offsets` (partition → next offset) commits those positions instead, for an application
   * that finishes records after its handler returned them (Kafka's `commitSync(offsets)`):
   * owned partitions, and partitions being revoked (from an `onRevoke`); others are ignored.
   */
  commit(offsets?: Record<number, number>): Promise<void> {
    if (!this.group) return Promise.reject(new TributaryClientError("BAD_REQUEST", "commit() needs a group subscription (subscribe with { group })", { topic: this.topic }));
    return this.group.commit(offsets);
  }

  // ---- used by the client --------------------------------------------------------------

  /** The subscribe frame for this (re)connection: resumes where the last one stopped. */
  subscribeFrame(requestId: number, defaultCredit: number): SubscribeFrame {
    this.#window = Math.max(1, this.#requestedCredit ?? defaultCredit);
    this.#consumedSinceGrant = 0;
    if (this.group) {
      // A member re-joins: what was buffered comes again from the (re)assignment.
      this.#dropPartitions([...this.#received.keys()], false);
      return { op: "subscribe", id: requestId, sub: this.id, topic: this.topic, reset: this.reset === "earliest" ? "earliest" : "latest", credit: this.#window, ...this.group.joinFields(), ...(this.#presence ? { presence: true } : {}) };
    }
    const frame: SubscribeFrame = {
      op: "subscribe",
      id: requestId,
      sub: this.id,
      topic: this.topic,
      from: this.#resumeFrom(),
      reset: this.reset,
      credit: Math.max(1, this.#window - this.#buffer.length),
    };
    if (this.#presence) frame.presence = true;
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

  onJoined(frame: JoinedFrame): void {
    this.group?.onJoined(frame);
  }

  onAssign(frame: AssignFrame): void {
    this.group?.onAssign(frame);
  }

  onRevoke(frame: RevokeFrame): void {
    this.group?.onRevoke(frame);
  }

  /** A message frame for this subscription: dropped if already received, else queued for the app. */
  onMessage(frame: MessageFrame): void {
    if (this.#closed) return;
    const next = this.#received.get(frame.partition);
    if ((next !== undefined && frame.offset < next) || (this.group && !this.group.owns(frame.partition))) {
      // A duplicate (a re-bound member skips what it already processed), or a partition no longer ours.
      this.#returnCredit(1);
      return;
    }
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
    const contentType = contentTypeOfFrame(frame);
    let value: T;
    if (frame.value === null || frame.value === undefined) {
      value = null as T;
    } else {
      try {
        value = this.#codec.decode(frame.value, contentType ?? undefined);
      } catch (cause) {
        value = frame.value as T;
        const as = contentType === null ? this.#codec.name : `${contentType} (${this.#codec.name} codec)`;
        this.#host.reportError(
          new TributaryClientError("MALFORMED_FRAME", `value at ${frame.topic}/${frame.partition}@${frame.offset} is not valid ${as}; delivered as bytes`, { topic: frame.topic, partition: frame.partition, offset: frame.offset, contentType }, { cause }),
        );
      }
    }
    return new ReceivedMessage(frame, value, contentType);
  }

  /** Marks `message` handed to the application and grants credit back in half-window batches. */
  #consumed(message: Message<T>): void {
    this.#delivered.set(message.partition, message.offset + 1);
    this.#returnCredit(1);
  }

  #returnCredit(n: number): void {
    this.#consumedSinceGrant += n;
    if (this.#consumedSinceGrant >= Math.max(1, Math.ceil(this.#window / 2))) {
      const credit = this.#consumedSinceGrant;
      this.#consumedSinceGrant = 0;
      if (!this.#closed) this.#host.sendCredit(this.id, credit);
    }
  }

  /** Drops buffered messages of `partitions` (their credit goes back when `credit`); they will be received again from the processed position. */
  #dropPartitions(partitions: number[], credit = true): void {
    const gone = new Set(partitions);
    const dropped = this.#buffer.removeWhere((m) => gone.has(m.partition));
    for (const p of gone) {
      const delivered = this.#delivered.get(p);
      if (delivered !== undefined) this.#received.set(p, delivered);
    }
    if (credit && dropped > 0) this.#returnCredit(dropped);
  }

  /** Resolves when the handler is not processing a message of `partitions`. */
  async #whenIdle(partitions: number[]): Promise<void> {
    const set = new Set(partitions);
    while (this.#current !== undefined && set.has(this.#current.partition)) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
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
        this.#current = message;
        try {
          const result = this.#handler!(message);
          if (result && typeof (result as Promise<void>).then === "function") await result;
        } catch (cause) {
          this.#host.reportError(new TributaryClientError("INTERNAL", `subscription handler for "${this.topic}" threw: ${String((cause as Error)?.message ?? cause)}`, { topic: this.topic, partition: message.partition, offset: message.offset }, { cause }));
        }
        this.#consumed(message);
        this.#current = undefined;
        this.#wakeIdle();
      }
    } finally {
      this.#pumping = false;
      this.#current = undefined;
      this.#wakeIdle();
    }
  }

  #wakeIdle(): void {
    if (this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #close(err: TributaryClientError | undefined): void {
    this.#closed = true;
    this.group?.stopTimers();
    this.#failure = err;
    this.#buffer.clear();
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
