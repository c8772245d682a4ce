import uWS from "uWebSockets.js";
import { cannotListen, listenExclusive, listenPort } from "./listen-exclusive.ts";
import type { UwsApp } from "./uws-app.ts";

/** The node's app without TLS: one `uWS.App()`, handed to the gateways as is. */
export class PlainUwsApp implements UwsApp {
  readonly app: uWS.TemplatedApp = uWS.App();
  #socket: uWS.us_listen_socket | null = null;
  #port = 0;

  get port(): number {
    return this.#port;
  }

  listen(host: string, port: number): number {
    if (this.#socket !== null) throw new Error("PlainUwsApp: already listening");
    const socket = listenExclusive(this.app, host, port);
    if (!socket) throw cannotListen(host, port);
    this.#socket = socket;
    this.#port = listenPort(socket);
    return this.#port;
  }

  stopListening(): void {
    if (this.#socket !== null) uWS.us_listen_socket_close(this.#socket);
    this.#socket = null;
    this.#port = 0;
  }
}
