/**
 * A tiny client speaking the Tributary wire protocol directly over `ws` (no SDK), for
 * gateway tests: send frames, await replies by id, collect messages per subscription,
 * optionally grant credit back automatically.
 */
import WebSocket from "ws";
import {
  decodeFrame,
  encodeFrame,
  SUBPROTOCOL_CBOR,
  SUBPROTOCOL_JSON,
  type Frame,
  type MessageFrame,
  type MessagesFrame,
  type ServerFrame,
  type StartPosition,
  type ResetPolicy,
  type SubscribedFrame,
  type WelcomeFrame,
  type WireFormat,
} from "@tributary/client/protocol";

type AnyFrame = ServerFrame & Record<string, unknown>;

interface Waiter {
  pred: (f: AnyFrame) => boolean;
  resolve: (f: AnyFrame) => void;
}

export class WsTestClient {
  readonly ws: WebSocket;
  readonly format: WireFormat;
  readonly frames: AnyFrame[] = [];
  readonly messages = new Map<number, MessageFrame[]>();
  readonly closed: Promise<{ code: number; reason: string }>;
  closeInfo: { code: number; reason: string } | null = null;
  #waiters: Waiter[] = [];
  /** Woken after every frame (waitForMessages). */
  #arrivals: Array<() => void> = [];
  #nextId = 1;
  /** sub → credit window to keep topped up (auto credit). */
  #autoCredit = new Map<number, { window: number; unacked: number }>();
  /** Keep every frame in `frames` (turn off for large streams). */
  keepFrames = true;
  /** Feed id → sub (from `attach` / `detach`; feature "feed"). */
  readonly feeds = new Map<number, number>();
  /** `acks` frames received (feature "acks"). */
  ackBatches = 0;
  /** Frames received that carry acks (`ack` and `acks`): what the wire carried, not the acks in them. */
  ackFrames = 0;
  /** sub → records received in feed `messages` frames (the native fan-out path). */
  readonly feedRecords = new Map<number, number>();

