/**
 * Waiting in tests: on an event or a condition, never on time ("tests wait on events, not
 * on time": a fixed sleep is a deadline, never a synchronisation). Every wait has a
 * deadline, and the deadline is the only place a timer appears: a timeout fails the test
 * with `what` in the message, it never decides that something "has settled".
 *
 * To prove that something does NOT happen ("no duplicate arrives"), wait for a positive
 * marker that must come after it (a sentinel record in the same partition, a round trip on
 * the same connection) and then assert: `flushLog` / `roundTrip` (mqtt-node.ts),
 * `publishMarks` + `WsTestClient.waitForMarks` / `WsTestClient.roundTrip` (ws-test-client.ts),
 * `publishMarks` + `hasMarks` (sdk-node.ts, through the SDK).
 */

export interface WaitOptions {
  /** Deadline; default 10 s. */
  timeoutMs?: number;
  /** Named in the timeout error: what the test was waiting for. */
  what?: string;
  /** Poll interval of `waitFor` (default 10 ms); not a synchronisation, only how often to look. */
  intervalMs?: number;
}

/** Resolves once `condition()` is true (polled); rejects at the deadline naming `what`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<void> {
  const { timeoutMs = 10_000, what = "condition", intervalMs = 10 } = options;
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** `promise`, or a rejection naming `what` if it has not settled within `timeoutMs` (a deadline). */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Retries `attempt` until it resolves (e.g. rebinding a port a stopped process still holds,
 * or a publish while a backend is away). An error `retryIf` refuses is thrown at once; at the
 * deadline the last error is thrown.
 */
export async function retryUntilOk<T>(attempt: () => Promise<T>, options: WaitOptions & { retryIf?: (err: unknown) => boolean } = {}): Promise<T> {
  const { retryIf = () => true, ...wait } = options;
  let result: { value: T } | undefined;
  let last: unknown;
  try {
    await waitFor(
      async () => {
        try {
          result = { value: await attempt() };
          return true;
        } catch (err) {
          last = err;
          if (!retryIf(err)) throw err;
          return false;
        }
      },
      { intervalMs: 50, ...wait },
    );
  } catch (err) {
    throw last ?? err;
  }
  return result!.value;
}
