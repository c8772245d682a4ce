/**
 * The connect process's own HTTP API (loopback by default; docs/connect.md):
 *
 *   GET  /connectors                  {"connectors":[status…]}
 *   GET  /connectors/:name            status
 *   POST /connectors/:name/pause      stop it, keep its position       → status
 *   POST /connectors/:name/resume     start it again from its position  → status
 *   POST /connectors/:name/restart    stop and start (also clears failed) → status
 *   GET  /metrics                     Prometheus text (tributary_connect_*)
 *   GET  /healthz                     {"status":"ok"}
 *
 * Errors: `{"error":{"code","message"}}` with the node's codes and statuses (404 NOT_FOUND).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { httpStatusOf, toTributaryError, TributaryError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { ConnectMetrics } from "./connect-metrics.ts";
import type { ConnectRuntime } from "./connect-runtime.ts";

const ACTIONS = new Set(["pause", "resume", "restart"]);

export class ConnectServer {
  readonly #server: Server;
  readonly #runtime: ConnectRuntime;
  readonly #metrics: ConnectMetrics;
  readonly #logger: Logger;

  constructor(runtime: ConnectRuntime, metrics: ConnectMetrics, logger: Logger) {
    this.#runtime = runtime;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => this.#sendError(res, err));
    });
  }

  /** Listens; resolves with the bound port (0 picks a free one). */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve((this.#server.address() as { port: number }).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://connect");
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    req.resume(); // no route reads a body
    if (req.method === "GET" && url.pathname === "/metrics") {
      const text = await this.#metrics.registry.metrics();
      res.writeHead(200, { "content-type": this.#metrics.registry.contentType }).end(text);
      return;
    }
    if (req.method === "GET" && url.pathname === "/healthz") return this.#send(res, 200, { status: "ok" });
    if (parts[0] === "connectors") {
      if (parts.length === 1 && req.method === "GET") return this.#send(res, 200, { connectors: this.#runtime.status() });
      if (parts.length === 2 && req.method === "GET") return this.#send(res, 200, this.#runtime.statusOf(parts[1]!));
      if (parts.length === 3 && req.method === "POST" && ACTIONS.has(parts[2]!)) {
        const name = parts[1]!;
        this.#logger.info("connect.api.request", { connector: name, action: parts[2] });
        const status = parts[2] === "pause" ? await this.#runtime.pause(name) : parts[2] === "resume" ? await this.#runtime.resume(name) : await this.#runtime.restart(name);
        return this.#send(res, 200, status);
      }
    }
    throw new TributaryError("NOT_FOUND", `no route ${req.method} ${url.pathname} (routes: GET /connectors, GET /connectors/:name, POST /connectors/:name/pause|resume|restart, GET /metrics)`);
  }

  #send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  }

  #sendError(res: ServerResponse, err: unknown): void {
    const e = toTributaryError(err);
    if (e.code === "INTERNAL") this.#logger.error("connect.api.failed", { error: e.message });
    if (!res.headersSent) this.#send(res, httpStatusOf(e.code), { error: { code: e.code, message: e.message } });
    else res.destroy();
  }
}