  private constructor(ws: WebSocket, format: WireFormat) {
    this.ws = ws;
    this.format = format;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      });
    });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const frame = decodeFrame(isBinary ? new Uint8Array(data) : data.toString("utf8"), format) as AnyFrame;
      if (frame.op === "ack" || frame.op === "acks") this.ackFrames++;
      this.#onFrame(frame);
      for (const w of this.#arrivals.splice(0)) w();
    });
    void this.closed.then(() => {
      for (const w of this.#arrivals.splice(0)) w();
    });
    ws.on("error", () => {});
  }

  static async open(url: string, options: { format?: WireFormat; protocols?: string[] } = {}): Promise<WsTestClient> {
    const format = options.format ?? "cbor";
    const protocols = options.protocols ?? [format === "cbor" ? SUBPROTOCOL_CBOR : SUBPROTOCOL_JSON];
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    const client = new WsTestClient(ws, format);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return client;
  }

  /** Opens and says hello (announcing `features`, e.g. ["feed"]). */
  static async connect(url: string, options: { format?: WireFormat; clientId?: string; features?: string[] } = {}): Promise<WsTestClient> {
    const client = await WsTestClient.open(url, options);
    await client.hello(options.clientId, options.features);
    return client;
  }

  nextId(): number {
    return this.#nextId++;
  }

  send(frame: Record<string, unknown>): void {
    this.ws.send(encodeFrame(frame as unknown as Frame, this.format));
  }

  /** Sends a request with a fresh id; resolves with the reply carrying that id (including `error`). */
  request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<AnyFrame> {
    const id = this.nextId();
    const reply = this.waitFor((f) => f.id === id && f.op !== "message", timeoutMs);
    this.send({ ...frame, id });
    return reply;
  }

  async hello(clientId?: string, features?: string[]): Promise<WelcomeFrame> {
    const reply = await this.request({ op: "hello", protocol: 1, ...(clientId ? { clientId } : {}), ...(features ? { features } : {}) });
    if (reply.op !== "welcome") throw new Error(`hello failed: ${JSON.stringify(reply)}`);
    return reply as unknown as WelcomeFrame;
  }

  async publish(topic: string, value: Uint8Array | string | null, extra: Record<string, unknown> = {}): Promise<AnyFrame> {
    const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
    return this.request({ op: "publish", topic, value: bytes, ...extra });
  }

  /**
   * Subscribes; with `autoCredit` the client grants credit back as messages arrive,
   * keeping `credit` (the window) in flight.
   */
  async subscribe(opts: {
    sub: number;
    topic: string;
    from?: StartPosition;
    reset?: ResetPolicy;
    credit?: number;
    autoCredit?: boolean;
  }): Promise<AnyFrame> {
    const { autoCredit = true, ...rest } = opts;
    this.messages.set(opts.sub, this.messages.get(opts.sub) ?? []);
    if (autoCredit) this.#autoCredit.set(opts.sub, { window: opts.credit ?? 1000, unacked: 0 });
    return this.request({ op: "subscribe", ...rest });
  }

  async subscribeOk(opts: Parameters<WsTestClient["subscribe"]>[0]): Promise<SubscribedFrame> {
    const reply = await this.subscribe(opts);
    if (reply.op !== "subscribed") throw new Error(`subscribe failed: ${JSON.stringify(reply)}`);
    return reply as unknown as SubscribedFrame;
  }

  messagesOf(sub: number): MessageFrame[] {
    return this.messages.get(sub) ?? [];
  }

  /** Resolves once `sub` has at least `count` messages. */
  async waitForMessages(sub: number, count: number, timeoutMs = 10_000): Promise<MessageFrame[]> {
    await this.#until(() => this.messagesOf(sub).length >= count, timeoutMs, () => `sub ${sub} has ${this.messagesOf(sub).length}/${count} messages`);
    return this.messagesOf(sub);
  }

  /** Resolves once `sub` has received every marker of `marks` (see `publishMarks`). */
  async waitForMarks(sub: number, marks: Map<number, number>, timeoutMs = 10_000): Promise<void> {
    await this.#until(() => hasMarks(this.messagesOf(sub), marks), timeoutMs, () => `sub ${sub} to receive the markers at ${JSON.stringify([...marks])}`);
  }

  /**
   * ping → pong: the gateway answers a connection's requests in order and writes to its
   * socket in order, so whatever it sent this connection before the pong has arrived.
   */
  async roundTrip(): Promise<void> {
    const reply = await this.request({ op: "ping" });
    if (reply.op !== "pong") throw new Error(`ping answered with ${JSON.stringify(reply)}`);
  }

  /** Waits until `check()` holds, re-checked after every frame; fails at the deadline or when the connection closes first. */
  async #until(check: () => boolean, timeoutMs: number, state: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.closeInfo) throw new Error(`connection closed (${this.closeInfo.code}): ${state()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out: ${state()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#arrivals.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The first frame (already received or future) matching `pred`. */
  waitFor(pred: (f: AnyFrame) => boolean, timeoutMs = 5000): Promise<AnyFrame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pred,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out waiting for a frame; last frames: ${JSON.stringify(this.frames.slice(-3), bigSafe)}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }

  #onMessage(m: MessageFrame): void {
    let list = this.messages.get(m.sub);
    if (!list) this.messages.set(m.sub, (list = []));
    list.push(m);
    const auto = this.#autoCredit.get(m.sub);
    if (auto) {
      auto.unacked++;
      if (auto.unacked >= Math.max(1, auto.window / 2)) {
        this.send({ op: "credit", sub: m.sub, credit: auto.unacked });
        auto.unacked = 0;
      }
    }
  }

  #onFrame(frame: AnyFrame): void {
    if (frame.op === "acks") {
      // Feature "acks": one frame for several publishes; seen here as the individual acks.
      for (const [id, partition, offset] of frame.acks as [number, number, number][]) this.#onFrame({ op: "ack", id, partition, offset } as AnyFrame);
      this.ackBatches++;
      return;
    }
    if (frame.op === "attach") this.feeds.set(frame.feed as number, frame.sub as number);
    if (frame.op === "detach" && this.feeds.get(frame.feed as number) === frame.sub) this.feeds.delete(frame.feed as number);
    if (frame.op === "messages") {
      const batch = frame as unknown as MessagesFrame;
      const sub = batch.feed !== undefined ? this.feeds.get(batch.feed) : batch.sub;
      if (sub === undefined) throw new Error(`messages for feed ${batch.feed} before its attach`);
      if (batch.feed !== undefined) this.feedRecords.set(sub, (this.feedRecords.get(sub) ?? 0) + batch.records.length);
      for (const r of batch.records) this.#onMessage({ op: "message", sub, topic: batch.topic, partition: batch.partition, ...r });
      if (!this.keepFrames) return;
    }
    if (frame.op === "message") {
      this.#onMessage(frame as unknown as MessageFrame);
      if (!this.keepFrames) return;
    }
    if (this.keepFrames || frame.op !== "message") this.frames.push(frame);
    for (const w of [...this.#waiters]) {
      if (w.pred(frame)) {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        w.resolve(frame);
      }
    }
  }
}

function bigSafe(_k: string, v: unknown): unknown {
  return v instanceof Uint8Array ? `<${v.length} bytes>` : v;
}

export const text = (bytes: Uint8Array | null): string | null => (bytes === null ? null : new TextDecoder().decode(bytes));

/**
 * The positive marker behind "nothing more arrives" on a subscription: publishes one
 * marker record to each of `partitions` (keyed `key`, so that key filters match it) and
 * returns partition → marker offset. A subscription delivers each partition in offset
 * order, so once a reader has the markers (`WsTestClient.waitForMarks`), it has everything
 * it was going to get before them; `beforeMarks` leaves the markers out again.
 */
export async function publishMarks(pub: WsTestClient, topic: string, partitions: number[], key?: string): Promise<Map<number, number>> {
  const marks = new Map<number, number>();
  for (const partition of partitions) {
    const ack = await pub.publish(topic, "__marker__", { partition, ...(key === undefined ? {} : { key: new TextEncoder().encode(key) }) });
    if (ack.op !== "ack") throw new Error(`marker publish failed: ${JSON.stringify(ack, bigSafe)}`);
    marks.set(partition, ack.offset as number);
  }
  return marks;
}

/** True once `messages` hold the marker of every partition of `marks`. */
export function hasMarks(messages: Array<{ partition: number; offset: number }>, marks: Map<number, number>): boolean {
  return [...marks].every(([p, offset]) => messages.some((m) => m.partition === p && m.offset === offset));
}

/** The messages before the markers (what a subscriber got from what was published before them). */
export function beforeMarks<M extends { partition: number; offset: number }>(messages: M[], marks: Map<number, number>): M[] {
  return messages.filter((m) => m.offset < (marks.get(m.partition) ?? Infinity));
}
