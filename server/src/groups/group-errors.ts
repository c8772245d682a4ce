import { TributaryError, toTributaryError } from "../errors.ts";
import { createLogger } from "../logger.ts";
import type { GroupBackgroundTask, GroupInstrumentation } from "./instrumentation.ts";

/**
 * Where the group layer reports failures that no caller sees, or that it must log with
 * context: `group` is the group (or presence topic) concerned, null when the work spans
 * several (the session-timeout sweep); `task` names the work (the metric's label).
 */
export type GroupErrorHandler = (err: unknown, group: string | null, task: GroupBackgroundTask) => void;

/** Code and message of anything thrown, for log fields and instrumentation. */
export function describeError(err: unknown): { code: string; message: string } {
  const e = toTributaryError(err);
  return { code: e.code, message: e.message };
}

/**
 * A failed call to the group state store as the caller sees it: a TributaryError passes
 * through (the store mapped it already), anything else becomes UNAVAILABLE (retriable)
 * naming the group and the operation, with the original as `cause`.
 */
export function stateStoreError(err: unknown, group: string | null, operation: string): TributaryError {
  if (err instanceof TributaryError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const what = group === null ? "the group state store" : `the state of group "${group}"`;
  return new TributaryError("UNAVAILABLE", `cannot ${operation} ${what}: ${message}; retry`, { ...(group === null ? {} : { group }), operation }, { cause: err });
}

const stderrLog = createLogger("warn");

/** The default handler of a part built without an owner to log to: one warn line per failure, named `event`. */
export function warnOnStderr(event: string): GroupErrorHandler {
  return (err, group, task) => stderrLog.warn(event, { group, task, ...describeError(err) });
}

/** Reports a failure to `handler` (the owner's logger and counter) and as a `group.error` instrumentation event. */
export function reportGroupError(handler: GroupErrorHandler, instrumentation: GroupInstrumentation, err: unknown, group: string | null, task: GroupBackgroundTask): void {
  try {
    handler(err, group, task);
  } catch {
    // the handler is the logger: there is nowhere left to report its own failure
  }
  instrumentation.emit("group.error", { group, task, ...describeError(err) });
}
