/**
 * Which browser origins may act on the node (docs/configuration.md, "Browser access"): one
 * policy for the HTTP API (CORS, `http.corsOrigins`) and for the WebSocket upgrades of
 * `/ws` and `/mqtt` (`ws.allowedOrigins`).
 *
 * - A request without `Origin` is not from a browser page (Node, curl, devices): allowed.
 * - Same origin (the `Origin`'s host:port is the request's `Host`, e.g. the web console the
 *   node serves) is always allowed.
 * - Any other origin only when listed ("*" lists every origin).
 *
 * Origins in the config are already normalised to `URL.origin` (config-schema.ts); the
 * `Origin` a browser sends has that form too, and is normalised the same way here.
 */
import type uWS from "uWebSockets.js";
import type { TributaryConfig } from "../../config/config.ts";
import { normalizeOrigin } from "../../config/config-schema.ts";

export class OriginPolicy {
  readonly #cors: ReadonlySet<string>;
  readonly #ws: ReadonlySet<string>;

  constructor(corsOrigins: readonly string[] = [], wsAllowedOrigins: readonly string[] = []) {
    this.#cors = new Set(corsOrigins);
    this.#ws = new Set(wsAllowedOrigins);
  }

  static #byConfig = new WeakMap<TributaryConfig, OriginPolicy>();

  /** The policy of a node's config (one per config object). */
  static of(config: TributaryConfig): OriginPolicy {
    let policy = OriginPolicy.#byConfig.get(config);
    if (!policy) OriginPolicy.#byConfig.set(config, (policy = new OriginPolicy(config.http?.corsOrigins, config.ws?.allowedOrigins)));
    return policy;
  }

  /** Whether a page on `origin` may read HTTP API responses cross-origin (CORS): listed in `http.corsOrigins`. */
  corsAllows(origin: string): boolean {
    return listed(this.#cors, origin);
  }

  /** Whether an HTTP request from `origin` (the header, "" when absent) to `host` may change anything. */
  httpAllows(origin: string, host: string): boolean {
    return origin === "" || isSameOrigin(origin, host) || listed(this.#cors, origin);
  }

  /** Whether a WebSocket upgrade from `origin` (the header, "" when absent) to `host` may proceed. */
  wsAllows(origin: string, host: string): boolean {
    return origin === "" || isSameOrigin(origin, host) || listed(this.#ws, origin);
  }
}

function listed(origins: ReadonlySet<string>, origin: string): boolean {
  if (origins.size === 0 || origin === "") return false;
  if (origins.has("*")) return true;
  const normal = normalizeOrigin(origin);
  return normal !== null && normal !== "*" && origins.has(normal);
}

/** True when `origin` (`scheme://host[:port]`) names the same host and port as the `Host` header `host`. */
export function isSameOrigin(origin: string, host: string): boolean {
  if (host === "") return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  try {
    // The Host header read with the Origin's scheme, so a default port compares equal either way (`a.com` = `a.com:80` over http).
    return new URL(`${url.protocol}//${host}`).host === url.host;
  } catch {
    return false;
  }
}

/**
 * For a WebSocket upgrade handler: when the request's `Origin` may not open `path`, answers
 * HTTP 403 with a message naming the config field, and returns true (the caller returns
 * without upgrading). Reads `req` synchronously, as uWS requires.
 */
export function refuseForeignOrigin(res: uWS.HttpResponse, req: uWS.HttpRequest, policy: OriginPolicy, path: string): boolean {
  const origin = req.getHeader("origin");
  if (policy.wsAllows(origin, req.getHeader("host"))) return false;
  res
    .writeStatus("403 Forbidden")
    .writeHeader("content-type", "text/plain; charset=utf-8")
    .end(`WebSocket connections to ${path} from origin ${origin} are not allowed: only the node's own origin and those listed in ws.allowedOrigins (--ws-allowed-origins)\n`);
  return true;
}
