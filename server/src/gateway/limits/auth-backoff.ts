/**
 * Failed authentications by IP address: the answer to a client that keeps failing is
 * delayed more with each failure, then refused outright for a while, like fail2ban in
 * the broker (Mosquitto has no such thing; EMQX's "flapping detect" is the nearest).
 *
 * - Failure n (n = 1, 2, …, counted while failures are less than `blockMs` apart) is
 *   answered after `delayFor(n)`: nothing for the first two, then 250 ms doubling up to 4 s.
 * - The `maxFailures`-th failure blocks the address for `blockMs`: every attempt is refused
 *   at once, before credentials are checked (no password hashing spent on it).
 * - After the block (or `blockMs` without a failure) the address starts again from zero.
 *   A success does not reset the count (an attacker with one valid account could
 *   otherwise interleave successes).
 *
 * Bounded: at most `maxEntries` addresses, least recently failed first out; entries older
 * than `blockMs` are dropped when the table is full.
 */
export interface AuthBackoffOptions {
  maxFailures: number;
  blockMs: number;
  maxEntries: number;
}

interface Failures {
  count: number;
  last: number;
  blockedUntil: number;
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 4000;
/** Failures answered without delay (a mistyped password, then the right one). */
const FREE_FAILURES = 2;

export class AuthBackoff {
  readonly #options: AuthBackoffOptions;
  readonly #byIp = new Map<string, Failures>();

  constructor(options: AuthBackoffOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#byIp.size;
  }

  /** Ms until `ip` may try again, or 0 when it is not blocked. */
  blockedFor(ip: string, now: number): number {
    const entry = this.#byIp.get(ip);
    if (!entry) return 0;
    if (entry.blockedUntil > now) return entry.blockedUntil - now;
    if (entry.blockedUntil > 0 || now - entry.last >= this.#options.blockMs) this.#byIp.delete(ip); // served its time, or forgotten
    return 0;
  }

  /** Records a failure of `ip`: how long to delay its refusal, and whether it is now blocked. */
  failed(ip: string, now: number): { delayMs: number; blocked: boolean } {
    let entry = this.#byIp.get(ip);
    if (entry && (entry.blockedUntil > 0 ? entry.blockedUntil <= now : now - entry.last >= this.#options.blockMs)) entry = undefined;
    if (entry) this.#byIp.delete(ip);
    else {
      if (this.#byIp.size >= this.#options.maxEntries) this.#evict(now);
      entry = { count: 0, last: now, blockedUntil: 0 };
    }
    this.#byIp.set(ip, entry); // most recent last
    entry.count++;
    entry.last = now;
    if (entry.count >= this.#options.maxFailures) {
      entry.blockedUntil = now + this.#options.blockMs;
      return { delayMs: 0, blocked: true };
    }
    return { delayMs: delayFor(entry.count), blocked: false };
  }

  #evict(now: number): void {
    for (const [ip, entry] of this.#byIp) {
      if (Math.max(entry.blockedUntil, entry.last + this.#options.blockMs) <= now) this.#byIp.delete(ip);
    }
    let drop = this.#byIp.size - this.#options.maxEntries + Math.ceil(this.#options.maxEntries / 10);
    for (const ip of this.#byIp.keys()) {
      if (drop-- <= 0) break;
      this.#byIp.delete(ip);
    }
  }
}

/** Delay of the refusal of failure `n`. */
export function delayFor(n: number): number {
  if (n <= FREE_FAILURES) return 0;
  return Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (n - FREE_FAILURES - 1));
}
