/**
 * A token bucket: `rate` tokens per second, holding at most `burst`. Time is passed in
 * (ms, any monotonic-enough clock) so tests and tables can drive it without timers.
 *
 * Guarantees: `take` either removes all `n` tokens or none; the refusal says how long until
 * `n` tokens are there (for Retry-After). A request larger than the bucket (`n > burst`)
 * is let through when the bucket is full and leaves it in debt, so a single large record
 * is slowed, never refused forever.
 */
export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #at: number;

  constructor(rate: number, burst: number, now: number) {
    this.rate = rate;
    this.burst = Math.max(burst, 1);
    this.#tokens = this.burst;
    this.#at = now;
  }

  /** Takes `n` tokens: 0 when taken, else the ms to wait before they would be there (nothing taken). */
  take(n: number, now: number): number {
    this.#refill(now);
    const need = Math.min(n, this.burst);
    if (this.#tokens >= need) {
      this.#tokens -= n;
      return 0;
    }
    return Math.ceil(((need - this.#tokens) / this.rate) * 1000);
  }

  /** Is the bucket full at `now` (an idle bucket that a table may drop without changing any answer)? */
  full(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.burst;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.rate) / 1000);
      this.#at = now;
    }
  }
}
