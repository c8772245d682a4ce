/**
 * A thin request/response layer over uWebSockets.js for the HTTP API, so route handlers
 * are plain async functions `(ApiRequest) => ApiResponse` and the uWS rules live in one
 * place:
 *
 * - everything needed from `req` is copied synchronously (uWS frees it after the handler
 *   returns);
 * - `res.onAborted` is always registered, and `res` is never touched after an abort;
 * - the body is read with `res.onData`, bounded by `maxBodyBytes`: a `Content-Length` over
 *   it is answered 413 FRAME_TOO_LARGE from the header, before any body is read (the rest of
 *   a body up to DRAIN_FACTOR × the limit is drained by uWS and the connection stays usable;
 *   beyond that, or a Content-Length uWS refuses, the answer carries `Connection: close`); a
 *   body without Content-Length (chunked) that grows past the limit is answered 413 at once
 *   and the connection closed after the answer;
 * - replies from async code are written inside `res.cork`;
 * - browser safety (docs/configuration.md, "Browser access"): a route that reads a body
 *   accepts only the Content-Types it declares (`bodyTypes`; default JSON and CBOR), anything
 *   else, or none, is 415 UNSUPPORTED_MEDIA_TYPE (so no cross-origin "simple request" can
 *   write without a CORS preflight); a POST/PUT/DELETE with a foreign `Origin` not in
 *   `http.corsOrigins` is 403 FORBIDDEN; replies to listed origins carry
 *   `Access-Control-Allow-Origin`, and `preflight()` answers their `OPTIONS` preflights.
 *
 * - per-address request rate (`limits.httpRequestRatePerIp`, docs/security.md#limits): a
 *   request over it is answered 429 QUEUE_FULL with Retry-After before its body is read or
 *   its credentials checked (a refused body route's body is drained when its Content-Length
 *   allows, as for a 413, else the connection closes after the answer); GET /healthz,
 *   /readyz and /metrics are never counted, so probes and scrapes are never refused.
 *
 * - authentication (http-auth.ts): with an auth layer, every route but the `open` ones
 *   authenticates `Authorization: Bearer` before its handler runs (`identity`); a failure is
 *   401 UNAUTHORIZED / TOKEN_EXPIRED with `WWW-Authenticate: Bearer`.
 *
 * Errors: a handler throws TributaryError; it becomes `{ "error": { "code", "message" } }`
 * with httpStatusOf(code) (NOT_FOUND → 404). Anything else is logged and becomes INTERNAL.
 */
import { encode as encodeCbor } from "cbor-x";
import type uWS from "uWebSockets.js";
import type { AuthService, Identity } from "../../auth/index.ts";
import { TributaryError, httpStatusOf, toTributaryError, type ErrorCode } from "../../errors.ts";
import type { Logger } from "../../logger.ts";
import { clientLimitsOfAuth, retryAfterSeconds, type ClientLimits } from "../limits/index.ts";
import { authenticateRequest, wwwAuthenticate } from "./http-auth.ts";
import { OriginPolicy } from "./origin-policy.ts";

export type HttpMethod = "get" | "post" | "put" | "delete";

export interface ApiRequest {
  method: string;
  /** Path without the query string, e.g. "/topics/orders". */
  path: string;
  /** Route parameters in pattern order (`/topics/:topic` → [topic]), URL-decoded. */
  params: string[];
  query: URLSearchParams;
  /** Lower-cased header values ("" when absent). For body routes, `contentType` is one of the route's `bodyTypes` (parameters like `; charset=utf-8` kept). */
  contentType: string;
  accept: string;
  /** The request body (empty unless the route reads bodies). */
  body: Uint8Array;
  /** Aborted when the client goes away or the node shuts down. */
  signal: AbortSignal;
  /** Who sent the request (`Authorization: Bearer`); null when the router has no auth layer or the route is open. */
  identity: Identity | null;
}

export interface ApiResponse {
  status: number;
  /** Serialised as JSON, or CBOR when `format` is "cbor"; no body when undefined. */
  body?: unknown;
  format?: "json" | "cbor";
  /** Extra response headers (e.g. `WWW-Authenticate`). */
  headers?: Record<string, string>;
}

