/**
 * `npm run bench -- connections [--ws 50000] [--mqtt 50000] [--sources 16] [--rate 1000] [--seconds 10] [--no-mosquitto]`
 *
 * Connection scale: how many idle connections one node holds and what each costs.
 * 1. Raises this process's open-file limit (prlimit, needs root or CAP_SYS_RESOURCE;
 *    children inherit it), so the node's `limits.maxConnections` is not lowered below the
 *    count, and the load generators can hold their ends.
 * 2. Starts a node (file engine, loopback), reads its idle RSS, then opens `--ws` idle
 *    WebSocket SDK connections (upgrade + hello) and `--mqtt` idle MQTT 3.1.1 connections
 *    from 127.0.0.2 … 127.0.0.(1+sources) (test/bench/connections-client.ts, one process
 *    each), reading RSS after each: bytes per connection above the baseline.
 * 3. With all of them held: an SDK subscriber receives `--rate` msg/s for `--seconds`
 *    published by an SDK producer (publish → deliver p50/p99), and /healthz answer time.
 * 4. The same MQTT connection count against Mosquitto 2.0 in the same run.
 *
 * Targets (issue 11): 100,000 idle connections under 1 GB RSS; ≤ 4 KB per WS and ≤ 8 KB per
 * MQTT connection above the baseline; p99 < 10 ms at 1,000 msg/s. Traffic goes to loopback only.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@tributary/client";
import { startTributary, waitForLine } from "./bench-process.ts";

const WARM_UP = 100;
const CLIENT = fileURLToPath(new URL("./connections-client.ts", import.meta.url));

interface Options {
  ws: number;
  mqtt: number;
  sources: number;
  rate: number;
  seconds: number;
  mosquitto: boolean;
}

function parse(args: string[]): Options {
  const o: Options = { ws: 50_000, mqtt: 50_000, sources: 16, rate: 1000, seconds: 10, mosquitto: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--no-mosquitto") o.mosquitto = false;
    else if (a === "--ws" || a === "--mqtt" || a === "--sources" || a === "--rate" || a === "--seconds") {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer`);
      o[a.slice(2) as "ws"] = v;
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

/** Resident set size of `pid` in bytes (Linux /proc). */
function rss(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line!.split(/\s+/)[1]) * 1024;
}

/** RSS once it stops moving (two reads 500 ms apart within 1 %), at most ~10 s. */
async function settledRss(pid: number): Promise<number> {
  let last = rss(pid);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const now = rss(pid);
    if (Math.abs(now - last) <= last * 0.01) return now;
    last = now;
  }
  return last;
}

function raiseFdLimit(wanted: number): number {
  try {
    execFileSync("prlimit", ["--pid", String(process.pid), `--nofile=${wanted}:${wanted}`], { stdio: "pipe" });
  } catch (err) {
    process.stdout.write(`note: could not raise the open-file limit to ${wanted} (${(err as Error).message.split("\n")[0]}); counts are capped by the current limit\n`);
  }
  const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"))!;
  return Number(line.trim().split(/\s+/)[3]);
}

interface Holder {
  opened: number;
  failed: number;
  child: ChildProcess;
  close(): Promise<void>;
}

async function hold(kind: "ws" | "mqtt", port: number, count: number, sources: number): Promise<Holder> {
  const child = spawn(process.execPath, ["--conditions=tributary-source", "--import", "tsx", CLIENT, kind, String(port), String(count), String(sources)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const started = Date.now();
  child.stdout!.on("data", (d: Buffer) => {
    for (const line of d.toString().split("\n")) if (line.startsWith("progress") || line.startsWith("error")) process.stdout.write(`  ${kind}: ${line} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  });
  const m = count === 0 ? (["", "0", "0"] as unknown as RegExpExecArray) : await waitForLine(child, /ready (\d+) (\d+)/, `${kind} load generator`, 600_000);
  return {
    opened: Number(m[1]),
    failed: Number(m[2]),
    child,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.stdin!.end();
      }),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** SDK producer → SDK subscriber at `rate` msg/s for `seconds`: publish → deliver latency, ms. */
async function latency(httpPort: number, rate: number, seconds: number): Promise<{ p50: number; p99: number; received: number; sent: number }> {
  const url = `ws://127.0.0.1:${httpPort}`;
  const sub = connect(url);
  const pub = connect(url);
  const sentAt = new Map<number, number>();
  const samples: number[] = [];
  const topic = "bench-latency";
  await fetch(`http://127.0.0.1:${httpPort}/topics`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: topic, partitions: 1 }) });
  await new Promise<void>((resolve, reject) => {
    const s = sub.subscribe(
      topic,
      (msg) => {
        const seq = (msg.value as { seq: number }).seq;
        const t0 = sentAt.get(seq);
        if (t0 !== undefined) samples.push(performance.now() - t0);
      },
      { from: "latest" },
    );
    s.once("subscribed", () => resolve());
    s.once("error", reject);
  });
  const total = rate * seconds;
  const start = performance.now();
  for (let seq = 0; seq < total; seq++) {
    const due = start + (seq * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    sentAt.set(seq, performance.now());
    void pub.publish(topic, { seq });
  }
  const deadline = performance.now() + 10_000;
  while (samples.length < total && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await Promise.all([sub.close(), pub.close()]);
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), received: samples.length, sent: total };
}

async function healthzMs(httpPort: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    await res.text();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return percentile(times, 99);
}

async function startMosquitto(): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "bench-mosquitto-"));
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\nlog_type error\n`);
  const child = spawn("/usr/sbin/mosquitto", ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    const t0 = Date.now();
    const probe = (): void => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve();
      });
      s.once("error", () => {
        if (Date.now() - t0 > 10_000) reject(new Error("mosquitto did not start"));
        else setTimeout(probe, 50);
      });
    };
    probe();
  });
  return {
    port,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        child.kill("SIGTERM");
      }),
  };
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(2)} KB`;
const mb = (bytes: number): string => `${(bytes / 1048576).toFixed(0)} MB`;

