/** The options every client command shares (`--url`, `--token`), read once. */
import { InvalidArgumentError, Option, type Command } from "commander";
import { ApiClient, DEFAULT_URL, parseServerUrl } from "./api-client.ts";

/** Adds `--url` and `--token` (sent as `Authorization: Bearer`; env TRIBUTARY_TOKEN, never echoed in help). */
export function addUrlOption(command: Command): Command {
  return command
    .addOption(
      new Option("--url <url>", "server URL (env TRIBUTARY_URL)").default(process.env.TRIBUTARY_URL || DEFAULT_URL, process.env.TRIBUTARY_URL ? "$TRIBUTARY_URL" : DEFAULT_URL),
    )
    .addOption(new Option("--token <jwt>", "token sent as Authorization: Bearer, for nodes with auth (env TRIBUTARY_TOKEN)"));
}

export function clientFrom(options: { url: string; token?: string }): ApiClient {
  const token = options.token || process.env.TRIBUTARY_TOKEN || undefined;
  return new ApiClient(parseServerUrl(options.url), token);
}

/** Commander argParser for a non-negative integer option; a bad value is a usage error (exit 2). */
export function intArg(name: string, min = 0) {
  return (raw: string): number => {
    const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name}: expected an integer >= ${min}, got "${raw}"`);
    return n;
  };
}