export type ApiHandler = (req: ApiRequest) => Promise<ApiResponse> | ApiResponse;

/** Media types a request body may have (docs/http-api.md, "Request bodies"). */
export type BodyType = "application/json" | "application/cbor" | "application/x-ndjson";

/** What a body route accepts unless it says otherwise. */
export const DEFAULT_BODY_TYPES: readonly BodyType[] = ["application/json", "application/cbor"];

/** The media type of a Content-Type header value: `application/json; charset=utf-8` → `application/json`. */
export function mediaTypeOf(contentType: string): string {
  const semicolon = contentType.indexOf(";");
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/** Methods a cross-origin page may use once its preflight is answered, and the request headers it may send. */
const CORS_METHODS = "GET, POST, PUT, DELETE";
const CORS_HEADERS = "Content-Type, Accept, Authorization";
const WRITE_METHODS = new Set(["POST", "PUT", "DELETE", "PATCH"]);

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
  415: "Unsupported Media Type",
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
  /** Which browser origins may call the API; default none but the node's own. */
  origins?: OriginPolicy;
  /** The node's auth layer; absent = no authentication (every identity null). */
  auth?: AuthService;
  /** The node's limits tied to IP and identity (request rate per IP); default: those of `auth` (limits/index.ts clientLimitsOfAuth). */
  limits?: ClientLimits;
}

/** Paths the per-address request rate never counts: health probes and Prometheus scrapes must not be refused. */
const UNCOUNTED_PATHS: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/metrics"]);

/** How large a refused body (by its Content-Length) may be for uWS to drain it and keep the connection; larger ones close it after the 413. */
const DRAIN_FACTOR = 8;
/** What uWS (20.30) accepts as a Content-Length; anything else it answers by closing the connection after the route handler returns. */
const UWS_CONTENT_LENGTH = /^\d{1,9}$/;
/** uWS's per-loop cork buffer (16 KiB): a write larger than what is left in it goes to the socket at once. */
const CORK_BUFFER_BYTES = 16 * 1024;

export class HttpRouter {
  readonly #app: uWS.TemplatedApp;
  readonly #options: HttpRouterOptions;
  /** In-flight requests: aborting them ends long-polls on shutdown. */
  readonly #inFlight = new Set<AbortController>();
  readonly #idle: Array<() => void> = [];
  /** Set by drain(): later requests get 503 UNAVAILABLE and their connection closed. */
  #closing = false;

  readonly #origins: OriginPolicy;
  /** Resolved on the first request (a gateway registers the node's ClientLimits when it mounts). */
  #limits: ClientLimits | undefined;

