import type { Socket } from "node:net";
import type { WebSocket } from "uWebSockets.js";

/**
 * Byte pipe under one MQTT connection (TCP socket or WebSocket). Writes issued in the
 * same tick are coalesced into one socket write / one WebSocket frame (MQTT over
 * WebSocket allows several packets per frame).
 */
export interface MqttTransport {
  readonly kind: "tcp" | "ws";
  readonly remoteAddress: string;
  write(packet: Buffer): void;
  /** Bytes queued in the socket (plus not yet flushed): used to pause slow consumers. */
  bufferedBytes(): number;
  /** Flushes what was written, then closes. */
  end(): void;
  /** Closes at once. */
  destroy(): void;
  /** Stop / restart reading from the peer (publish backpressure; TCP only). */
  pauseReading(): void;
  resumeReading(): void;
  /** Called once, when the transport writable side drains after being over the limit. */
  onDrain: (() => void) | null;
}

export class TcpTransport implements MqttTransport {
  readonly kind = "tcp" as const;
  readonly remoteAddress: string;
  onDrain: (() => void) | null = null;
  readonly #socket: Socket;
  readonly #out = new PacketBatcher(
    (data) => {
      if (!this.#closed) this.#socket.write(data);
    },
    (fn) => process.nextTick(fn),
  );
  #closed = false;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.on("drain", () => this.onDrain?.());
  }

  write(packet: Buffer): void {
    if (!this.#closed) this.#out.push(packet);
  }

  bufferedBytes(): number {
    return this.#socket.writableLength + this.#out.bytes;
  }

  end(): void {
    if (this.#closed) return;
    this.#out.flush();
    this.#closed = true;
    this.#socket.end();
    // Do not wait forever for a peer that never reads.
    setTimeout(() => this.#socket.destroy(), 1000).unref();
  }

  destroy(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  pauseReading(): void {
    this.#socket.pause();
  }

  resumeReading(): void {
    this.#socket.resume();
  }
}

export interface WsUserData {
  connection: { onData(data: Buffer): void; onTransportClose(): void; close(why: string): void; transport: MqttTransport & { markClosed?: () => void } } | null;
}

export class WsTransport implements MqttTransport {
  readonly kind = "ws" as const;
  readonly remoteAddress: string;
  onDrain: (() => void) | null = null;
  readonly #ws: WebSocket<WsUserData>;
  readonly #out = new PacketBatcher((data) => {
    if (!this.#closed) this.#ws.send(data, true, false);
  }, (fn) => setImmediate(fn));
  #closed = false;

  constructor(ws: WebSocket<WsUserData>) {
    this.#ws = ws;
    this.remoteAddress = Buffer.from(ws.getRemoteAddressAsText()).toString();
  }

  /** The uWS socket closed: no more calls into it. */
  markClosed(): void {
    this.#closed = true;
  }

  write(packet: Buffer): void {
    if (!this.#closed) this.#out.push(packet);
  }

  bufferedBytes(): number {
    return this.#closed ? 0 : this.#ws.getBufferedAmount() + this.#out.bytes;
  }

  end(): void {
    if (this.#closed) return;
    this.#out.flush();
    this.#closed = true;
    this.#ws.end(1000);
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ws.close();
  }

  pauseReading(): void {}

  resumeReading(): void {}
}

/**
 * Packets written during one turn leave as one socket write: queued, then sent together
 * when `schedule` runs the flush (TCP: end of this tick; WebSocket: next loop turn).
 */
class PacketBatcher {
  #pending: Buffer[] = [];
  bytes = 0;
  #scheduled = false;

  constructor(
    readonly send: (data: Buffer) => void,
    readonly schedule: (fn: () => void) => void,
  ) {}

  push(packet: Buffer): void {
    this.#pending.push(packet);
    this.bytes += packet.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.schedule(this.flush);
    }
  }

  readonly flush = (): void => {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    const data = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.bytes);
    this.#pending = [];
    this.bytes = 0;
    this.send(data);
  };
}
