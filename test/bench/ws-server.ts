/**
 * The server side of `npm run bench -- ws`, run in its own process (so the loader and the
 * server each get a core):
 *   ws-server.ts tributary                 → the Tributary WebSocket gateway on the FileLogEngine, metrics
 *                                            on (default process metrics, /metrics scraped every second)
 *   ws-server.ts tributary-nometrics       → the same with metrics.enabled = false
 *   ws-server.ts bare                      → a bare uWebSockets.js pub/sub server, no log:
 *                                            every frame a client sends is published to all
 *                                            connections that did not send ?role=pub (the ceiling)
 * Prints `listening <port>` on stdout, answers `cpu` on stdin with `cpu <µs>`, exits on SIGTERM.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import uWS from "uWebSockets.js";
import { SUBPROTOCOL_CBOR } from "@tributary/client/protocol";
import { FileLogEngine } from "../../server/src/log/file/file-log-engine.ts";
import { Metrics } from "../../server/src/metrics/metrics.ts";
import { startWsTestServer } from "../helpers/ws-harness.ts";

const [mode = "tributary"] = process.argv.slice(2);
const cleanups: (() => Promise<void> | void)[] = [];

if (mode === "bare") {
  const app = uWS.App();
  app.ws<{ pub: boolean }>("/ws", {
    compression: uWS.DISABLED,
    maxPayloadLength: 1 << 20,
    maxBackpressure: 16 << 20,
    idleTimeout: 60,
    upgrade(res, req, context) {
      res.upgrade({ pub: req.getQuery("role") === "pub" }, req.getHeader("sec-websocket-key"), SUBPROTOCOL_CBOR, req.getHeader("sec-websocket-extensions"), context);
    },
    open(ws) {
      if (!ws.getUserData().pub) ws.subscribe("t");
    },
    message(_ws, message, isBinary) {
      app.publish("t", message, isBinary);
    },
  });
  const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen("127.0.0.1", 0, (s) => (s ? resolve(s) : reject(new Error("listen failed")))));
  cleanups.push(() => uWS.us_listen_socket_close(socket));
  process.stdout.write(`listening ${uWS.us_socket_local_port(socket as unknown as uWS.us_socket)}\n`);
} else {
  const dataDir = mkdtempSync(path.join(tmpdir(), "tributary-bench-ws-"));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const engine = await FileLogEngine.open({ dataDir, fsync: "never", retentionCheckMs: 0 });
  const enabled = mode !== "tributary-nometrics";
  const metrics = new Metrics({ enabled, defaultMetrics: enabled });
  const server = await startWsTestServer({ engine, metrics, limits: { maxCredit: 1_000_000, maxBufferedBytes: 8 << 20, slowConsumerGraceMs: 30_000 } });
  cleanups.unshift(() => server.close());
  if (enabled) {
    // A Prometheus scraping every second (10x the usual rate): the exposition's cost is in the figures.
    const scrape = setInterval(() => {
      const started = performance.now();
      const cpu0 = process.cpuUsage();
      metrics.expose().then(
        (text) => {
          const cpu = process.cpuUsage(cpu0);
          if (process.env.BENCH_WS_SCRAPE_LOG) process.stderr.write(`scrape ${(performance.now() - started).toFixed(1)} ms, cpu ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms, ${text.length} bytes\n`);
        },
        (err: unknown) => process.stderr.write(`scrape failed: ${String(err)}\n`),
      );
    }, 1000);
    cleanups.unshift(() => clearInterval(scrape));
  }
  process.stdout.write(`listening ${server.port}\n`);
}

if (process.env.BENCH_WS_GC_LOG) {
  // Diagnostics: every GC pause over 2 ms and the heap after it, on stderr.
  const { PerformanceObserver, constants } = await import("node:perf_hooks");
  const kinds: Record<number, string> = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: "scavenge",
    [constants.NODE_PERFORMANCE_GC_MAJOR]: "mark-compact",
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental marking",
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weak callbacks",
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      if (e.duration > 2) process.stderr.write(`gc ${kinds[kind] ?? kind} ${e.duration.toFixed(1)} ms, heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB\n`);
    }
  }).observe({ entryTypes: ["gc"] });
}

// `cpu` on stdin → `cpu <user+system µs>` on stdout: the loader measures the server's CPU per message.
let input = "";
process.stdin.on("data", (d: Buffer) => {
  input += d.toString();
  let nl;
  while ((nl = input.indexOf("\n")) >= 0) {
    const line = input.slice(0, nl);
    input = input.slice(nl + 1);
    if (line === "cpu") {
      const { user, system } = process.cpuUsage();
      process.stdout.write(`cpu ${user + system}\n`);
    }
  }
});

process.on("SIGTERM", async () => {
  for (const c of cleanups) await c();
  process.exit(0);
});
