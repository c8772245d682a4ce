import type uWS from "uWebSockets.js";
import { CLOSE_CODES, encodeFrame, type AckFrame, type ClientFrame, type ServerFrame, type WireFormat } from "@tributary/client/protocol";
import { SendBudget, type SendBudgetLimits } from "../../broker/delivery/send-budget.ts";
import type { Identity } from "../../auth/index.ts";
import type { ErrorCode } from "../../errors.ts";
import { encodeAck, encodeAcks } from "./ack-encoder.ts";
import type { WsSubscription } from "./ws-subscription.ts";

/** What uWS keeps per socket (set in `upgrade`). */
export interface SocketData {
  format: WireFormat;
  conn: WsConnection | null;
}

/** Gateway-wide counters the connections feed (read by the metrics at scrape time). */
export interface WsGatewayStats {
  delivered: number;
  /** Error frames and error closes sent, by code. */
  onError(code: ErrorCode): void;
  /** The connection is dropped as a slow consumer, for `reason`. */
  onSlowConsumer(conn: WsConnection, reason: string): void;
  /** A connection's delivery paused (send buffer over the limit). */
  onPause?(): void;
}

/** Pause delivery past `maxBufferedBytes` in the socket's send buffer, drop with SLOW_CONSUMER after `slowConsumerGraceMs`. */
export type ConnectionLimits = SendBudgetLimits;

/**
 * One SDK connection: its socket, wire format, subscriptions and write-side flow control.
 *
 * Memory stays bounded: frames are never queued in JS. The connection's SendBudget (the
 * broker's one delivery policy) pauses delivery when the socket's buffered amount passed
 * `maxBufferedBytes`: delivery paths check `canWrite` before sending and wait on
 * `whenWritable()` (uWS `drain`); a socket that stays over the limit for
 * `slowConsumerGraceMs` is told SLOW_CONSUMER and closed. Control replies (acks, errors)
 * are always sent: their number is bounded by the pending-publish limit.
 */
export class WsConnection {
  readonly ws: uWS.WebSocket<SocketData>;
  readonly format: WireFormat;
  readonly isBinary: boolean;
  readonly subscriptions = new Map<number, WsSubscription>();
  readonly #limits: ConnectionLimits;
  readonly #onGone: (conn: WsConnection) => void;

  /** False once the socket closed (or is closing): nothing is sent any more. */
  open = true;
  hello = false;
  sessionId = "";
  clientId = "";
  /** Who the connection is (set by `hello`); null before, or when the gateway runs without an auth layer. */
  identity: Identity | null = null;
  /** Frames received while the `hello` token is being verified, handled in order once it is (null: not verifying). */
  awaitingAuth: ClientFrame[] | null = null;
  /** Publishes waiting for the log (at most limits.maxPendingPublishes); see `publishSettled`. */
  pendingPublishes = 0;
  /** The client announced feature `feed` in `hello`: live records may come as feed `messages` (uWS pub/sub). */
  feedFrames = false;
  /** The client announced feature `acks` in `hello`: acks due together go in one `acks` frame. */
  ackBatches = false;
  /** The bytes budget of this socket's send buffer. */
  readonly budget: SendBudget;
  /** Buffered bytes at the last exact measurement (right after a send, which drains uWS pub/sub first)... */
  #measured = 0;
  /** ...plus bytes published to this socket's feed topics since: an upper bound of what uWS will buffer. */
  #publishedSince = 0;
  /** Replies queued by `sendSoon`, written in one corked batch (acks encoded then): see `sendSoon`. */
  #outbox: (Uint8Array | string | AckFrame)[] = [];
  /** The outbox waits for the publishes in flight to settle (see `sendSoon`). */
  #outboxWaits = false;

  readonly stats: WsGatewayStats;

  constructor(ws: uWS.WebSocket<SocketData>, limits: ConnectionLimits, stats: WsGatewayStats, onGone: (conn: WsConnection) => void) {
    this.ws = ws;
    this.stats = stats;
    this.format = ws.getUserData().format;
    this.isBinary = this.format === "cbor";
    this.#limits = limits;
    this.#onGone = onGone;
    this.budget = new SendBudget(limits, () => this.ws.getBufferedAmount(), (reason) => this.disconnect("SLOW_CONSUMER", reason, true, CLOSE_CODES.SLOW_CONSUMER), 0, () => stats.onPause?.());
  }

