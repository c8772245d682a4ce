/**
 * The node's one budget of client connections, shared by every gateway (WebSocket SDK,
 * MQTT over TCP and over WebSocket): `limits.maxConnections`, lowered at start-up below the
 * process's open-file limit (see `effectiveMaxConnections`). A gateway checks `full` before
 * accepting a connection (WebSocket: HTTP 503 at upgrade; MQTT: CONNACK 0x97 / 0x03) and
 * reports each accepted connection's open and close.
 */
export class ConnectionLimit {
  readonly max: number;
  #open = 0;

  constructor(max: number) {
    this.max = max;
  }

  get open(): number {
    return this.#open;
  }

  /** No room for one more connection. */
  get full(): boolean {
    return this.#open >= this.max;
  }

  opened(): void {
    this.#open++;
  }

  closed(): void {
    if (this.#open > 0) this.#open--;
  }
}
