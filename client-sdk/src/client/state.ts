/** Connection state of a client. Transitions: see README "State". */
export enum State {
  /** Not connected; a reconnect is scheduled (after a lost connection) or none was started. */
  Disconnected = "disconnected",
  /** Opening the WebSocket and waiting for the server's `welcome`. */
  Connecting = "connecting",
  /** `welcome` received: subscriptions are live and publishes go straight out. */
  Connected = "connected",
  /** Terminal: `close()` was called or the server refused for good (close code 4500+). */
  Closed = "closed",
}
