/**
 * `npm run devices -- simulate --count 1000 --rate 10 --url mqtt://127.0.0.1:1883 [--qos 1] [--duration 30s]`
 *
 * Runs a fleet of simulated MQTT sensor devices (MQTT.js, one connection per device)
 * publishing JSON readings to `sensor-data/<device>/<metric>`, prints a progress line
 * (redrawn in place on a terminal, one line every 5 s otherwise) and a summary.
 */
import { parseArgs } from "node:util";
import { Fleet, type FleetStats } from "./fleet.ts";

const HELP = `Usage: npm run devices -- simulate [options]

Simulates a fleet of MQTT sensor devices publishing JSON readings
({"device","metric","value","seq","ts"}) to <prefix>/<device>/<metric>,
metrics temperature, humidity and battery in turn.

Options:
  --url <url>            broker URL: mqtt://host:port or ws://host:port/mqtt (default mqtt://127.0.0.1:1883)
  --count <n>            number of devices, one MQTT connection each (default 100)
  --rate <n>             readings per second per device (default 1)
  --qos <0|1|2>          QoS of every publish (default 0)
  --duration <time>      stop after e.g. 30s, 5m, 500ms (default: until Ctrl-C)
  --prefix <level>       first topic level = Tributary log topic (default sensor-data)
  --mqtt-version <4|5>   MQTT 3.1.1 (4) or 5 (default 4)
  --username <u>         MQTT username
  --password <p>         MQTT password (a token, when the broker requires auth)
  --connect-concurrency <n>  devices connecting at once during start-up (default 50)
  -h, --help             this help

Summary: sent, acked (QoS 0: written to the socket; QoS 1/2: PUBACK/PUBCOMP
received), errors, rates and ack latency. Exit code 1 when any error occurred.

Examples:
  npm run devices -- simulate --count 1000 --rate 10 --url mqtt://127.0.0.1:1883 --qos 1 --duration 30s
  npm run devices -- simulate --count 50 --url ws://127.0.0.1:8080/mqtt --mqtt-version 5
`;

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration "${text}" (use e.g. 500ms, 30s, 5m, 1h)`);
  const n = Number(m[1]);
  return n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got "${text}"`);
  return n;
}

const fmt = (n: number) => n.toLocaleString("en-US");

function progressLine(s: FleetStats, prev: { sent: number; acked: number; at: number }): string {
  const dt = Math.max(1, Date.now() - prev.at) / 1000;
  return (
    `[${(s.elapsedMs / 1000).toFixed(0).padStart(4)}s] devices ${fmt(s.connected)}/${fmt(s.devices)}` +
    ` | sent ${fmt(s.sent)} (${fmt(Math.round((s.sent - prev.sent) / dt))}/s)` +
    ` | acked ${fmt(s.acked)} (${fmt(Math.round((s.acked - prev.acked) / dt))}/s)` +
    ` | errors ${fmt(s.errors)}`
  );
}

function summary(s: FleetStats, qos: number): string {
  const secs = Math.max(0.001, s.elapsedMs / 1000);
  const lines = [
    "",
    "summary",
    `  duration      ${secs.toFixed(1)} s`,
    `  devices       ${fmt(s.devices)} (${fmt(s.connected)} connected at the end)`,
    `  sent          ${fmt(s.sent)}  (${fmt(Math.round(s.sent / secs))} msgs/s)`,
    `  acked         ${fmt(s.acked)}  (${fmt(Math.round(s.acked / secs))} msgs/s)${qos === 0 ? "  [QoS 0: written to the socket]" : ""}`,
    `  errors        ${fmt(s.errors)}`,
  ];
  if (s.ackLatency) lines.push(`  ack latency   p50 ${s.ackLatency.p50.toFixed(2)} ms, p99 ${s.ackLatency.p99.toFixed(2)} ms`);
  return lines.join("\n") + "\n";
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(HELP);
    return command ? 0 : 2;
  }
  if (command !== "simulate") {
    process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        url: { type: "string", default: "mqtt://127.0.0.1:1883" },
        count: { type: "string" },
        rate: { type: "string" },
        qos: { type: "string", default: "0" },
        duration: { type: "string" },
        prefix: { type: "string", default: "sensor-data" },
        "mqtt-version": { type: "string", default: "4" },
        username: { type: "string" },
        password: { type: "string" },
        "connect-concurrency": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  let fleet: Fleet;
  try {
    const qos = Number(values.qos);
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new Error(`--qos must be 0, 1 or 2, got "${values.qos}"`);
    const version = Number(values["mqtt-version"]);
    if (version !== 4 && version !== 5) throw new Error(`--mqtt-version must be 4 or 5`);
    const rate = values.rate === undefined ? 1 : Number(values.rate);
    if (!(rate > 0)) throw new Error(`--rate must be a positive number, got "${values.rate}"`);
    if (!/^(mqtts?|wss?):\/\//.test(values.url!)) throw new Error(`--url must start with mqtt://, mqtts://, ws:// or wss://`);
    fleet = new Fleet({
      url: values.url!,
      count: positiveInt("count", values.count, 100),
      rate,
      qos,
      durationMs: values.duration === undefined ? Number.POSITIVE_INFINITY : parseDuration(values.duration),
      prefix: values.prefix!,
      protocolVersion: version,
      username: values.username,
      password: values.password,
      connectConcurrency: positiveInt("connect-concurrency", values["connect-concurrency"], 50),
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }

  const o = fleet.options;
  process.stdout.write(
    `simulating ${fmt(o.count)} devices × ${o.rate}/s at QoS ${o.qos} → ${o.url} (${o.prefix}/<device>/<metric>)` +
      `${Number.isFinite(o.durationMs) ? ` for ${o.durationMs / 1000}s` : ", Ctrl-C to stop"}\n`,
  );
  const tty = process.stdout.isTTY === true;
  let prev = { sent: 0, acked: 0, at: Date.now() };
  let ticks = 0;
  const progress = setInterval(() => {
    const s = fleet.stats();
    const line = progressLine(s, prev);
    prev = { sent: s.sent, acked: s.acked, at: Date.now() };
    if (tty) process.stdout.write(`\r\x1b[2K${line}`);
    else if (++ticks % 5 === 0) process.stdout.write(`${line}\n`);
  }, 1000);
  const onSignal = () => fleet.stop();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const stats = await fleet.run();
  clearInterval(progress);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  if (tty) process.stdout.write("\n");
  process.stdout.write(summary(stats, o.qos));
  if (stats.errors > 0) process.stdout.write(`  last error    ${fleet.lastError}\n`);
  return stats.errors > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
