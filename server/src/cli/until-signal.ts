import { EXIT } from "./exit-codes.ts";

/**
 * Runs until SIGTERM or SIGINT, then `close()`s and resolves with the exit code: 0 once
 * closed; 1 when closing fails, takes longer than `timeoutMs`, or a second signal arrives
 * meanwhile (the operator insists). Each failure is said on stderr, naming `what`.
 */
export function untilSignal(what: string, close: () => Promise<void>, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`tributary: ${signal} again during shutdown, exiting now\n`);
        resolve(EXIT.FAILURE);
        return;
      }
      stopping = true;
      const timer = setTimeout(() => {
        process.stderr.write(`tributary: ${what} did not finish within ${timeoutMs} ms\n`);
        resolve(EXIT.FAILURE);
      }, timeoutMs);
      close().then(
        () => {
          clearTimeout(timer);
          resolve(EXIT.OK);
        },
        (err: unknown) => {
          clearTimeout(timer);
          process.stderr.write(`tributary: ${what} failed: ${err instanceof Error ? err.message : String(err)}\n`);
          resolve(EXIT.FAILURE);
        },
      );
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
