/**
 * Node-to-node messages over Redis pub/sub for consumer groups: every node subscribes to
 * its own inbox channel `{<prefix>:cluster}:inbox:<nodeId>`; a request carries an id and
 * the sender's node, and the answer comes back to the sender's inbox. Pub/sub is
 * at-most-once: a request whose answer does not come within `timeoutMs` fails with
 * UNAVAILABLE (the caller re-resolves the coordinator and retries).
 *
 * What no caller sees is logged and counted (task `group-bus`) through the `reporter`: an
 * inbox message that is not an envelope, an answer that could not be published (its
 * requester then times out and retries).
 */
import { TributaryError, toTributaryError } from "../errors.ts";
import { isErrorCode } from "@tributary/client/codes";
import type { RedisClient } from "../redis/redis-connection.ts";
import type { RedisErrorReporter } from "../redis/redis-error-reporter.ts";

export interface BusRequest {
  kind: string;
  [field: string]: unknown;
}

interface Envelope {
  t: "req" | "res";
  id: number;
  from: string;
  body?: BusRequest;
  ok?: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

export type BusHandler = (request: BusRequest, from: string) => Promise<unknown>;

export class GroupBus {
  readonly nodeId: string;
  readonly #publisher: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #prefix: string;
  readonly #reporter: RedisErrorReporter;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #handler: BusHandler = async () => {
    throw new TributaryError("UNAVAILABLE", "this node does not serve group requests");
  };
  #nextId = 1;
  #closed = false;

  private constructor(publisher: RedisClient, subscriber: RedisClient, prefix: string, nodeId: string, reporter: RedisErrorReporter) {
    this.#publisher = publisher;
    this.#reporter = reporter;
    this.#subscriber = subscriber;
    this.#prefix = prefix;
    this.nodeId = nodeId;
  }

  /** Subscribes to this node's inbox on `subscriber` (a connection dedicated to it). */
  static async open(publisher: RedisClient, subscriber: RedisClient, prefix: string, nodeId: string, reporter: RedisErrorReporter): Promise<GroupBus> {
    const bus = new GroupBus(publisher, subscriber, prefix, nodeId, reporter);
    const inbox = bus.#inbox(nodeId);
    subscriber.on("message", (channel: string, message: string) => {
      if (channel === inbox) bus.#onMessage(message);
    });
    await subscriber.subscribe(inbox);
    return bus;
  }

  serve(handler: BusHandler): void {
    this.#handler = handler;
  }

  /** Sends `body` to `node` and resolves with its answer (rejects with the remote TributaryError). */
  request<T>(node: string, body: BusRequest, timeoutMs = 3000): Promise<T> {
    if (this.#closed) return Promise.reject(new TributaryError("UNAVAILABLE", "the node is shutting down"));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TributaryError("UNAVAILABLE", `node ${node} did not answer ${body.kind} within ${timeoutMs} ms`, { node }));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#send(node, { t: "req", id, from: this.nodeId, body }).catch((err: unknown) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(toTributaryError(err));
      });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new TributaryError("UNAVAILABLE", "the node is shutting down"));
    }
    this.#pending.clear();
    // Best-effort cleanup on close: the owner disconnects the subscriber right after, which
    // ends the subscription anyway.
    await this.#subscriber.unsubscribe(this.#inbox(this.nodeId)).catch(() => {});
  }

  #inbox(node: string): string {
    return `{${this.#prefix}:cluster}:inbox:${node}`;
  }

  async #send(node: string, envelope: Envelope): Promise<void> {
    await this.#publisher.publish(this.#inbox(node), JSON.stringify(envelope));
  }

  #onMessage(message: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message) as Envelope;
    } catch (err) {
      // Not from a Tributary node of this version (nothing to answer: no id, no sender).
      this.#reporter.report("group-bus", "group.bus_message_unreadable", err, { nodeId: this.nodeId, bytes: message.length });
      return;
    }
    if (envelope.t === "res") {
      const pending = this.#pending.get(envelope.id);
      if (!pending) return; // timed out already
      this.#pending.delete(envelope.id);
      clearTimeout(pending.timer);
      if (envelope.ok) pending.resolve(envelope.result);
      else {
        const code = envelope.error && isErrorCode(envelope.error.code) ? envelope.error.code : "INTERNAL";
        pending.reject(new TributaryError(code, envelope.error?.message ?? "remote error"));
      }
      return;
    }
    if (envelope.t !== "req" || !envelope.body || this.#closed) return;
    const { from, id, body } = envelope;
    this.#handler(body, from).then(
      (result) => this.#send(from, { t: "res", id, from: this.nodeId, ok: true, result: result ?? null }),
      (err: unknown) => {
        const e = toTributaryError(err);
        return this.#send(from, { t: "res", id, from: this.nodeId, ok: false, error: { code: e.code, message: e.message } });
      },
    ).catch((err: unknown) => {
      // The answer was not published (Redis unreachable): the requester times out with
      // UNAVAILABLE and retries; the request itself was handled here.
      this.#reporter.report("group-bus", "group.bus_reply_failed", err, { nodeId: this.nodeId, to: from, kind: body.kind, group: body.group });
    });
  }
}
