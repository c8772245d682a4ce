/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"; centrifuge-js `backoff`): the delay before reconnect attempt `attempt` (0-based)
 * is uniform in [0, min(maxDelay, minDelay * 2^attempt)]. Full jitter spreads a herd of
 * clients that lost the same node, so they do not all come back in the same millisecond;
 * the growing ceiling keeps a client that keeps failing from hammering the server.
 */
export function backoff(attempt: number, minDelay: number, maxDelay: number, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(attempt, minDelay, maxDelay);
  return Math.min(ceiling, Math.floor(random() * (ceiling + 1)));
}

/** The upper bound of `backoff(attempt, ...)`: min(maxDelay, minDelay * 2^attempt). */
export function backoffCeiling(attempt: number, minDelay: number, maxDelay: number): number {
  return Math.max(0, Math.min(maxDelay, minDelay * 2 ** Math.min(Math.max(attempt, 0), 40)));
}
