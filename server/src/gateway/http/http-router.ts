/**
 * A thin request/response layer over uWebSockets.js for the HTTP API, so route handlers
 * are plain async functions `(ApiRequest) => ApiResponse` and the uWS rules live in one
 * place:
 *
 * - everything needed from `req` is copied synchronously (uWS frees it after the handler
 *   returns);
 * - `res.onAborted` is always registered, and `res` is never touched after an abort;
 * - the body is read with `res.onData`, bounded by `maxBodyBytes` (413 FRAME_TOO_LARGE;
 *   an oversized body is drained, up to a bound, so the client can read the 413);
 * - replies from async code are written inside `res.cork`.
 *
 * Errors: a handler throws TributaryError; it becomes `{ "error": { "code", "message" } }`
 * with httpStatusOf(code) (NOT_FOUND → 404). Anything else is logged and becomes INTERNAL.
 */
import { encode as encodeCbor } from "cbor-x";
import type uWS from "uWebSockets.js";
import { TributaryError, httpStatusOf, toTributaryError, type ErrorCode } from "../../errors.ts";
import type { Logger } from "../../logger.ts";

export type HttpMethod = "get" | "post" | "put" | "delete";

export interface ApiRequest {
  method: string;
  /** Path without the query string, e.g. "/topics/orders". */
  path: string;
  /** Route parameters in pattern order (`/topics/:topic` → [topic]), URL-decoded. */
  params: string[];
  query: URLSearchParams;
  /** Lower-cased header values ("" when absent). */
  contentType: string;
  accept: string;
  /** The request body (empty unless the route reads bodies). */
  body: Uint8Array;
  /** Aborted when the client goes away or the node shuts down. */
  signal: AbortSignal;
}

export interface ApiResponse {
  status: number;
  /** Serialised as JSON, or CBOR when `format` is "cbor"; no body when undefined. */
  body?: unknown;
  format?: "json" | "cbor";
}

export type ApiHandler = (req: ApiRequest) => Promise<ApiResponse> | ApiResponse;

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Payload Too Large",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** HTTP status of an error code, including the HTTP-only NOT_FOUND (unknown route). */
export function statusOfCode(code: ErrorCode): number {
  return code === "NOT_FOUND" ? 404 : httpStatusOf(code);
}

export interface HttpRouterOptions {
  maxBodyBytes: number;
  log: Logger;
}

/** How much of an oversized body is drained (to let the client read the 413) before the connection is closed. */
const DRAIN_FACTOR = 8;

export class HttpRouter {
  readonly #app: uWS.TemplatedApp;
  readonly #options: HttpRouterOptions;
  /** In-flight requests: aborting them ends long-polls on shutdown. */
  readonly #inFlight = new Set<AbortController>();
  readonly #idle: Array<() => void> = [];
  /** Set by drain(): later requests get 503 UNAVAILABLE and their connection closed. */
  #closing = false;

