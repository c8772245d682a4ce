/**
 * `tributary start`: loads and validates the configuration (flags > env > file >
 * defaults, see docs/configuration.md), starts a node, prints exactly one stdout line
 *
 *   tributary listening http=<host>:<port> mqtt=<host>:<port>     (mqtt=off when disabled)
 *
 * or, with TLS configured (the HTTP port then serves HTTPS/WSS only):
 *
 *   tributary listening http=off mqtt=<host>:<port> https=<host>:<port> mqtts=<host>:<port>
 *
 * (mqtt=off with tls.require or MQTT disabled; mqtts=off with MQTT disabled)
 * once it accepts traffic, and on SIGTERM/SIGINT shuts down cleanly (gateways closed,
 * log flushed and fsynced) and exits 0. Invalid config → exit 2; failure to start or to
 * shut down → exit 1. A second signal during shutdown exits 1 at once. SIGHUP re-reads
 * the auth files (JWT keys, JWKS, password file, ACL file) and the TLS certificate; a file
 * that does not parse is logged and counted, and its previous content stays in force.
 *
 * With no authentication configured, a non-loopback --host is refused (exit 2, saying
 * what to configure) unless --allow-anonymous, which logs a warning at start.
 */
import { Option, type Command } from "commander";
import { CONFIG_FIELDS } from "../config/config-schema.ts";
import { loadConfig } from "../config/load-config.ts";
import { startNode } from "../node.ts";
import { untilSignal } from "./until-signal.ts";

/** Longest a clean shutdown may take before the process gives up with exit 1. */
const SHUTDOWN_TIMEOUT_MS = 30_000;

export function registerStartCommand(program: Command): void {
  const command = program
    .command("start")
    .description("Run a Tributary node (HTTP + WebSocket + MQTT) until SIGTERM/SIGINT.")
    .option("--config <file>", "JSON config file (env TRIBUTARY_CONFIG)");
  const pathOfAttribute = new Map<string, string>();
  for (const field of CONFIG_FIELDS) {
    // Booleans may be given bare (`--allow-anonymous` = `--allow-anonymous true`).
    const isBoolean = field.expected.startsWith("a boolean");
    const option = new Option(`${field.flag} ${isBoolean ? "[value]" : "<value>"}`, `${field.doc} [${field.path}, env ${field.env}]`);
    if (isBoolean) option.preset("true");
    pathOfAttribute.set(option.attributeName(), field.path);
    command.addOption(option);
  }
  // Short form of --redis-url: `tributary start --engine redis --redis redis://host:6379`.
  command.addOption(new Option("--redis <url>", "same as --redis-url"));
  command.addHelpText("after", "\nValues: durations like 250ms/30s/5m/12h/7d, sizes like 64KiB/16MiB, booleans true/false.\nEvery option, env var and default: docs/configuration.md");

  command.action(async (options: Record<string, string | undefined>) => {
    const flags: Record<string, string | undefined> = {};
    for (const [attribute, path] of pathOfAttribute) flags[path] = options[attribute];
    flags["redis.url"] ??= options.redis;
    const { config, warnings } = loadConfig({ configFile: options.config, env: process.env, flags });
    for (const warning of warnings) process.stderr.write(`tributary: warning: ${warning}\n`);

    const node = await startNode(config);
    const endpoint = (port: number) => (port > 0 ? `${config.host}:${port}` : "off");
    const tls = node.tls ? ` https=${endpoint(node.httpPort)} mqtts=${endpoint(node.mqttsPort)}` : "";
    process.stdout.write(`tributary listening http=${node.tls ? "off" : endpoint(node.httpPort)} mqtt=${endpoint(node.mqttPort)}${tls}\n`);

    // Failures are logged by the auth layer (auth.reload_failed) and counted; nothing to add here.
    process.on("SIGHUP", () => {
      void node.auth.reload().catch((err: unknown) => process.stderr.write(`tributary: auth reload failed: ${err instanceof Error ? err.message : String(err)}\n`));
      // Failures are logged (tls.reload_failed) and the previous certificate stays; reload() itself does not reject.
      void node.tls?.reload();
    });
    const code = await untilSignal("shutdown", () => node.close(), SHUTDOWN_TIMEOUT_MS);
    process.exitCode = code;
  });
}
