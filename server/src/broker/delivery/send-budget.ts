export interface SendBudgetLimits {
  /** Pause delivery when the connection's outbound buffer passes this many bytes... */
  maxBufferedBytes: number;
  /** ...and disconnect it as a slow consumer if it stays paused this long. */
  slowConsumerGraceMs: number;
}

/**
 * The byte budget of one connection's outbound buffer, the same policy for every protocol
 * (WebSocket, MQTT over TCP or WebSocket): delivery pauses once the buffer (measured by
 * the transport) passes `maxBufferedBytes`, resumes when it drained below half of it, and a
 * connection that stays paused for `slowConsumerGraceMs` is disconnected with a reason
 * (`onSlow`; the gateway says it in its protocol: WebSocket `disconnect` SLOW_CONSUMER,
 * MQTT 5 DISCONNECT 0x97, MQTT 3.1.1 close) instead of holding memory for it.
 *
 * Records budgets (WebSocket credit, MQTT in-flight window) sit on top of this one in the
 * consumers; both end in `DeliveryConsumer.whenReady`, so a paused consumer's cursors stop
 * reading the log and nothing is queued for it.
 */
export class SendBudget {
  readonly limits: SendBudgetLimits;
  #paused = false;
  #closed = false;
  #graceTimer: NodeJS.Timeout | null = null;
  #pollTimer: NodeJS.Timeout | null = null;
  #waiters: (() => void)[] = [];
  readonly #measure: () => number;
  readonly #onSlow: (reason: string) => void;
  readonly #pollMs: number;
  readonly #onPause: (() => void) | undefined;

  /**
   * `measure`: bytes buffered right now. `pollMs`: while paused, re-measure this often (for
   * transports whose drain event is not reliable); 0 = rely on `drained()` calls only.
   * `onPause`: told each time delivery pauses (`tributary_backpressure_pauses_total`).
   */
  constructor(limits: SendBudgetLimits, measure: () => number, onSlow: (reason: string) => void, pollMs = 0, onPause?: () => void) {
    this.limits = limits;
    this.#measure = measure;
    this.#onSlow = onSlow;
    this.#pollMs = pollMs;
    this.#onPause = onPause;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** True when delivery may write now. */
  get open(): boolean {
    return !this.#paused && !this.#closed;
  }

  /** After a write: pauses when `buffered` (default: a fresh measure) is over the limit. Returns `open`. */
  check(buffered = this.#measure()): boolean {
    if (this.#closed) return false;
    if (!this.#paused && buffered > this.limits.maxBufferedBytes) this.#pause();
    return !this.#paused;
  }

  /** The transport drained some: resumes once the buffer is under half the limit. */
  drained(): void {
    if (!this.#paused || this.#closed) return;
    if (this.#measure() > this.limits.maxBufferedBytes / 2) return;
    this.#paused = false;
    this.#clearTimers();
    this.#wake();
  }

  /** Resolves when delivery may write again, or the connection closed. */
  whenOpen(): Promise<void> {
    if (!this.#paused || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The connection is gone: timers stop, waiters resolve. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimers();
    this.#wake();
  }

  #pause(): void {
    this.#paused = true;
    this.#onPause?.();
    const { maxBufferedBytes, slowConsumerGraceMs } = this.limits;
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = null;
      if (this.#closed || !this.#paused) return;
      this.drained();
      if (this.#paused) this.#onSlow(`send buffer over ${maxBufferedBytes} bytes for ${slowConsumerGraceMs} ms`);
    }, slowConsumerGraceMs);
    this.#graceTimer.unref();
    if (this.#pollMs > 0) this.#poll();
  }

  #poll(): void {
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = null;
      if (!this.#paused || this.#closed) return;
      this.drained();
      if (this.#paused) this.#poll();
    }, this.#pollMs);
    this.#pollTimer.unref();
  }

  #clearTimers(): void {
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    this.#graceTimer = this.#pollTimer = null;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
