/**
 * `tributary connect --config connectors.yaml [--url <node>] [--listen host:port]` runs the
 * connect process (server/src/connect/, docs/connect.md) until SIGTERM/SIGINT, printing one
 * stdout line once its connectors are started:
 *
 *   tributary connect listening http://127.0.0.1:8083 connectors=<n>
 *
 * `tributary connect status [name] | pause <name> | resume <name> | restart <name>` talk to
 * a running connect process's API (`--connect-url`, env TRIBUTARY_CONNECT_URL, default
 * http://127.0.0.1:8083). Exit codes as every command (exit-codes.ts): 2 for a bad config
 * (INVALID_CONFIG), 3 for an unknown connector, 1 when the process cannot be reached.
 */
import { isErrorCode } from "@tributary/client/codes";
import { Option, type Command } from "commander";
import type { ConnectorStatus } from "../connect/connect-runtime.ts";
import { TributaryError } from "../errors.ts";
import { createLogger, type LogLevel } from "../logger.ts";
import { DEFAULT_URL, parseServerUrl } from "./api-client.ts";
import { intArg } from "./client-options.ts";
import { untilSignal } from "./until-signal.ts";

const DEFAULT_CONNECT_URL = "http://127.0.0.1:8083";
const SHUTDOWN_TIMEOUT_MS = 30_000;

function parseListen(raw: string): { host: string; port: number } {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(raw);
  if (!m || Number(m[2]) > 65535) throw new TributaryError("BAD_REQUEST", `--listen: expected host:port or a port, like 127.0.0.1:8083, got "${raw}"`);
  return { host: m[1] || "127.0.0.1", port: Number(m[2]) };
}

async function callConnect(base: string, method: string, path: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(parseServerUrl(base) + path, { method });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new TributaryError("UNAVAILABLE", `cannot reach the connect process at ${base} (${cause?.code ?? (err as Error).message}); is \`tributary connect\` running? Use --connect-url or TRIBUTARY_CONNECT_URL`, { url: base }, { cause: err });
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined; // reported below with the status
  }
  if (!response.ok) {
    const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    if (error && isErrorCode(error.code)) throw new TributaryError(error.code, String(error.message));
    throw new TributaryError("INTERNAL", `the connect process answered ${method} ${path} with HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
  return json;
}

function printStatus(list: ConnectorStatus[]): string {
  const rows = [["CONNECTOR", "TYPE", "STATE", "TOPICS", "ERROR"], ...list.map((s) => [s.name, s.type, s.state, s.topics.join(","), s.error ?? "-"])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}

function connectUrlOption(): Option {
  return new Option("--connect-url <url>", "the connect process's API (env TRIBUTARY_CONNECT_URL)").default(process.env.TRIBUTARY_CONNECT_URL || DEFAULT_CONNECT_URL);
}

export function registerConnectCommand(program: Command): void {
  const connect = program
    .command("connect")
    .description("Run connectors (PostgreSQL, webhook, MQTT bridge, NDJSON files) against a node, or manage a running connect process (status, pause, resume, restart). See docs/connect.md.")
    .option("--config <file>", "connectors.yaml")
    .addOption(new Option("--url <url>", "the node's HTTP URL (env TRIBUTARY_URL; default the config's url, else " + DEFAULT_URL + ")"))
    .addOption(new Option("--token <jwt>", "token for a node with auth: an identity allowed to consume, produce and create the connectors' topics (env TRIBUTARY_TOKEN)"))
    .option("--listen <host:port>", "the connect API and /metrics (default the config's listen, else 127.0.0.1:8083; port 0 picks one)")
    .option("--session-timeout <ms>", "consumer-group session timeout of the sinks, ms (default the node's)", intArg("--session-timeout", 50))
    .addOption(new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error"]).default("info"));

  connect.action(async (o: { config?: string; url?: string; token?: string; listen?: string; sessionTimeout?: number; logLevel: LogLevel }) => {
    if (!o.config) throw new TributaryError("BAD_REQUEST", "tributary connect needs --config <connectors.yaml> (or a subcommand: status, pause, resume, restart)");
    // Loaded on use: `tributary start` and the other commands never compile the connect runtime.
    const [{ loadConnectConfig }, { startConnect }] = await Promise.all([import("../connect/connect-config.ts"), import("../connect/connect-process.ts")]);
    const config = loadConnectConfig(o.config);
    const url = parseServerUrl(o.url ?? process.env.TRIBUTARY_URL ?? config.url ?? DEFAULT_URL);
    const listen = o.listen !== undefined ? parseListen(o.listen) : config.listen;
    const logger = createLogger(o.logLevel);
    const running = await startConnect({ config, url, token: o.token || process.env.TRIBUTARY_TOKEN || undefined, listen, logger, sessionTimeoutMs: o.sessionTimeout });
    process.stdout.write(`tributary connect listening ${running.apiUrl} connectors=${config.connectors.length}\n`);
    process.exitCode = await untilSignal("connect shutdown", () => running.close(), SHUTDOWN_TIMEOUT_MS);
  });

  connect
    .command("status [name]")
    .description("Show every connector's state (or one's) from a running connect process.")
    .addOption(connectUrlOption())
    .option("--json", "print JSON")
    .action(async (name: string | undefined, o: { connectUrl: string; json?: boolean }) => {
      const reply = await callConnect(o.connectUrl, "GET", name ? `/connectors/${encodeURIComponent(name)}` : "/connectors");
      const list = name ? [reply as ConnectorStatus] : (reply as { connectors: ConnectorStatus[] }).connectors;
      process.stdout.write(o.json ? JSON.stringify(reply) + "\n" : printStatus(list));
    });

  for (const [action, what] of [
    ["pause", "Stop a connector, keeping its position (a sink's group commit, a source's saved position)."],
    ["resume", "Start a paused connector again from its position."],
    ["restart", "Stop and start a connector (also one that failed)."],
  ] as const) {
    connect
      .command(`${action} <name>`)
      .description(what)
      .addOption(connectUrlOption())
      .option("--json", "print the connector's status as JSON")
      .action(async (name: string, o: { connectUrl: string; json?: boolean }) => {
        const status = (await callConnect(o.connectUrl, "POST", `/connectors/${encodeURIComponent(name)}/${action}`)) as ConnectorStatus;
        process.stdout.write(o.json ? JSON.stringify(status) + "\n" : printStatus([status]));
      });
  }
}
