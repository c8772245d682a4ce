/**
 * TributaryClient: one logical connection to a Tributary node (or a list of nodes), kept
 * alive across network failures.
 *
 * - Connection: opens `<url>/ws`, says `hello`, waits for `welcome`; on loss, reconnects
 *   with full-jitter backoff, rotating through the URLs, unless the server said not to
 *   (close code 4500+ or a `disconnect` frame with `reconnect: false`).
 * - Subscriptions resume at the next offset not yet received, with the partition epochs:
 *   no gap, no duplicate (see subscription.ts).
 * - Publishes carry (producerId, seq); unacknowledged ones are re-sent with the same seq
 *   after a reconnect, so the server writes each at most once (see publish-queue.ts).
 *   Publishes failing with a retriable code are retried the same way until their deadline
 *   (`publishTimeoutMs`; see publish-retry.ts).
 *
 * Parts (internal): request-channel.ts (ids, pending requests), publish-pipeline.ts,
 * subscription-router.ts (subscriptions, feeds), presence-watches.ts; this file keeps the
 * connection lifecycle (connect, hello, ping, reconnect, shutdown) and frame dispatch.
 */
import { isErrorCode, type ErrorCode } from "../codes.ts";
import { FEATURES, PROTOCOL_VERSION, type ClientFrame, type ResetFrame, type ResetPolicy, type ServerFrame, type ServerLimits, type WireFormat } from "../protocol/index.ts";
import { backoff } from "./backoff.ts";
import { Emitter } from "./emitter.ts";
import { errorFromFrame, TributaryClientError } from "./errors.ts";
import type { Presence } from "./presence.ts";
import { PresenceWatches } from "./presence-watches.ts";
import { PublishPipeline } from "./publish-pipeline.ts";
import { RequestChannel } from "./request-channel.ts";
import { State } from "./state.ts";
import type { MessageHandler, Subscription } from "./subscription.ts";
import { SubscriptionRouter } from "./subscription-router.ts";
import { Transport, endpointUrl, webSocketImpl, type ConnectFailure, type ConnectFailureReason, type WebSocketConstructor } from "./transport.ts";
import type { ClientEvents, ClientOptions, PublishOptions, PublishResult, SubscribeOptions } from "./types.ts";
import { resolveCodec, type ValueCodec } from "./value-codec.ts";

const DEFAULTS = {
  minReconnectDelay: 500,
  maxReconnectDelay: 20_000,
  maxQueuedPublishes: 10_000,
  maxInflightPublishes: 256,
  connectTimeout: 10_000,
  pingInterval: 25_000,
  pongTimeout: 10_000,
  publishTimeoutMs: 30_000,
  minPublishRetryDelay: 50,
  maxPublishRetryDelay: 1000,
};

