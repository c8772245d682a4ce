/** Backoff helpers of the connect runtime. */

/** Thrown inside a task when it is being stopped (pause, restart, shutdown): not a failure. */
export class Stopped extends Error {
  override readonly name = "Stopped";
  constructor() {
    super("the connector is stopping");
  }
}

/** Full-jitter exponential delay for `attempt` (1-based): random in [0, min(max, base·2^(attempt-1))], at least 1 ms. */
export function retryDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(30, attempt - 1));
  return Math.max(1, Math.floor(random() * ceiling));
}

/** Waits `ms`, or throws Stopped as soon as `signal` aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new Stopped());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Stopped());
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