export async function run(args: string[]): Promise<void> {
  const o = parse(args);
  const total = o.ws + o.mqtt;
  const limit = raiseFdLimit(total + 20_000);
  process.stdout.write(`open-file limit ${limit}; ${o.ws} WS + ${o.mqtt} MQTT idle connections from ${o.sources} source addresses\n`);

  const node = await startTributary(["--max-connections", String(total + 300)]);
  // One-time costs (code compiled on first use, mqtt-packet's packet-id cache) are paid by
  // a few warm-up connections of each kind before the baseline is read.
  const warm = [await hold("ws", node.httpPort, WARM_UP, 1), await hold("mqtt", node.mqttPort, WARM_UP, 1)];
  const base = await settledRss(node.pid);
  process.stdout.write(`tributary idle RSS ${mb(base)} (with ${WARM_UP} warm-up connections of each kind)\n`);
  const ws = await hold("ws", node.httpPort, o.ws, o.sources);
  const afterWs = await settledRss(node.pid);
  const wsPer = ws.opened ? (afterWs - base) / ws.opened : Number.NaN;
  process.stdout.write(`  ${ws.opened} WS held (${ws.failed} failed): RSS ${mb(afterWs)}, ${kb(wsPer)} per connection (target ≤ 4 KB)\n`);
  const mqtt = await hold("mqtt", node.mqttPort, o.mqtt, o.sources);
  const afterMqtt = await settledRss(node.pid);
  const mqttPer = mqtt.opened ? (afterMqtt - afterWs) / mqtt.opened : Number.NaN;
  process.stdout.write(`  ${mqtt.opened} MQTT held (${mqtt.failed} failed): RSS ${mb(afterMqtt)}, ${kb(mqttPer)} per connection (target ≤ 8 KB)\n`);
  const health = await healthzMs(node.httpPort);
  const lat = await latency(node.httpPort, o.rate, o.seconds);
  const held = ws.opened + mqtt.opened;
  process.stdout.write(
    `tributary: ${held} connections held, RSS ${mb(afterMqtt)} (target < 1024 MB with 100,000); /healthz p99 ${health.toFixed(1)} ms; ` +
      `subscriber among them at ${o.rate} msg/s: ${lat.received}/${lat.sent} received, p50 ${lat.p50.toFixed(2)} ms, p99 ${lat.p99.toFixed(2)} ms (target < 10 ms)\n`,
  );
  await Promise.all([ws.close(), mqtt.close(), ...warm.map((h) => h.close())]);
  await node.stop();

  if (o.mosquitto && o.mqtt > 0) {
    const mosq = await startMosquitto();
    const mWarm = await hold("mqtt", mosq.port, WARM_UP, 1);
    const mBase = await settledRss(mosq.pid);
    const mm = await hold("mqtt", mosq.port, o.mqtt, o.sources);
    const mAfter = await settledRss(mosq.pid);
    const mPer = mm.opened ? (mAfter - mBase) / mm.opened : Number.NaN;
    process.stdout.write(`mosquitto: idle RSS ${mb(mBase)}; ${mm.opened} MQTT held (${mm.failed} failed): RSS ${mb(mAfter)}, ${kb(mPer)} per connection\n`);
    process.stdout.write(`MQTT bytes per connection, tributary / mosquitto: ${(mqttPer / mPer).toFixed(2)}×\n`);
    await Promise.all([mm.close(), mWarm.close()]);
    await mosq.stop();
  }
}