  /** True while the socket's send buffer is over the limit: delivery waits for `drain`. */
  get paused(): boolean {
    return this.budget.paused;
  }

  get canWrite(): boolean {
    return this.open && this.budget.open;
  }

  /** Encodes and sends one frame (corked: one syscall). False if the connection is gone. */
  send(frame: ServerFrame): boolean {
    if (!this.open) return false;
    const data = encodeFrame(frame, this.format);
    this.ws.cork(() => this.sendEncoded(data));
    return this.open;
  }

  /**
   * Queues a reply (ack, publish error) to be written with others in one frame and one
   * syscall, instead of one each. The queue is written in the next event-loop turn; when
   * publishes read in that turn are in flight by then (a client streaming publishes), it
   * waits for them to settle, so their acks leave in the same frame: an ack frame every
   * other turn instead of every turn. It waits at most one more turn for them (an engine
   * with round trips), so an ack is never held longer than two turns; a client that waits
   * for each ack before the next publish gets it in the next turn. Bounded by the
   * pending-publish limit (twice: this turn's replies and the next's). Any direct send
   * writes the queue first, so order is kept.
   */
  sendSoon(frame: ServerFrame): void {
    if (!this.open) return;
    this.#outbox.push(frame.op === "ack" ? frame : encodeFrame(frame, this.format));
    if (this.#outbox.length === 1) flushNextTurn(this);
  }

  /** A publish got its reply (queued by `sendSoon` before this): when the outbox waited for the publishes in flight and none is left, it is written once the current microtasks ran. */
  publishSettled(): void {
    this.pendingPublishes--;
    if (this.pendingPublishes === 0 && this.#outboxWaits) {
      this.#outboxWaits = false;
      flushAfterMicrotasks(this);
    }
  }

  /** The turn after replies were queued: write them, or wait for the publishes read meanwhile (once). */
  flushOrWait(): void {
    if (this.#outbox.length === 0) return;
    if (this.pendingPublishes > 0 && !this.#outboxWaits) {
      // Read in this turn and appended later in it (the append coalescer's turn-end flush comes after this one).
      this.#outboxWaits = true;
      flushNextTurn(this); // the bound, if they take longer
      return;
    }
    this.flushOutbox();
  }

  /** Writes queued replies (see `sendSoon`). */
  flushOutbox(): void {
    this.#outboxWaits = false;
    if (this.#outbox.length === 0 || !this.open) return;
    const out = this.#outbox;
    this.#outbox = [];
    this.ws.cork(() => {
      let acks: AckFrame[] = [];
      for (const data of out) {
        if (typeof data === "string" || data instanceof Uint8Array) {
          acks = this.#writeAcks(acks);
          this.#write(data);
        } else if (this.ackBatches) acks.push(data);
        else this.#write(encodeAck(data, this.format));
      }
      this.#writeAcks(acks);
    });
  }

  /** Writes `acks` as one frame (one `ack`, or `acks` for several); returns an empty list for the next run. */
  #writeAcks(acks: AckFrame[]): AckFrame[] {
    if (acks.length === 0) return acks;
    this.#write(acks.length === 1 ? encodeAck(acks[0]!, this.format) : encodeAcks(acks, this.format));
    return [];
  }

  /** Sends already-encoded bytes; the caller corks when sending many. */
  sendEncoded(data: Uint8Array | string): void {
    if (!this.open) return;
    if (this.#outbox.length > 0) this.flushOutbox();
    this.#write(data);
  }

  #write(data: Uint8Array | string): void {
    if (!this.open) return;
    const status = this.ws.send(data, this.isBinary);
    // A send first writes what uWS holds for this socket from pub/sub: the measure is exact.
    this.#publishedSince = 0;
    if (status === 1) {
      this.#measured = 0;
      return;
    }
    this.#measured = this.ws.getBufferedAmount();
    if (status === 2) {
      // uWS dropped the frame (over maxBackpressure): a gap the client cannot see. Never
      // deliver past it; drop the connection so the client resumes from its last offset.
      this.disconnect("SLOW_CONSUMER", "send buffer overflow", true, CLOSE_CODES.SLOW_CONSUMER);
      return;
    }
    this.budget.check(this.#measured);
  }

  /**
   * Reserves room for `bytes` that a feed is about to publish to this socket through uWS
   * pub/sub. uWS silently skips a subscriber over its maxBackpressure, which would be a gap:
   * so publishing is allowed only while the worst case (last measure + everything
   * published since + `bytes`) stays under `maxBufferedBytes` (uWS allows more, see the
   * gateway's maxBackpressure). Near the limit, a WebSocket ping makes uWS write out the
   * pending pub/sub bytes so the buffer can be measured again. False: not writable now
   * (the caller delivers on its own path, which pauses the connection).
   */
  reserveNative(bytes: number): boolean {
    if (!this.open || this.paused) return false;
    const limit = this.#limits.maxBufferedBytes;
    if (this.#measured + this.#publishedSince + bytes > limit) {
      this.ws.ping();
      this.#measured = this.ws.getBufferedAmount();
      this.#publishedSince = 0;
      if (this.#measured + bytes > limit) return false;
    }
    this.#publishedSince += bytes;
    return true;
  }

  sendError(code: ErrorCode, message: string, ids: { id?: number; sub?: number } = {}): void {
    this.stats.onError(code);
    const frame: ServerFrame = { op: "error", code, message };
    if (ids.id !== undefined) frame.id = ids.id;
    if (ids.sub !== undefined) frame.sub = ids.sub;
    this.send(frame);
  }

  /** Resolves when delivery may continue (socket drained) or the connection closed. */
  whenWritable(): Promise<void> {
    if (!this.open) return Promise.resolve();
    return this.budget.whenOpen();
  }

  /** uWS `drain`: resume delivery once the buffer is back under half the limit. */
  onDrain(): void {
    if (this.open) this.budget.drained();
  }

  /** Sends `disconnect` and closes the socket with `closeCode`. */
  disconnect(code: ErrorCode, reason: string, reconnect: boolean, closeCode: number): void {
    if (!this.open) return;
    if (code === "SLOW_CONSUMER") this.stats.onSlowConsumer(this, reason);
    const frame = encodeFrame({ op: "disconnect", code, reason, reconnect }, this.format);
    this.ws.cork(() => {
      this.ws.send(frame, this.isBinary);
      this.end(closeCode, reason);
    });
  }

  /** Error frame, then close (protocol violations). */
  fail(code: ErrorCode, message: string, closeCode: number, ids: { id?: number; sub?: number } = {}): void {
    if (!this.open) return;
    this.sendError(code, message, ids);
    this.end(closeCode, message);
  }

  /** Graceful close with a close frame; the uWS close handler runs `closed()`. */
  end(closeCode: number, reason: string): void {
    if (!this.open) return;
    // Close reasons are limited to 123 bytes by RFC 6455.
    this.ws.end(closeCode, Buffer.from(reason).subarray(0, 123));
  }

  /** Drops the TCP connection without a close frame (test hook for network failures). */
  terminate(): void {
    if (!this.open) return;
    this.ws.close();
  }

  /** Called from uWS `close`: releases subscriptions and timers. Idempotent. */
  closed(): void {
    if (!this.open) return;
    this.open = false;
    this.#outbox = [];
    this.budget.close();
    for (const sub of this.subscriptions.values()) sub.stop();
    this.subscriptions.clear();
    this.#onGone(this);
  }
}

// Outbox writes (see WsConnection.sendSoon), one scheduled callback for all connections.
let nextTurn = new Set<WsConnection>();
let afterMicrotasks = new Set<WsConnection>();

function flushNextTurn(conn: WsConnection): void {
  if (nextTurn.size === 0) setImmediate(flushTurn);
  nextTurn.add(conn);
}

function flushTurn(): void {
  const conns = nextTurn;
  nextTurn = new Set();
  for (const conn of conns) conn.flushOrWait();
}

/** After the current microtasks: the replies of one engine append are all queued by then (its callbacks run in one go). */
function flushAfterMicrotasks(conn: WsConnection): void {
  if (afterMicrotasks.size === 0) queueMicrotask(flushAll);
  afterMicrotasks.add(conn);
}

function flushAll(): void {
  const conns = afterMicrotasks;
  afterMicrotasks = new Set();
  for (const conn of conns) conn.flushOutbox();
}
