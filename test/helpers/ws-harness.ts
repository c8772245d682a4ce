/**
 * A real Tributary WebSocket gateway on its own port, for tests: engine + Broker + uWS app
 * + attachWsGateway, always cleaned up with `close()`.
 */
import type { Metrics } from "../../server/src/metrics/metrics.ts";
import uWS from "uWebSockets.js";
import { Broker } from "../../server/src/broker/broker.ts";
import { DEFAULT_CONFIG, type TributaryConfig } from "../../server/src/config/config.ts";
import { attachWsGateway, type WsGateway } from "../../server/src/gateway/ws/ws-gateway.ts";
import type { LogEngine } from "../../server/src/log/log-engine.ts";
import { createLogger } from "../../server/src/logger.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileLogEngine, type FileLogEngineOptions } from "../../server/src/log/file/file-log-engine.ts";

/** A real FileLogEngine in a fresh temp dir (removed by `cleanup`). */
export async function openTempFileEngine(options: Partial<FileLogEngineOptions> = {}): Promise<{ engine: FileLogEngine; dir: string; cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "tributary-ws-"));
  const engine = await FileLogEngine.open({ dataDir: dir, fsync: "never", ...options });
  return { engine, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface WsTestServer {
  url: string;
  port: number;
  engine: LogEngine;
  broker: Broker;
  gateway: WsGateway;
  config: TributaryConfig;
  /** Closes the gateway and the listen socket; closes the engine too unless `keepEngine`. */
  close(options?: { keepEngine?: boolean }): Promise<void>;
}

export interface WsTestServerOptions {
  engine?: LogEngine;
  limits?: Partial<TributaryConfig["limits"]>;
  topics?: Partial<TributaryConfig["topics"]>;
  port?: number;
  /** The broker's instruments (default: a private registry, metrics enabled). */
  metrics?: Metrics;
}

export async function startWsTestServer(options: WsTestServerOptions = {}): Promise<WsTestServer> {
  const config: TributaryConfig = {
    ...DEFAULT_CONFIG,
    port: options.port ?? 0,
    topics: { ...DEFAULT_CONFIG.topics, ...options.topics },
    limits: { ...DEFAULT_CONFIG.limits, ...options.limits },
  };
  const owned = options.engine ? undefined : await openTempFileEngine();
  const engine = options.engine ?? owned!.engine;
  const broker = new Broker(engine, {
    autoCreateTopics: config.topics.autoCreate,
    topicDefaults: { partitions: config.topics.defaultPartitions },
    maxRecordBytes: config.limits.maxRecordBytes,
    metrics: options.metrics,
  });
  const log = createLogger("error");
  const app = uWS.App();
  const gateway = attachWsGateway(app, { broker, config, nodeId: "test-node", log });
  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    app.listen("127.0.0.1", config.port, (socket) => (socket ? resolve(socket) : reject(new Error(`cannot listen on ${config.port}`))));
  });
  const port = uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket);
  let closed = false;
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    port,
    engine,
    broker,
    gateway,
    config,
    async close({ keepEngine = false } = {}) {
      if (closed) return;
      closed = true;
      await gateway.close();
      uWS.us_listen_socket_close(listenSocket);
      if (!keepEngine) await engine.close();
      if (!keepEngine) owned?.cleanup();
    },
  };
}