  constructor(app: uWS.TemplatedApp, options: HttpRouterOptions) {
    this.#app = app;
    this.#options = options;
    this.#origins = options.origins ?? new OriginPolicy();
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Mounts `handler` at `pattern`; `readBody` routes receive the (bounded) body, whose
   * Content-Type is one of `bodyTypes` (default JSON and CBOR; anything else is 415).
   */
  route(method: HttpMethod, pattern: string, handler: ApiHandler, options: { readBody?: boolean; bodyTypes?: readonly BodyType[]; open?: boolean } = {}): void {
    const paramCount = pattern.split("/").filter((segment) => segment.startsWith(":")).length;
    const bodyTypes = options.readBody ? (options.bodyTypes ?? DEFAULT_BODY_TYPES) : null;
    const handlerOf = (res: uWS.HttpResponse, req: uWS.HttpRequest) => this.#serve(res, req, handler, bodyTypes, paramCount, options.open === true);
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
      }, null, 0, true);
    });
  }

  /**
   * `OPTIONS /*`: a CORS preflight (`Origin` + `Access-Control-Request-Method`) from an origin
   * in `http.corsOrigins` gets 204 with the allowed methods and headers; from any other
   * origin, 403 FORBIDDEN without CORS headers (the browser then refuses the request). A
   * plain OPTIONS gets 204 with `Allow`. Mount before `fallback()`.
   */
  preflight(): void {
    this.#app.options("/*", (res, req) => {
      const origin = req.getHeader("origin");
      const preflight = origin !== "" && req.getHeader("access-control-request-method") !== "";
      if (preflight && !this.#origins.corsAllows(origin)) {
        this.#serve(res, req, () => {
          throw new TributaryError("FORBIDDEN", `cross-origin requests from ${origin} are not allowed: list the origin in http.corsOrigins (--cors-origins)`, { origin });
        }, null, 0, true);
        return;
      }
      res.writeStatus("204 No Content");
      if (preflight) {
        res
          .writeHeader("Access-Control-Allow-Origin", origin)
          .writeHeader("Access-Control-Allow-Methods", CORS_METHODS)
          .writeHeader("Access-Control-Allow-Headers", CORS_HEADERS)
          .writeHeader("Access-Control-Max-Age", "600")
          .writeHeader("Vary", "Origin");
      } else {
        res.writeHeader("Allow", `${CORS_METHODS}, OPTIONS`);
      }
      res.endWithoutBody(0);
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

  #serve(res: uWS.HttpResponse, req: uWS.HttpRequest, handler: ApiHandler, bodyTypes: readonly BodyType[] | null, paramCount: number, open: boolean): void {
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
    const rawContentLength = req.getHeader("content-length").trim();
    const contentLength = rawContentLength === "" ? 0 : Number(rawContentLength);
    const origin = req.getHeader("origin");
    const host = req.getHeader("host");
    const authorization = open ? "" : req.getHeader("authorization");
    // The socket's peer, for per-address auth backoff (read now: `res` gives it only while open).
    const peer = open ? null : Buffer.from(res.getRemoteAddressAsText()).toString();
    const allowOrigin = origin !== "" && this.#origins.corsAllows(origin);

    const respond = (response: ApiResponse, closeConnection = false, flushNow = false) => {
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
          // JSON may end in whitespace: a body larger than uWS's cork buffer is written out at once.
          if (flushNow && body.length <= CORK_BUFFER_BYTES) body = body.padEnd(CORK_BUFFER_BYTES + 1, " ");
        }
      }
      res.cork(() => {
        res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ""}`.trim());
        if (type) res.writeHeader("Content-Type", type);
        if (allowOrigin) res.writeHeader("Access-Control-Allow-Origin", origin).writeHeader("Vary", "Origin");
        for (const [name, value] of Object.entries(response.headers ?? {})) res.writeHeader(name, value);
        if (body === undefined) res.endWithoutBody(0, closeConnection);
        else res.end(body, closeConnection);
      });
      this.#done(controller);
    };
    const fail = (err: unknown, closeConnection = false, flushNow = false) => {
      const error = toTributaryError(err);
      if (error.code === "INTERNAL") this.#options.log.error("http.internal_error", { method, path, message: error.message, stack: (err as Error)?.stack });
      const unauthenticated = error.code === "UNAUTHORIZED" || error.code === "TOKEN_EXPIRED";
      const retryAfter = error.context.retryAfterMs;
      const headers: Record<string, string> | undefined = unauthenticated
        ? { "WWW-Authenticate": wwwAuthenticate(error, authorization !== "") }
        : typeof retryAfter === "number"
          ? { "Retry-After": String(retryAfterSeconds(retryAfter)) }
          : undefined;
      respond({ status: statusOfCode(error.code), body: { error: { code: error.code, message: error.message } }, headers }, closeConnection, flushNow);
    };
    // Per-address request rate, before anything is read or authenticated (during shutdown, run() answers 503).
    const limits = this.#clientLimits();
    if (limits?.limitsHttpRequests && !this.#closing && !UNCOUNTED_PATHS.has(path)) {
      const refusal = limits.httpRequest(Buffer.from(res.getRemoteAddressAsText()).toString());
      if (refusal !== null) {
        this.#options.log.debug("http.limited", { method, path, limit: refusal.limit, retryAfterMs: refusal.retryAfterMs });
        const error = new TributaryError("QUEUE_FULL", refusal.message, { limit: refusal.limit, retryAfterMs: refusal.retryAfterMs });
        if (bodyTypes === null) {
          fail(error);
          return;
        }
        // The body is not read: uWS drains one it has a (bounded) Content-Length for; otherwise the connection closes after the answer.
        const drain = rawContentLength !== "" && UWS_CONTENT_LENGTH.test(rawContentLength) && contentLength <= this.#options.maxBodyBytes * DRAIN_FACTOR;
        if (drain) res.onData(() => {});
        fail(error, !drain);
        return;
      }
    }

    const run = (body: Uint8Array) => {
      if (finished) return;
      if (this.#closing) {
        // Keep-alive connections outlive the listen socket: tell the client to reconnect (to the next node).
        fail(new TributaryError("UNAVAILABLE", "the node is shutting down"), true);
        return;
      }
      if (WRITE_METHODS.has(method) && !this.#origins.httpAllows(origin, host)) {
        fail(new TributaryError("FORBIDDEN", `${method} ${path} from origin ${origin} is not allowed: only the node's own origin and those listed in http.corsOrigins (--cors-origins)`, { origin }));
        return;
      }
      if (bodyTypes !== null && !(bodyTypes as readonly string[]).includes(mediaTypeOf(contentType))) {
        fail(
          new TributaryError(
            "UNSUPPORTED_MEDIA_TYPE",
            `${method} ${path} accepts a body of Content-Type ${bodyTypes.join(", ")}; got ${contentType === "" ? "none" : `"${contentType}"`}`,
            { contentType, accepted: bodyTypes },
          ),
        );
        return;
      }
      const invoke = (identity: Identity | null) => {
        if (finished) return;
        const request: ApiRequest = { method, path, params, query, contentType, accept, body, signal: controller.signal, identity };
        try {
          Promise.resolve(handler(request)).then(respond, fail);
        } catch (err) {
          fail(err);
        }
      };
      let identity: Identity | null | Promise<Identity>;
      try {
        identity = open ? null : authenticateRequest(this.#options.auth, authorization, peer);
      } catch (err) {
        fail(err);
        return;
      }
      if (identity instanceof Promise) identity.then(invoke, fail);
      else invoke(identity);
    };

    if (bodyTypes === null) {
      run(new Uint8Array(0));
      return;
    }
    const limit = this.#options.maxBodyBytes;
    const tooLarge = (size: string) =>
      new TributaryError("FRAME_TOO_LARGE", `request body of ${size} exceeds the limit of ${limit} bytes (limits.maxFrameBytes)`, { limit });
    if (rawContentLength !== "" && contentLength > limit) {
      // Answered from the header, before any body is read. uWS drains what follows (bounded:
      // beyond DRAIN_FACTOR × the limit the connection is closed after the answer). A value
      // uWS refuses (not 1..9 digits: "1e9", 1000000000) makes it drop the connection as soon
      // as this handler returns: the answer is then written out now (flushNow), not corked.
      const refusedByUws = !UWS_CONTENT_LENGTH.test(rawContentLength);
      // uWS hands the rest of a body it accepted to this handler: ignored.
      if (!refusedByUws) res.onData(() => {});
      fail(tooLarge(`${rawContentLength} bytes`), refusedByUws || contentLength > limit * DRAIN_FACTOR, refusedByUws);
      return;
    }
    if (rawContentLength !== "" && !UWS_CONTENT_LENGTH.test(rawContentLength)) {
      // Not a length ("abc", "-1"): uWS drops the connection after this handler; say why first.
      fail(new TributaryError("BAD_REQUEST", `Content-Length "${rawContentLength.slice(0, 40)}" is not a number of bytes`), true, true);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    res.onData((chunk, isLast) => {
      if (finished) return;
      received += chunk.byteLength;
      if (received > limit) {
        // No (or a false) Content-Length: answered once the body passes the limit, and closed
        // after the answer (the response cannot be touched again to bound a drain).
        chunks.length = 0;
        fail(tooLarge(`more than ${limit} bytes`), !isLast);
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0))); // the ArrayBuffer is reused after this callback
      if (isLast) run(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
  }

  #clientLimits(): ClientLimits | undefined {
    this.#limits ??= this.#options.limits ?? (this.#options.auth ? clientLimitsOfAuth(this.#options.auth) : undefined);
    return this.#limits;
  }

  #done(controller: AbortController): void {
    if (!this.#inFlight.delete(controller)) return;
    if (this.#inFlight.size === 0) for (const idle of this.#idle.splice(0)) idle();
  }
}
