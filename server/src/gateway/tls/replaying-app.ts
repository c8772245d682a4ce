import type uWS from "uWebSockets.js";
import { TributaryError } from "../../errors.ts";

type HttpMethodName = "get" | "post" | "put" | "patch" | "del" | "any" | "options" | "head" | "connect" | "trace";
type HttpHandler = (res: uWS.HttpResponse, req: uWS.HttpRequest) => void | Promise<void>;

type Route = { kind: "http"; method: HttpMethodName; pattern: uWS.RecognizedString; handler: HttpHandler } | { kind: "ws"; pattern: uWS.RecognizedString; behavior: uWS.WebSocketBehavior<unknown> };

interface AppEntry {
  readonly app: uWS.TemplatedApp;
  /** Open WebSockets of this app: those `publish` must reach. */
  sockets: number;
}

/**
 * The `uWS.TemplatedApp` the gateways mount on when the node serves TLS: it records every
 * route and WebSocket behaviour, in order, and registers each on every app added, those
 * added later included (replayed in the same order, so a catch-all mounted last stays
 * last). `publish` goes to every app that has open WebSockets (a socket subscribes in the
 * app that accepted it); `numSubscribers` sums over them. Listening belongs to the owner
 * (ReloadableUwsApp): `listen`, `listen_unix` and the SNI calls throw.
 *
 * Guarantees: a route registered at any time is on every app; a publish reaches each
 * subscribed socket once (sockets belong to exactly one app), in publish order.
 */
export class ReplayingApp implements uWS.TemplatedApp {
  readonly #routes: Route[] = [];
  readonly #apps: AppEntry[] = [];

  /** Apps added, oldest first. */
  get apps(): number {
    return this.#apps.length;
  }

  /** Open WebSockets per app, oldest first (for logs and tests). */
  openSockets(): number[] {
    return this.#apps.map((e) => e.sockets);
  }

  /** Registers every route recorded so far on `app`, in order; later ones go to it too. */
  add(app: uWS.TemplatedApp): void {
    const entry: AppEntry = { app, sockets: 0 };
    for (const route of this.#routes) apply(entry, route);
    this.#apps.push(entry);
  }

  /** Forgets `app` (one that never accepted a connection: a reload whose listen failed). */
  remove(app: uWS.TemplatedApp): void {
    const i = this.#apps.findIndex((e) => e.app === app);
    if (i !== -1) this.#apps.splice(i, 1);
  }

  get(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("get", pattern, handler);
  }
  post(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("post", pattern, handler);
  }
  put(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("put", pattern, handler);
  }
  patch(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("patch", pattern, handler);
  }
  del(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("del", pattern, handler);
  }
  any(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("any", pattern, handler);
  }
  options(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("options", pattern, handler);
  }
  head(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("head", pattern, handler);
  }
  connect(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("connect", pattern, handler);
  }
  trace(pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#http("trace", pattern, handler);
  }

  ws<UserData>(pattern: uWS.RecognizedString, behavior: uWS.WebSocketBehavior<UserData>): uWS.TemplatedApp {
    return this.#record({ kind: "ws", pattern, behavior: behavior as uWS.WebSocketBehavior<unknown> });
  }

  publish(topic: uWS.RecognizedString, message: uWS.RecognizedString, isBinary?: boolean, compress?: boolean): boolean {
    let sent = false;
    for (const entry of this.#apps) {
      if (entry.sockets > 0 && entry.app.publish(topic, message, isBinary, compress)) sent = true;
    }
    return sent;
  }

  numSubscribers(topic: uWS.RecognizedString): number {
    let n = 0;
    for (const entry of this.#apps) if (entry.sockets > 0) n += entry.app.numSubscribers(topic);
    return n;
  }

  listen(): uWS.TemplatedApp {
    throw unsupported("listen (the node listens through ReloadableUwsApp)");
  }
  listen_unix(): uWS.TemplatedApp {
    throw unsupported("listen_unix");
  }
  addServerName(): uWS.TemplatedApp {
    throw unsupported("addServerName");
  }
  domain(): uWS.TemplatedApp {
    throw unsupported("domain");
  }
  removeServerName(): uWS.TemplatedApp {
    throw unsupported("removeServerName");
  }
  missingServerName(): uWS.TemplatedApp {
    throw unsupported("missingServerName");
  }

  #http(method: HttpMethodName, pattern: uWS.RecognizedString, handler: HttpHandler): uWS.TemplatedApp {
    return this.#record({ kind: "http", method, pattern, handler });
  }

  #record(route: Route): uWS.TemplatedApp {
    this.#routes.push(route);
    for (const entry of this.#apps) apply(entry, route);
    return this;
  }
}

/** Registers `route` on the entry's app; a WebSocket behaviour's open/close also count the app's sockets. */
function apply(entry: AppEntry, route: Route): void {
  if (route.kind === "http") {
    entry.app[route.method](route.pattern, route.handler);
    return;
  }
  const { behavior } = route;
  entry.app.ws(route.pattern, {
    ...behavior,
    open: (ws) => {
      entry.sockets += 1;
      return behavior.open?.(ws);
    },
    close: (ws, code, message) => {
      entry.sockets -= 1;
      return behavior.close?.(ws, code, message);
    },
  });
}

function unsupported(call: string): TributaryError {
  return new TributaryError("INTERNAL", `uWS ${call} is not available on the node's reloadable TLS app`);
}
