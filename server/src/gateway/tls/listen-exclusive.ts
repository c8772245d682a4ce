import uWS from "uWebSockets.js";
import { TributaryError } from "../../errors.ts";

/** uWS ListenOptions.LIBUS_LISTEN_EXCLUSIVE_PORT (a type-only enum in its typings). */
const LISTEN_EXCLUSIVE_PORT = 1;

type ListenWithOptions = (host: string, port: number, options: number, cb: (token: uWS.us_listen_socket | false) => void) => void;

/**
 * Listens on host:port with an exclusive port, synchronously (uWS calls back before it
 * returns): the listen socket, or false when the port cannot be bound. Exclusive because
 * uWS otherwise shares a port with another process (SO_REUSEPORT) and the kernel splits
 * connections between the two nodes at random.
 *
 * uSockets sets SO_REUSEADDR only on a listen socket given a port other than 0, and the
 * sockets it accepts inherit the option: binding the port again while they are open (a
 * certificate reload, reloadable-uws-app.ts) works only if the first socket was bound to
 * the number, not to 0.
 */
export function listenExclusive(app: uWS.TemplatedApp, host: string, port: number): uWS.us_listen_socket | false {
  let socket: uWS.us_listen_socket | false = false;
  (app.listen as unknown as ListenWithOptions).call(app, host, port, LISTEN_EXCLUSIVE_PORT, (token) => {
    socket = token;
  });
  return socket;
}

/** The port a listen socket is bound to. */
export function listenPort(socket: uWS.us_listen_socket): number {
  return uWS.us_socket_local_port(socket as unknown as uWS.us_socket);
}

/** The start-up error for a port that cannot be bound. */
export function cannotListen(host: string, port: number): TributaryError {
  return new TributaryError("UNAVAILABLE", `cannot listen on ${host}:${port} (address in use, not local, or not permitted); choose another --host/--port or 0 for a free port`, {
    host,
    port,
  });
}