function randomId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class TributaryClient extends Emitter<ClientEvents> {
  /** Random per client instance: with `seq`, names each publish for the server's dedupe. */
  readonly producerId = randomId();
  readonly urls: readonly string[];
  readonly #options: Required<Pick<ClientOptions, keyof typeof DEFAULTS>> & ClientOptions;
  readonly #format: WireFormat;
  readonly #codec: ValueCodec<any>;
  readonly #requests: RequestChannel;
  readonly #publishes: PublishPipeline;
  readonly #subs: SubscriptionRouter;
  readonly #presences: PresenceWatches;
  /** The clientId the server gave us (no `clientId` option): kept across reconnects, so presence and group membership survive them. */
  #assignedClientId: string | undefined;

  #state: State = State.Disconnected;
  #transport: Transport | undefined;
  #urlIndex = 0;
  #attempt = 0;
  #limits: ServerLimits | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #lastFrameAt = 0;
  #pingSent = false;
  #serverDisconnect: { code: ErrorCode; reason: string; reconnect: boolean } | undefined;
  /** Reconnects with a fresh token before the current one expires (getToken). */
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** The current connection is being replaced for a token refresh: reconnect at once, no backoff. */
  #refreshing = false;
  /** The failure of the current connect attempt was reported already (one `error` per attempt). */
  #attemptReported = false;
  #lastError: TributaryClientError | undefined;

  constructor(urls: string | readonly string[], options: ClientOptions = {}) {
    super();
    const list = (typeof urls === "string" ? [urls] : [...urls]).map(endpointUrl);
    if (list.length === 0) throw new TypeError("connect() needs at least one URL");
    this.urls = list;
    this.#options = { ...DEFAULTS, ...stripUndefined(options) };
    this.#format = options.format ?? "cbor";
    this.#codec = resolveCodec(options.codec);
    const connected = () => this.#state === State.Connected;
    const send = (frame: ClientFrame) => this.#send(frame);
    const reportError = (err: TributaryClientError) => this.#emitError(err);
    this.#requests = new RequestChannel(send);
    this.#publishes = new PublishPipeline(this.#options, this.#codec, this.producerId, {
      connected,
      closed: () => this.#state === State.Closed,
      send,
      nextId: () => this.#requests.nextId(),
    });
    this.#subs = new SubscriptionRouter({
      connected,
      send,
      requests: this.#requests,
      requestTimeoutMs: this.#options.connectTimeout,
      defaultCredit: () => this.#limits?.defaultCredit,
      reportError,
      reportReset: (subscription, frame, reset) => this.#reportReset(subscription, frame, reset),
    });
    this.#presences = new PresenceWatches({ connected, requests: this.#requests, requestTimeoutMs: this.#options.connectTimeout, reportError });
    void this.#open();
  }

  /** Current connection state. */
  get state(): State {
    return this.#state;
  }

  /**
   * The last error the client reported with an `error` event (a failed connect attempt
   * carries `context.reason`: refused, dns, timeout, http + `status`, tls, protocol, closed,
   * token, network); undefined again once a connection succeeds.
   */
  get lastError(): TributaryClientError | undefined {
    return this.#lastError;
  }

  /** The URL of the current (or last) connection. */
  get url(): string {
    return this.urls[this.#urlIndex]!;
  }

  /** Limits the server announced in `welcome` (undefined before the first connection). */
  get limits(): ServerLimits | undefined {
    return this.#limits;
  }

  /** Publishes waiting for the connection or the in-flight window. */
  get queuedPublishes(): number {
    return this.#publishes.queuedCount;
  }

  /** Publishes sent and not yet acknowledged. */
  get inflightPublishes(): number {
    return this.#publishes.inflightCount;
  }

  // ---- public API ----------------------------------------------------------------------

  /**
   * Appends `value` (encoded by the codec) to `topic`. Resolves with where it landed once
   * the server acknowledged it (with `acks: 0`, once sent). While disconnected the publish
   * waits in a bounded queue; a full queue rejects with QUEUE_FULL. A publish the server
   * fails with a retriable code is re-sent (same seq: written at most once) with backoff
   * until `publishTimeoutMs` after this call, then rejects with the last error.
   */
  publish(topic: string, value: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    return this.#publishes.publish(topic, value, options);
  }

  /**
   * Subscribes to a topic, or an MQTT-style filter on record keys (`sensor-data/+/temp`).
   * With a handler, messages are passed to it one at a time (an async handler is awaited
   * before the next); without one, iterate the subscription with `for await`.
   */
  subscribe<T = unknown>(topic: string, handler?: MessageHandler<T> | SubscribeOptions, options: SubscribeOptions = {}): Subscription<T> {
    if (this.#state === State.Closed) throw new TributaryClientError("UNAVAILABLE", "the client is closed", { topic });
    if (handler !== undefined && typeof handler !== "function") {
      options = handler;
      handler = undefined;
    }
    return this.#subs.subscribe<T>(topic, handler, options, this.#codec);
  }

  /**
   * Watches who is subscribed to `topic` (subscriptions with `presence`, the default):
   * `members()` lists them, `on("join" | "leave")` reports changes, kept across reconnects.
   */
  presence(topic: string): Presence {
    if (this.#state === State.Closed) throw new TributaryClientError("UNAVAILABLE", "the client is closed", { topic });
    return this.#presences.create(topic);
  }

  /**
   * Closes the connection for good: no reconnect, subscriptions end, publishes not yet
   * acknowledged reject with UNAVAILABLE. Group members first commit what they processed
   * and leave their groups (while connected).
   */
  async close(): Promise<void> {
    if (this.#state === State.Closed) return;
    if (this.#state === State.Connected) {
      const members = [...this.#subs.values()].filter((sub) => sub.group !== undefined);
      await Promise.all(members.map((sub) => sub.unsubscribe().catch(() => undefined)));
      // Leave presence now rather than after the session timeout (no reply awaited: the
      // server handles frames that precede the close).
      if ((this.#state as State) === State.Connected) for (const sub of this.#subs.values()) this.#send({ op: "unsubscribe", id: this.#requests.nextId(), sub: sub.id });
    }
    if ((this.#state as State) === State.Closed) return;
    this.#shutdown(new TributaryClientError("UNAVAILABLE", "the client was closed"));
  }

  /**
   * Drops the current connection as if the network lost it; the client reconnects and
   * resumes as usual. For failover drills and tests.
   */
  dropConnection(): void {
    this.#transport?.close(3000, "dropped by the application");
  }

  // ---- connection lifecycle ---------------------------------------------------------------

  #setState(state: State): void {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    this.emit("state", { state, previous });
  }

  async #open(): Promise<void> {
    if (this.#state === State.Closed) return;
    this.#setState(State.Connecting);
    this.#serverDisconnect = undefined;
    this.#attemptReported = false;
    const url = this.url;
    let stage: "token" | "open" | "hello" = "open";
    const transport = new Transport(url, this.#format, {
      onFrame: (frame) => {
        if (this.#transport === transport) this.#onFrame(frame as ServerFrame);
      },
      onClose: (code, reason) => {
        if (this.#transport !== transport) return;
        // Closed before `welcome`: this attempt failed; say why before reconnecting.
        if (this.#state === State.Connecting && !this.#attemptReported) {
          this.#reportConnectFailure(url, transport.failure ?? { reason: transport.opened ? "closed" : "network", message: `connection closed ${transport.opened ? "before welcome" : "before open"} (code ${code}${reason ? `: ${reason}` : ""})` }, code);
        }
        this.#onClose(code, reason);
      },
      onDecodeError: (err) => {
        if (this.#transport !== transport) return;
        this.#emitError(new TributaryClientError("MALFORMED_FRAME", "undecodable frame from the server", { url }, { cause: err }));
        transport.close(4500, "malformed frame");
      },
    });
    this.#transport = transport;
    this.#subs.clearFeeds(); // feed ids are per connection
    try {
      const Impl = (this.#options.WebSocket as WebSocketConstructor | undefined) ?? (await webSocketImpl());
      if (this.#transport !== transport) return;
      stage = "token";
      const token = this.#options.getToken ? await this.#options.getToken() : this.#options.token;
      if (this.#transport !== transport) return;
      stage = "open";
      await transport.open(Impl, this.#options.connectTimeout);
      if (this.#transport !== transport) return;
      stage = "hello";
      this.#lastFrameAt = Date.now();
      const welcome = await this.#requests.request(
        {
          op: "hello",
          id: 0,
          protocol: PROTOCOL_VERSION,
          ...(this.#options.clientId || this.#assignedClientId ? { clientId: this.#options.clientId || this.#assignedClientId } : {}),
          ...(token ? { token } : {}),
          ...(this.#options.user ? { user: this.#options.user } : {}),
          features: [FEATURES.FEED, FEATURES.ACKS],
        },
        this.#options.connectTimeout,
      );
      if (this.#transport !== transport || welcome.op !== "welcome") return;
      this.#limits = welcome.limits;
      this.#assignedClientId ??= welcome.clientId;
      this.#attempt = 0;
      this.#lastError = undefined;
      this.#setState(State.Connected);
      this.#startPing();
      this.#scheduleTokenRefresh(token);
      this.#subs.resubscribeAll();
      this.#presences.rewatchAll();
      this.#publishes.flush();
      this.emit("connected", { url, sessionId: welcome.sessionId, clientId: welcome.clientId, node: welcome.node });
    } catch (err) {
      if (this.#transport !== transport) return;
      this.#attemptReported = true;
      if (err instanceof TributaryClientError && err.code === "TOKEN_EXPIRED" && this.#options.getToken) {
        // The token expired before the server saw it: the server closes (4003) and we reconnect with a new one.
        this.#emitError(err);
        return;
      }
      if (err instanceof TributaryClientError && !err.retriable) {
        // The server refused the hello (bad token, protocol): retrying cannot help.
        this.#emitError(err);
        this.#shutdown(err);
        return;
      }
      const message = String((err as Error)?.message ?? err);
      const reason: ConnectFailureReason = stage === "token" ? "token" : err instanceof TributaryClientError && err.code === "TIMEOUT" ? "timeout" : stage === "hello" ? "protocol" : "network";
      this.#reportConnectFailure(url, transport.failure ?? { reason, message }, undefined, err);
      transport.close(1000, "connect failed");
    }
  }

  /** One `error` event (UNAVAILABLE, retriable) for a failed connect attempt, with its cause in `context`. */
  #reportConnectFailure(url: string, failure: ConnectFailure, closeCode: number | undefined, cause?: unknown): void {
    this.#attemptReported = true;
    const what = failure.reason === "http" ? `HTTP ${failure.status} on the WebSocket upgrade` : failure.reason === "refused" ? "connection refused" : failure.reason === "dns" ? "host name not found" : failure.message;
    const context = { url, attempt: this.#attempt + 1, reason: failure.reason, ...(failure.status !== undefined ? { status: failure.status } : {}), ...(failure.errno ? { errno: failure.errno } : {}), ...(closeCode !== undefined ? { closeCode } : {}) };
    this.#emitError(new TributaryClientError("UNAVAILABLE", `cannot connect to ${url}: ${what}${what === failure.message ? "" : ` (${failure.message})`}`, context, { cause: cause ?? failure }));
  }

  #onClose(code: number, reason: string): void {
    this.#transport = undefined;
    this.#stopPing();
    this.#clearTokenRefresh();
    const lost = new TributaryClientError("UNAVAILABLE", `connection closed (code ${code}${reason ? `: ${reason}` : ""})`, { code });
    this.#requests.rejectAll(lost);
    this.#publishes.requeueInflight();
    if (this.#state === State.Closed) return;
    const told = this.#serverDisconnect;
    if (this.#refreshing) {
      // Our own close, to connect again with a fresh token (#scheduleTokenRefresh): no backoff.
      this.#refreshing = false;
      this.emit("disconnected", { code, reason, reconnect: true });
      this.#setState(State.Disconnected);
      void this.#open();
      return;
    }
    // TOKEN_EXPIRED (4003) without getToken: the same token cannot work again.
    const expiredForGood = (code === 4003 || told?.code === "TOKEN_EXPIRED") && !this.#options.getToken;
    const refused = (code >= 4500 && code <= 4999) || told?.reconnect === false || expiredForGood;
    const reconnect = this.#options.reconnect !== false && !refused;
    this.emit("disconnected", { code, reason: told?.reason ?? reason, ...(told ? { error: told.code } : {}), reconnect });
    if (!reconnect) {
      const errCode: ErrorCode = told?.code ?? (code === 4501 ? "UNAUTHORIZED" : code === 4502 ? "FRAME_TOO_LARGE" : code === 4003 ? "TOKEN_EXPIRED" : "UNAVAILABLE");
      this.#shutdown(new TributaryClientError(errCode, `the server closed the connection and refused reconnects: ${told?.reason ?? reason ?? code}`, { code }));
      return;
    }
    this.#setState(State.Disconnected);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.urls.length > 1) this.#urlIndex = (this.#urlIndex + 1) % this.urls.length;
    const delay = backoff(this.#attempt, this.#options.minReconnectDelay, this.#options.maxReconnectDelay, this.#options.random);
    this.#attempt++;
    this.emit("reconnecting", { attempt: this.#attempt, delay, url: this.url });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#open();
    }, delay);
  }

  #shutdown(err: TributaryClientError): void {
    this.#setState(State.Closed);
    this.#clearTokenRefresh();
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#stopPing();
    this.#publishes.stopRetries();
    const transport = this.#transport;
    this.#transport = undefined;
    transport?.close(1000, "client closed");
    this.#requests.rejectAll(err);
    this.#publishes.rejectAll(err);
    this.#subs.endAll();
  }

  /**
   * With getToken and a token carrying `exp`: reconnect with a fresh token `tokenRefreshMargin`
   * ms before it expires (at most half its remaining life), so the server never has to close
   * the connection for expiry. The protocol has no in-place refresh; a reconnect resumes
   * everything (subscriptions from their next offsets, unacknowledged publishes re-sent).
   */
  #scheduleTokenRefresh(token: string | undefined): void {
    this.#clearTokenRefresh();
    if (!this.#options.getToken || !token) return;
    const exp = tokenExpiry(token);
    if (exp === null) return;
    const left = exp - Date.now();
    const margin = Math.min(this.#options.tokenRefreshMargin ?? 5000, Math.max(0, left / 2));
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      if (this.#state !== State.Connected || !this.#transport) return;
      this.#refreshing = true;
      this.#transport.close(1000, "token refresh");
    }, Math.max(0, left - margin));
    (this.#refreshTimer as { unref?: () => void }).unref?.();
  }

  #clearTokenRefresh(): void {
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
  }

  #startPing(): void {
    const interval = this.#options.pingInterval;
    if (!interval) return;
    this.#pingSent = false;
    const tick = Math.max(50, Math.min(interval, this.#options.pongTimeout) / 2);
    this.#pingTimer = setInterval(() => {
      const idle = Date.now() - this.#lastFrameAt;
      if (idle >= interval + this.#options.pongTimeout) {
        this.#transport?.close(4000, "ping timeout");
      } else if (idle >= interval && !this.#pingSent) {
        this.#pingSent = this.#send({ op: "ping" });
      }
    }, tick);
    (this.#pingTimer as { unref?: () => void }).unref?.();
  }

  #stopPing(): void {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
  }

  // ---- frames ------------------------------------------------------------------------------

  #send(frame: ClientFrame): boolean {
    return this.#transport?.send(frame) ?? false;
  }

  #onFrame(frame: ServerFrame): void {
    this.#lastFrameAt = Date.now();
    this.#pingSent = false;
    if (!frame || typeof frame !== "object") return;
    switch (frame.op) {
      case "message":
        this.#subs.get(frame.sub)?.onMessage(frame);
        return;
      case "messages":
        this.#subs.onMessages(frame);
        return;
      case "attach":
        this.#subs.attach(frame.feed, frame.sub);
        return;
      case "detach":
        this.#subs.detach(frame.feed, frame.sub);
        return;
      case "ack":
        if (this.#publishes.settle(frame.id, frame.partition, frame.offset)) this.#publishes.acked();
        else this.#requests.get(frame.id)?.resolve(frame);
        return;
      case "acks": {
        if (!Array.isArray(frame.acks)) return;
        let settled = false;
        for (const [id, partition, offset] of frame.acks) {
          if (this.#publishes.settle(id, partition, offset)) settled = true;
          else this.#requests.get(id)?.resolve({ op: "ack", id, partition, offset });
        }
        if (settled) this.#publishes.acked();
        return;
      }
      case "subscribed":
        this.#subs.get(frame.sub)?.onSubscribed(frame);
        this.#requests.get(frame.id)?.resolve(frame);
        return;
      case "reset":
        this.#subs.get(frame.sub)?.onReset(frame);
        return;
      case "joined":
        this.#subs.get(frame.sub)?.onJoined(frame);
        this.#requests.get(frame.id)?.resolve(frame);
        return;
      case "assign":
        this.#subs.get(frame.sub)?.onAssign(frame);
        return;
      case "revoke":
        this.#subs.get(frame.sub)?.onRevoke(frame);
        return;
      case "committed":
      case "presence":
        this.#requests.get(frame.id)?.resolve(frame);
        return;
      case "presence_event":
        this.#presences.onEvent(frame);
        return;
      case "welcome":
      case "unsubscribed":
      case "pong":
        if (frame.id !== undefined) this.#requests.get(frame.id)?.resolve(frame);
        return;
      case "error":
        this.#onErrorFrame(frame.code, frame.message, frame.id, frame.sub);
        return;
      case "disconnect":
        this.#serverDisconnect = { code: isErrorCode(frame.code) ? frame.code : "INTERNAL", reason: frame.reason, reconnect: frame.reconnect !== false };
        return;
      default:
        return;
    }
  }

  #onErrorFrame(code: ErrorCode, message: string, id: number | undefined, subId: number | undefined): void {
    if (id !== undefined) {
      if (this.#publishes.failed(id, code, message)) return;
      const request = this.#requests.get(id);
      if (request) {
        request.reject(errorFromFrame(code, message));
        if (subId === undefined) return;
      }
    }
    if (subId !== undefined && this.#subs.onError(subId, code, message, id)) return;
    // A connection-level error, or the failure of an acks-0 publish (nobody awaits it).
    this.#emitError(errorFromFrame(code, message, id !== undefined ? { id } : {}));
  }

  #reportReset(subscription: Subscription<any>, frame: ResetFrame, reset: ResetPolicy): void {
    this.emit("offsetOutOfRange", { subscription, topic: subscription.topic, partition: frame.partition, reason: frame.reason, requested: frame.requested, offset: frame.offset, epoch: frame.epoch, reset });
  }

  #emitError(err: TributaryClientError): void {
    this.#lastError = err;
    this.emit("error", err);
  }
}

/** The `exp` of a JWT, ms since the epoch, or null (no exp, or not a JWT). The signature is the server's business. */
function tokenExpiry(token: string): number | null {
  const part = token.split(".")[1];
  if (part === undefined) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

function stripUndefined<T extends object>(options: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [key, value] of Object.entries(options)) if (value !== undefined) (out as Record<string, unknown>)[key] = value;
  return out;
}

/**
 * Connects to a Tributary node: `url` is the node's base URL (ws://, wss://, http(s)://),
 * or a list of them tried in turn. Returns at once; the client connects in the background
 * (publishes and subscriptions made before that are queued).
 */
export function connect(url: string | readonly string[], options: ClientOptions = {}): TributaryClient {
  return new TributaryClient(url, options);
}
