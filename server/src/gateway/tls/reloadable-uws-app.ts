import { Counter } from "prom-client";
import uWS from "uWebSockets.js";
import { toTributaryError } from "../../errors.ts";
import type { Logger } from "../../logger.ts";
import type { Metrics } from "../../metrics/metrics.ts";
import { cannotListen, listenExclusive, listenPort } from "./listen-exclusive.ts";
import { ReplayingApp } from "./replaying-app.ts";
import type { TlsCertificates } from "./tls-certificates.ts";
import type { TlsMaterial } from "./tls-material.ts";
import type { UwsApp } from "./uws-app.ts";

const RELOADS_METRIC = "tributary_https_certificate_reloads_total";

export interface ReloadableUwsAppOptions {
  /** How an app listens (default listenExclusive); tests make it fail. */
  listen?: typeof listenExclusive;
}

/** How often a port-0 listen is retried to get a socket bound to its number (see `listen`). */
const PORT_ZERO_ATTEMPTS = 3;

/**
 * The node's app with TLS: gateways mount on a ReplayingApp, and each certificate the
 * TlsCertificates emits (`change`) gets a new uWS SSLApp with every route replayed, which
 * takes over the listen socket; open connections stay on the app that accepted them.
 * Why, and the limits: uws-app.ts.
 *
 * Guarantees: at most one app listens at a time, always on the host and port first bound;
 * a reload that cannot listen leaves (or puts back) the previous app listening with its
 * certificate; after `stopListening` no reload listens again.
 */
export class ReloadableUwsApp implements UwsApp {
  readonly #replaying = new ReplayingApp();
  readonly #certs: TlsCertificates;
  readonly #log: Logger;
  readonly #reloads: Counter<"outcome"> | null;
  readonly #onChange = (material: TlsMaterial) => this.#reload(material);
  readonly #listen: typeof listenExclusive;
  /** The app new connections go to (listening, or to listen). */
  #current: uWS.TemplatedApp;
  /** Serial of #current's certificate. */
  #serial: string;
  #socket: uWS.us_listen_socket | null = null;
  #host = "";
  #port = 0;
  /** `listen` succeeded once: reloads listen on #host:#port. */
  #listened = false;
  #stopped = false;

  constructor(certs: TlsCertificates, log: Logger, metrics?: Metrics, options: ReloadableUwsAppOptions = {}) {
    this.#certs = certs;
    this.#log = log;
    this.#listen = options.listen ?? listenExclusive;
    this.#reloads = metrics ? reloadCounter(metrics) : null;
    this.#current = uWS.SSLApp(certs.uwsOptions());
    this.#serial = certs.material.leaf.serial;
    this.#replaying.add(this.#current);
    certs.on("change", this.#onChange);
  }

  get app(): uWS.TemplatedApp {
    return this.#replaying;
  }

  get port(): number {
    return this.#port;
  }

  /** Apps kept (the current one and those holding connections from before a reload), and their open WebSockets. */
  get apps(): { count: number; openSockets: number[] } {
    return { count: this.#replaying.apps, openSockets: this.#replaying.openSockets() };
  }

  /**
   * Listens; port 0 = a free port. A socket bound to 0 does not let a reload bind the port
   * again while connections it accepted are open (listen-exclusive.ts), so the free port
   * found is bound again by its number at once, in the same turn (retried with another
   * free port if something took it in between).
   */
  listen(host: string, port: number): number {
    if (this.#stopped || this.#listened) throw new Error("ReloadableUwsApp: listen called twice, or after stopListening");
    this.#host = host;
    let socket = this.#listen(this.#current, host, port);
    for (let attempt = 1; socket && port === 0 && attempt <= PORT_ZERO_ATTEMPTS; attempt++) {
      const free = listenPort(socket);
      uWS.us_listen_socket_close(socket);
      const byNumber = this.#listen(this.#current, host, free);
      if (byNumber) {
        socket = byNumber;
        port = free;
      } else {
        socket = this.#listen(this.#current, host, 0);
      }
    }
    if (!socket) throw cannotListen(host, port);
    if (port === 0) this.#log.warn("tls.https_port_not_rebindable", { host, port: listenPort(socket), note: "a certificate reload fails while connections are open; configure a port number" });
    this.#socket = socket;
    this.#port = listenPort(socket);
    this.#listened = true;
    return this.#port;
  }

  stopListening(): void {
    this.#stopped = true;
    this.#certs.off("change", this.#onChange);
    if (this.#socket !== null) uWS.us_listen_socket_close(this.#socket);
    this.#socket = null;
    this.#port = 0;
  }

  #reload(material: TlsMaterial): void {
    if (this.#stopped) return;
    const oldSerial = this.#serial;
    const newSerial = material.leaf.serial;
    let next: uWS.TemplatedApp;
    try {
      next = uWS.SSLApp(this.#certs.uwsOptions());
      this.#replaying.add(next);
    } catch (err) {
      this.#failed({ oldSerial, newSerial, message: toTributaryError(err).message });
      return;
    }
    if (!this.#listened) {
      // Not listening yet (a change during start-up): the new app is the one that will listen; the old one never accepted anything.
      this.#replaying.remove(this.#current);
      this.#current = next;
      this.#serial = newSerial;
      return;
    }
    // One synchronous turn: between the close and the listen no JS runs, and uWS accepts nothing.
    if (this.#socket !== null) uWS.us_listen_socket_close(this.#socket);
    this.#socket = null;
    const socket = this.#listen(next, this.#host, this.#port);
    if (socket) {
      this.#socket = socket;
      this.#current = next;
      this.#serial = newSerial;
      this.#reloads?.inc({ outcome: "reloaded" });
      this.#log.info("tls.https_reloaded", { oldSerial, newSerial, port: this.#port, appsKept: this.#replaying.apps, openSocketsPerApp: this.#replaying.openSockets() });
      return;
    }
    this.#replaying.remove(next);
    this.#socket = this.#listen(this.#current, this.#host, this.#port) || null;
    const listening = this.#socket !== null;
    this.#failed({
      oldSerial,
      newSerial,
      message: `cannot listen on ${this.#host}:${this.#port} with the new certificate (the port taken in between?)`,
      serving: listening ? oldSerial : null,
    });
    if (!listening) this.#log.error("tls.https_not_listening", { host: this.#host, port: this.#port, note: "HTTPS/WSS accept no new connections; open ones stay; the next certificate change (SIGHUP) tries to listen again" });
  }

  #failed(fields: Record<string, unknown>): void {
    this.#reloads?.inc({ outcome: "failed" });
    this.#log.error("tls.https_reload_failed", fields);
  }
}

/** `tributary_https_certificate_reloads_total{outcome}` on the node's registry (one per registry, both outcomes exported from 0). */
function reloadCounter(metrics: Metrics): Counter<"outcome"> {
  const existing = metrics.registry.getSingleMetric(RELOADS_METRIC);
  if (existing) return existing as Counter<"outcome">;
  const counter = new Counter({
    name: RELOADS_METRIC,
    help: "HTTPS/WSS certificate reloads (a new uWS app taking over the listen socket), by outcome: reloaded, or failed (logged as tls.https_reload_failed; the previous certificate stays).",
    labelNames: ["outcome"] as const,
    registers: [metrics.registry],
  });
  counter.labels({ outcome: "reloaded" }).inc(0);
  counter.labels({ outcome: "failed" }).inc(0);
  return counter;
}
