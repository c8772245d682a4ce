/**
 * The `tributary` command: parses the command line (commander) and dispatches to one file
 * per command group. Exit codes are in exit-codes.ts and docs/cli.md; errors go to stderr
 * as `tributary: <message> [CODE]`, data to stdout.
 */
import { Command, CommanderError } from "commander";
import { isTributaryError, toTributaryError } from "../errors.ts";
import { registerClusterCommand } from "./cluster-command.ts";
import { registerConnectCommand } from "./connect-command.ts";
import { registerConsumeCommand } from "./consume-command.ts";
import { EXIT, exitCodeOf, formatUsageError } from "./exit-codes.ts";
import { registerGroupsCommand } from "./groups-command.ts";
import { registerPasswdCommand } from "./passwd-command.ts";
import { registerProduceCommand } from "./produce-command.ts";
import { registerStartCommand } from "./start-command.ts";
import { registerTokenCommand } from "./token-command.ts";
import { registerTopicsCommand } from "./topics-command.ts";

export function buildProgram(): Command {
  const program = new Command("tributary")
    .description("Tributary: real-time pub/sub on a Kafka-style partitioned log.\nRun `tributary <command> --help` for a command's options; exit codes are in docs/cli.md.")
    .version("0.1.0")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      writeOut: (s) => process.stdout.write(s),
      // Commander's parse errors in the documented form, like every other error.
      outputError: (s, write) => write(formatUsageError(s)),
    });
  registerStartCommand(program);
  registerTopicsCommand(program);
  registerProduceCommand(program);
  registerConsumeCommand(program);
  registerGroupsCommand(program);
  registerClusterCommand(program);
  registerTokenCommand(program);
  registerPasswdCommand(program);
  registerConnectCommand(program);
  return program;
}

/** Runs the CLI and returns the exit code (commands that serve or follow resolve when done). */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every parse error is a usage error (commander already printed it).
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return EXIT.OK;
      return EXIT.USAGE;
    }
    const error = toTributaryError(err);
    process.stderr.write(`tributary: ${error.message} [${error.code}]\n`);
    if (!isTributaryError(err)) process.stderr.write(`${(err as Error)?.stack ?? ""}\n`);
    return exitCodeOf(error.code);
  }
}

// Ignore EPIPE on stdout (e.g. `tributary consume t | head -1`): the reader is gone, we are done.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(EXIT.OK);
  throw err;
});

/** Resolves once everything written to `stream` so far is handed to the OS (pipes may be async when full). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write("", () => resolve());
  });
}

const code = await runCli(process.argv);
// process.exit() drops pending pipe writes: flush first (`consume | slow-reader` must get every line).
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
