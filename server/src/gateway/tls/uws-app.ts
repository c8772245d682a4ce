/**
 * The node's uWS app and its one listen socket: `uWS.App()` without TLS (PlainUwsApp), a
 * set of `uWS.SSLApp`s (HTTPS, WSS, MQTT over WSS at /mqtt) with it (ReloadableUwsApp).
 *
 * Certificate reload: HTTPS/WSS take a new certificate for new connections; open
 * connections (WebSockets included) keep theirs. uWS (v20.30 here) loads an app's SSL
 * context once, when the app is created, and has no call to replace it (its per-server-name
 * contexts, `addServerName`, were tried and rejected: each has its own, empty router, binding
 * routes to it prints to stdout, and a bad file crashes the process). So on a `change` of
 * TlsCertificates (SIGHUP, or a watched file), ReloadableUwsApp creates a new SSLApp from
 * the new files, replays onto it every route and WebSocket behaviour the gateways
 * registered, in their order (the 404 catch-all stays last), then, in one synchronous
 * turn, closes the old listen socket and listens on the same host and port with the new
 * app. The old apps stay referenced: they serve the connections they accepted until those
 * close, and `publish` (the WebSocket gateway's native fan-out) reaches the sockets of
 * every app that still has some. Logged as `tls.https_reloaded` (old and new serial).
 *
 * The limits: a connection that arrives in the microseconds between the close and the new
 * listen is refused (the client retries), and connections still in the old socket's accept
 * queue (accepted by the kernel, not yet by uWS) are reset: measured at about 400 new TLS
 * connections a second, 0.1 to 0.4 failed per reload. A new listen that fails (the
 * port taken meanwhile) is logged (`tls.https_reload_failed`), counted
 * (`tributary_https_certificate_reloads_total{outcome="failed"}`), and the old app listens
 * again with the old certificate; the next change tries again. Each reload keeps one more
 * app (its SSL context and routes, about 35 KB) for the life of the process: bounded by
 * the number of certificate renewals. A port-0 listen is bound again by its number
 * (reloadable-uws-app.ts `listen`), or the first reload with open connections would fail.
 */
import type uWS from "uWebSockets.js";
import type { Logger } from "../../logger.ts";
import type { Metrics } from "../../metrics/metrics.ts";
import { PlainUwsApp } from "./plain-uws-app.ts";
import { ReloadableUwsApp } from "./reloadable-uws-app.ts";
import type { TlsCertificates } from "./tls-certificates.ts";

/** The node's HTTP/WebSocket app and its listen socket. */
export interface UwsApp {
  /** Where gateways mount their routes and WebSocket behaviours, and publish. */
  readonly app: uWS.TemplatedApp;
  /** The bound port: 0 before `listen` and after `stopListening`. */
  readonly port: number;
  /**
   * Listens on host:port (0 = a free port) with an exclusive port (never shared with
   * another process); returns the bound port. Throws UNAVAILABLE when it cannot.
   */
  listen(host: string, port: number): number;
  /** Stops accepting connections (open ones stay, and no certificate reload listens again). Idempotent. */
  stopListening(): void;
}

/** A plain app without TLS; with TLS one that takes each new certificate of `certs` (see the module comment). */
export function createUwsApp(certs: TlsCertificates | null, log: Logger, metrics?: Metrics): UwsApp {
  return certs === null ? new PlainUwsApp() : new ReloadableUwsApp(certs, log, metrics);
}
