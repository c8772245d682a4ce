import { ERROR_CODES, type ErrorCode } from "../codes.ts";
import type { ClientFrame, MessagesFrame, ResetFrame, ResetPolicy } from "../protocol/index.ts";
import { errorFromFrame, TributaryClientError } from "./errors.ts";
import type { RequestChannel } from "./request-channel.ts";
import { Subscription, type MessageHandler, type SubscriptionHost } from "./subscription.ts";
import type { SubscribeOptions } from "./types.ts";
import { resolveCodec, type ValueCodec } from "./value-codec.ts";

const FALLBACK_CREDIT = 1000;

/** What the subscriptions need from their client. */
export interface SubscriptionRouterHost {
  connected(): boolean;
  /** Sends on the current connection; false when there is none. */
  send(frame: ClientFrame): boolean;
  requests: RequestChannel;
  /** Timeout of the requests subscriptions send (the client's connectTimeout). */
  requestTimeoutMs: number;
  /** Initial credit of a subscription that asks for none (the server's default, if announced). */
  defaultCredit(): number | undefined;
  reportError(err: TributaryClientError): void;
  reportReset(subscription: Subscription<any>, frame: ResetFrame, reset: ResetPolicy): void;
}

/**
 * The client's subscriptions by wire id, and the feeds of the current connection
 * (internal to `TributaryClient`): creates subscriptions, (re)sends their `subscribe`,
 * routes `messages` batches by feed or id, and fails a subscription on a fatal error frame.
 */
export class SubscriptionRouter {
  readonly #subs = new Map<number, Subscription<any>>();
  /** Feed id → the subscription its `messages` belong to on this connection (`attach` / `detach`). */
  readonly #feeds = new Map<number, Subscription<any>>();
  readonly #host: SubscriptionRouterHost;
  readonly #subscriptionHost: SubscriptionHost;
  #nextSubId = 1;

  constructor(host: SubscriptionRouterHost) {
    this.#host = host;
    this.#subscriptionHost = {
      sendCredit: (sub, credit) => {
        if (host.connected()) host.send({ op: "credit", sub, credit });
      },
      removeSubscription: (subscription) => this.#remove(subscription),
      reportError: (err) => host.reportError(err),
      reportReset: (subscription, frame, reset) => host.reportReset(subscription, frame, reset),
      send: (frame) => host.connected() && host.send(frame),
      request: (frame) =>
        host.connected() ? host.requests.request(frame, host.requestTimeoutMs) : Promise.reject(new TributaryClientError("UNAVAILABLE", "not connected")),
      resubscribe: (subscription) => {
        if (host.connected() && this.#subs.get(subscription.id) === subscription) this.#sendSubscribe(subscription);
      },
    };
  }

  subscribe<T>(topic: string, handler: MessageHandler<T> | undefined, options: SubscribeOptions, defaultCodec: ValueCodec<any>): Subscription<T> {
    const codec = options.codec === undefined ? defaultCodec : resolveCodec(options.codec);
    const sub = new Subscription<T>(this.#nextSubId++, topic, options, codec, handler, this.#subscriptionHost);
    this.#subs.set(sub.id, sub);
    if (this.#host.connected()) this.#sendSubscribe(sub);
    return sub;
  }

  get(subId: number): Subscription<any> | undefined {
    return this.#subs.get(subId);
  }

  values(): IterableIterator<Subscription<any>> {
    return this.#subs.values();
  }

  /** A new connection: feed ids are per connection. */
  clearFeeds(): void {
    this.#feeds.clear();
  }

  /** Connected: every subscription subscribes again (resuming at its position). */
  resubscribeAll(): void {
    for (const sub of this.#subs.values()) this.#sendSubscribe(sub);
  }

  /** Client closed: every subscription ends. */
  endAll(): void {
    for (const sub of this.#subs.values()) sub.end();
    this.#subs.clear();
  }

  attach(feed: number, subId: number): void {
    const sub = this.#subs.get(subId);
    if (sub) this.#feeds.set(feed, sub);
  }

  detach(feed: number, subId: number): void {
    if (this.#feeds.get(feed) === this.#subs.get(subId)) this.#feeds.delete(feed);
  }

  /** A batch of records, addressed to a feed (see `attach`) or to a subscription. */
  onMessages(frame: MessagesFrame): void {
    const sub = frame.feed !== undefined ? this.#feeds.get(frame.feed) : frame.sub !== undefined ? this.#subs.get(frame.sub) : undefined;
    if (!sub || this.#subs.get(sub.id) !== sub || !Array.isArray(frame.records)) return;
    for (const r of frame.records) {
      sub.onMessage({ op: "message", sub: sub.id, topic: frame.topic, partition: frame.partition, offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value, ...(r.headers ? { headers: r.headers } : {}) });
    }
  }

  /**
   * An `error` frame naming subscription `subId`: a removed group member joins again; a
   * fatal error ends the subscription; the error is reported. False when there is no such
   * subscription.
   */
  onError(subId: number, code: ErrorCode, message: string, id: number | undefined): boolean {
    const sub = this.#subs.get(subId);
    if (sub?.group && code === "UNKNOWN_MEMBER" && id === undefined) {
      sub.group.onRemoved(); // the session timed out: join again as a new member
      return true;
    }
    if (!sub) return false;
    const err = errorFromFrame(code, message, { topic: sub.topic });
    if (!ERROR_CODES[err.code]?.retriable || err.code === "QUEUE_FULL") {
      this.#subs.delete(subId);
      sub.fail(err);
    }
    this.#host.reportError(err);
    return true;
  }

  #sendSubscribe(sub: Subscription<any>): void {
    const host = this.#host;
    const credit = host.defaultCredit() ?? FALLBACK_CREDIT;
    const id = host.requests.nextId();
    host.send(sub.subscribeFrame(id, credit));
    host.requests.set(id, {
      resolve: () => host.requests.delete(id),
      reject: (err) => {
        host.requests.delete(id);
        if (err.code === "UNAVAILABLE" || err.code === "TIMEOUT") return; // connection lost: resubscribed on reconnect
        if (this.#subs.get(sub.id) === sub) {
          this.#subs.delete(sub.id);
          sub.fail(err);
        }
      },
    });
  }

  async #remove(sub: Subscription<any>): Promise<void> {
    if (this.#subs.get(sub.id) !== sub) return;
    this.#subs.delete(sub.id);
    if (!this.#host.connected()) return;
    try {
      await this.#host.requests.request({ op: "unsubscribe", id: 0, sub: sub.id }, this.#host.requestTimeoutMs);
    } catch {
      /* gone with the connection: nothing to undo */
    }
  }
}
