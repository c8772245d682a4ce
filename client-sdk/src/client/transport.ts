/**
 * One WebSocket connection speaking the Tributary frame codec. Picks the WebSocket
 * implementation at runtime: the platform's `globalThis.WebSocket` (browsers, Node 22+),
 * else the `ws` package loaded with a dynamic import, so browser bundles never include it.
 */
import {
  SUBPROTOCOL_CBOR,
  SUBPROTOCOL_JSON,
  WS_PATH,
  decodeFrame,
  encodeFrame,
  type ClientFrame,
  type WireFormat,
} from "../protocol/index.ts";

/** The subset of the WHATWG WebSocket API the SDK uses (browser WebSocket and `ws` both have it). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  readonly bufferedAmount: number;
  binaryType: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

let cachedImpl: Promise<WebSocketConstructor> | undefined;

/** The WebSocket constructor for this platform. */
export function webSocketImpl(): Promise<WebSocketConstructor> {
  const native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (native) return Promise.resolve(native);
  // A variable specifier keeps bundlers from following it into browser builds.
  const wsModule = "ws";
  cachedImpl ??= import(/* @vite-ignore */ wsModule).then(
    (mod: { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor }) => (mod.WebSocket ?? mod.default) as WebSocketConstructor,
  );
  return cachedImpl;
}

/** `ws://host:port` (or with a path prefix) → the SDK endpoint URL. Accepts http(s) too. */
export function endpointUrl(base: string): string {
  const url = new URL(base);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (!url.pathname.endsWith(WS_PATH)) url.pathname = url.pathname.replace(/\/+$/, "") + WS_PATH;
  return url.toString();
}

/**
 * Why a connection attempt failed, as far as the platform says: `refused` (nothing listens),
 * `dns` (the host name does not resolve), `timeout` (`connectTimeout` passed), `http` (the
 * server answered the upgrade with an HTTP status, in `status`), `tls` (certificate or
 * handshake), `protocol` (the server broke the WebSocket or Tributary protocol, or refused
 * the `hello`), `closed` (the connection opened and closed before `welcome`), `token`
 * (`getToken` threw), `network` (anything else; browsers give no detail, only this).
 */
export type ConnectFailureReason = "refused" | "dns" | "timeout" | "http" | "tls" | "protocol" | "closed" | "token" | "network";

export interface ConnectFailure {
  reason: ConnectFailureReason;
  message: string;
  /** HTTP status of a refused upgrade (`http`). */
  status?: number;
  /** The platform's error code (`ECONNREFUSED`, `ENOTFOUND`...), when it gives one. */
  errno?: string;
}

/** Classifies a WebSocket `error` event (the `ws` package carries the Node error; browsers carry nothing). */
export function connectFailureOf(ev: unknown): ConnectFailure {
  const err = ((ev as { error?: unknown })?.error ?? ev) as { code?: unknown; message?: unknown } | undefined;
  const errno = typeof err?.code === "string" ? err.code : undefined;
  const message = typeof err?.message === "string" ? err.message : typeof (ev as { message?: unknown })?.message === "string" ? String((ev as { message: string }).message) : "network error";
  const status = /Unexpected server response: (\d+)/.exec(message);
  const base = { message, ...(errno ? { errno } : {}) };
  if (status) return { ...base, reason: "http", status: Number(status[1]) };
  if (errno === "ECONNREFUSED") return { ...base, reason: "refused" };
  if (errno === "ENOTFOUND" || errno === "EAI_AGAIN" || errno === "EAI_NONAME") return { ...base, reason: "dns" };
  if (errno === "ETIMEDOUT") return { ...base, reason: "timeout" };
  if (/CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_VERIFY/.test(errno ?? "") || /certificate|tls|ssl/i.test(message)) return { ...base, reason: "tls" };
  if (/subprotocol|Sec-WebSocket|invalid (status|upgrade)|WebSocket frame/i.test(message)) return { ...base, reason: "protocol" };
  return { ...base, reason: "network" };
}

export interface TransportHandlers {
  onFrame(frame: unknown): void;
  onClose(code: number, reason: string): void;
  onDecodeError(err: unknown): void;
}

const OPEN = 1;

export class Transport {
  readonly url: string;
  readonly format: WireFormat;
  #socket: WebSocketLike | undefined;
  #closed = false;
  #opened = false;
  /** Why the connection failed, when the platform said (set before `onClose`). */
  failure: ConnectFailure | undefined;
  #handlers: TransportHandlers;

  constructor(url: string, format: WireFormat, handlers: TransportHandlers) {
    this.url = url;
    this.format = format;
    this.#handlers = handlers;
  }

  /** Opens the socket; resolves once open, rejects if it closes first or times out. */
  async open(Impl: WebSocketConstructor, timeoutMs: number): Promise<void> {
    const socket = new Impl(this.url, this.format === "cbor" ? SUBPROTOCOL_CBOR : SUBPROTOCOL_JSON);
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.failure ??= { reason: "timeout", message: `connect timeout after ${timeoutMs} ms` };
        reject(new Error(`connect timeout after ${timeoutMs} ms`));
        this.close(1000, "connect timeout");
      }, timeoutMs);
      socket.onopen = () => {
        clearTimeout(timer);
        this.#opened = true;
        resolve();
      };
      socket.onerror = (ev) => {
        // The close event follows and carries the outcome; keep the first cause for it.
        this.failure ??= connectFailureOf(ev);
      };
      socket.onclose = (ev) => {
        clearTimeout(timer);
        reject(new Error(`connection closed before open (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`));
        this.#finish(ev.code, ev.reason);
      };
      socket.onmessage = (ev) => this.#receive(ev.data);
    });
  }

  #receive(data: unknown): void {
    let frame: unknown;
    try {
      frame = decodeFrame(data as Uint8Array | ArrayBuffer | string, this.format);
    } catch (err) {
      this.#handlers.onDecodeError(err);
      return;
    }
    this.#handlers.onFrame(frame);
  }

  #finish(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const socket = this.#socket;
    if (socket) socket.onopen = socket.onmessage = socket.onclose = null;
    this.#handlers.onClose(code, reason);
  }

  /** The socket opened (the WebSocket handshake succeeded) at some point. */
  get opened(): boolean {
    return this.#opened;
  }

  get isOpen(): boolean {
    return !this.#closed && this.#socket?.readyState === OPEN;
  }

  /** Bytes queued in the socket, not yet handed to the network. */
  get bufferedAmount(): number {
    return this.#socket?.bufferedAmount ?? 0;
  }

  /** Sends one frame; false when the socket is not open (the caller keeps the frame). */
  send(frame: ClientFrame): boolean {
    if (!this.isOpen) return false;
    this.#socket!.send(encodeFrame(frame, this.format));
    return true;
  }

  /**
   * Closes the socket and reports `onClose` at once (not waiting for the closing handshake:
   * a lost server would make us wait forever). Codes other than 1000 and 3000-4999 are
   * not allowed by browsers; they are sent as 1000.
   */
  close(code = 1000, reason = ""): void {
    const socket = this.#socket;
    if (socket && socket.readyState <= OPEN) {
      try {
        socket.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
      } catch {
        /* already closing */
      }
    }
    this.#finish(code, reason);
  }
}
