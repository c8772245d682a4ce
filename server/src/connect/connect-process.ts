/**
 * `tributary connect --config connectors.yaml`: the connect process. A client of one node
 * (HTTP for topics, source records and positions; the SDK over WebSocket for the sinks'
 * consumer groups and the DLQ), with its own HTTP API and /metrics (connect-server.ts).
 */
import type { Logger } from "../logger.ts";
import type { ConnectConfig } from "./connect-config.ts";
import { ConnectMetrics } from "./connect-metrics.ts";
import { ConnectRuntime } from "./connect-runtime.ts";
import { ConnectServer } from "./connect-server.ts";
import { setConnectorLogger } from "./connector-registry.ts";
import { NodeApi } from "./node-api.ts";

export interface ConnectProcessOptions {
  config: ConnectConfig;
  /** The node's HTTP URL (http://host:port). */
  url: string;
  token?: string;
  listen: { host: string; port: number };
  logger: Logger;
  sessionTimeoutMs?: number;
}

export interface RunningConnect {
  runtime: ConnectRuntime;
  /** The status API's URL. */
  apiUrl: string;
  close(): Promise<void>;
}

export async function startConnect(options: ConnectProcessOptions): Promise<RunningConnect> {
  const metrics = new ConnectMetrics();
  setConnectorLogger(options.logger);
  const api = new NodeApi(options.url, options.token);
  const wsUrl = options.url.replace(/^http/, "ws");
  const runtime = new ConnectRuntime(options.config, { api, wsUrl, token: options.token, metrics, logger: options.logger, sessionTimeoutMs: options.sessionTimeoutMs });
  const server = new ConnectServer(runtime, metrics, options.logger);
  const port = await server.listen(options.listen.host, options.listen.port);
  const host = options.listen.host.includes(":") ? `[${options.listen.host}]` : options.listen.host;
  const apiUrl = `http://${host}:${port}`;
  await runtime.start();
  return {
    runtime,
    apiUrl,
    async close() {
      await runtime.close();
      await server.close();
    },
  };
}