  constructor(app: uWS.TemplatedApp, options: HttpRouterOptions) {
    this.#app = app;
    this.#options = options;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Mounts `handler` at `pattern`; `readBody` routes receive the (bounded) body. */
  route(method: HttpMethod, pattern: string, handler: ApiHandler, options: { readBody?: boolean } = {}): void {
    const paramCount = pattern.split("/").filter((segment) => segment.startsWith(":")).length;
    const handlerOf = (res: uWS.HttpResponse, req: uWS.HttpRequest) => this.#serve(res, req, handler, options.readBody ?? false, paramCount);
    if (method === "delete") this.#app.del(pattern, handlerOf);
    else this.#app[method](pattern, handlerOf);
  }

  /** Every request no route matched: 404 NOT_FOUND. Mount last. */
  fallback(): void {
    this.#app.any("/*", (res, req) => {
      const method = req.getMethod().toUpperCase();
      const path = req.getUrl();
      this.#serve(res, req, () => {
        throw new TributaryError("NOT_FOUND", `no route for ${method} ${path}; see docs/http-api.md`);
      }, false, 0);
    });
  }

  /** Aborts in-flight requests (long-polls end early) and resolves once none is left, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.#closing = true;
    for (const controller of this.#inFlight) controller.abort();
    if (this.#inFlight.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #serve(res: uWS.HttpResponse, req: uWS.HttpRequest, handler: ApiHandler, readBody: boolean, paramCount: number): void {
    const controller = new AbortController();
    let finished = false; // aborted by the client, or answered: res must not be touched again
    res.onAborted(() => {
      finished = true;
      controller.abort();
      this.#done(controller);
    });
    this.#inFlight.add(controller);

    // Copy everything from req now: it is only valid during this synchronous call.
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const params: string[] = [];
    for (let i = 0; i < paramCount; i++) {
      const raw = req.getParameter(i) ?? "";
      try {
        params.push(decodeURIComponent(raw));
      } catch {
        params.push(raw); // undecodable %-escape: left as is, rejected by the handler's validation
      }
    }
    const query = new URLSearchParams(req.getQuery() ?? "");
    const contentType = req.getHeader("content-type").toLowerCase();
    const accept = req.getHeader("accept").toLowerCase();
    const contentLength = Number(req.getHeader("content-length") || "0");

    const respond = (response: ApiResponse, closeConnection = false) => {
      if (finished) return;
      finished = true;
      const status = response.status;
      let body: string | Uint8Array | undefined;
      let type: string | undefined;
      if (response.body !== undefined) {
        if (response.format === "cbor") {
          body = encodeCbor(response.body);
          type = "application/cbor";
        } else {
          body = JSON.stringify(response.body);
          type = "application/json";
        }
      }
      res.cork(() => {
        res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ""}`.trim());
        if (type) res.writeHeader("Content-Type", type);
        if (body === undefined) res.endWithoutBody(0, closeConnection);
        else res.end(body, closeConnection);
      });
      this.#done(controller);
    };
    const fail = (err: unknown, closeConnection = false) => {
      const error = toTributaryError(err);
      if (error.code === "INTERNAL") this.#options.log.error("http.internal_error", { method, path, message: error.message, stack: (err as Error)?.stack });
      respond({ status: statusOfCode(error.code), body: { error: { code: error.code, message: error.message } } }, closeConnection);
    };
    const run = (body: Uint8Array) => {
      if (finished) return;
      if (this.#closing) {
        // Keep-alive connections outlive the listen socket: tell the client to reconnect (to the next node).
        fail(new TributaryError("UNAVAILABLE", "the node is shutting down"), true);
        return;
      }
      const request: ApiRequest = { method, path, params, query, contentType, accept, body, signal: controller.signal };
      try {
        Promise.resolve(handler(request)).then(respond, fail);
      } catch (err) {
        fail(err);
      }
    };

    if (!readBody) {
      run(new Uint8Array(0));
      return;
    }
    const limit = this.#options.maxBodyBytes;
    const tooLarge = (size: string) =>
      new TributaryError("FRAME_TOO_LARGE", `request body of ${size} exceeds the limit of ${limit} bytes (limits.maxFrameBytes)`, { limit });
    if (contentLength > limit * DRAIN_FACTOR) {
      // Not worth draining: answer now and close.
      fail(tooLarge(`${contentLength} bytes`), true);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    res.onData((chunk, isLast) => {
      if (finished) return;
      received += chunk.byteLength;
      if (received > limit) {
        if (received > limit * DRAIN_FACTOR) {
          fail(tooLarge(`more than ${received} bytes`), true);
        } else if (isLast) fail(tooLarge(`${received} bytes`));
        chunks.length = 0;
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0))); // the ArrayBuffer is reused after this callback
      if (isLast) run(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
  }

  #done(controller: AbortController): void {
    if (!this.#inFlight.delete(controller)) return;
    if (this.#inFlight.size === 0) for (const idle of this.#idle.splice(0)) idle();
  }
}
