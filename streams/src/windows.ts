/**
 * Time windows over event time: tumbling (size = advance) and hopping (advance < size),
 * aligned to the epoch like Kafka's TimeWindows: a window is `[start, start + size)` with
 * `start` a multiple of `advance`; windows that would start before 0 are left out.
 *
 * Grace: a window accepts records until the stream time (the largest timestamp its task
 * has seen) reaches `end + grace`; then it is closed, its final result is emitted once,
 * and later records for it are dropped as late.
 */
import { StreamsError } from "./errors.ts";

export interface Window {
  /** Inclusive, ms since the epoch. */
  start: number;
  /** Exclusive. */
  end: number;
}

export interface TimeWindows {
  readonly sizeMs: number;
  readonly advanceMs: number;
  readonly graceMs: number;
}

export interface WindowOptions {
  /** How long after its end a window still accepts out-of-order records, ms (default 0). */
  grace?: number;
}

/** Fixed-size, non-overlapping windows: every record falls in exactly one. */
export function tumbling(sizeMs: number, options: WindowOptions = {}): TimeWindows {
  return hopping(sizeMs, sizeMs, options);
}

/** Fixed-size windows that start every `advanceMs` (≤ size): a record falls in ceil(size / advance) of them. */
export function hopping(sizeMs: number, advanceMs: number, options: WindowOptions = {}): TimeWindows {
  const graceMs = options.grace ?? 0;
  for (const [name, v] of [["size", sizeMs], ["advance", advanceMs]] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new StreamsError("INVALID_TOPOLOGY", `window ${name} must be a positive integer of ms, got ${v}`);
  }
  if (advanceMs > sizeMs) throw new StreamsError("INVALID_TOPOLOGY", `window advance (${advanceMs} ms) must not exceed its size (${sizeMs} ms)`);
  if (!Number.isSafeInteger(graceMs) || graceMs < 0) throw new StreamsError("INVALID_TOPOLOGY", `window grace must be a non-negative integer of ms, got ${graceMs}`);
  return Object.freeze({ sizeMs, advanceMs, graceMs });
}

/** The windows a record at `timestamp` belongs to, oldest first. */
export function windowsFor(windows: TimeWindows, timestamp: number): Window[] {
  const out: Window[] = [];
  const lastStart = Math.floor(timestamp / windows.advanceMs) * windows.advanceMs;
  for (let start = lastStart; start > timestamp - windows.sizeMs && start >= 0; start -= windows.advanceMs) {
    out.push({ start, end: start + windows.sizeMs });
  }
  return out.reverse();
}

/** True once a window ending at `end` no longer accepts records at stream time `streamTime`. */
export function isClosed(windows: TimeWindows, end: number, streamTime: number): boolean {
  return end + windows.graceMs <= streamTime;
}
