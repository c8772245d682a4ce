import mqtt, { type IPublishPacket, type Packet } from "mqtt-packet";
import { SendBudget } from "../../broker/delivery/send-budget.ts";
import type { Identity } from "../../auth/index.ts";
import { isTributaryError } from "../../errors.ts";
import { dispatch } from "./dispatcher.ts";
import { encodePacket, encodePlainPublish } from "./encode.ts";
import { PacketFramer, parserHoldsPart, parserPacketLength, type FramerSink } from "./fast-packets.ts";
import { IngressPipeline } from "./ingress.ts";
import type { MqttCore } from "./mqtt-core.ts";
import { MqttProtocolError } from "./mqtt-error.ts";
import { RC } from "./reason-codes.ts";
import type { OutgoingMessage, QoS } from "./record-mapping.ts";
import type { MqttUndeliverableReason } from "../../metrics/metrics.ts";
import type { Session, SessionConnection } from "./session/session.ts";
import type { WillMessage } from "./session/session-manager.ts";
import type { MqttTransport } from "./transport.ts";
import { LazyMap } from "../../lazy-collections.ts";

/** The initial `lastTopicBytes` of every connection (one shared empty buffer). */
const NO_BYTES = Buffer.alloc(0);

/** Topic Alias Maximum the gateway grants clients (MQTT 5). */
export const TOPIC_ALIAS_MAXIMUM = 64;

const PARSE_ERRORS_PROTOCOL = /Invalid protocolId|Invalid protocol version/;

/**
 * One MQTT network connection (TCP or WebSocket): parses bytes with mqtt-packet, checks
 * the packet size before buffering a payload, hands packets to the dispatcher one at a
 * time (a handler that returns a promise holds back the next packets, so SUBSCRIBE then
 * PUBLISH keeps its meaning), and writes packets back. Any protocol violation closes this
 * connection only (DISCONNECT with a reason code first for MQTT 5).
 */
export class MqttConnection implements SessionConnection {
  readonly core: MqttCore;
  readonly transport: MqttTransport;
  readonly parser: ReturnType<typeof mqtt.parser>;
  readonly pipeline: IngressPipeline;
  readonly connectedAt = Date.now();
  version = 4;
  connected = false;
  closed = false;
  clientId = "";
  clientIdBytes: Uint8Array | null = null;
  session: Session | null = null;
  keepAliveMs = 0;
  lastSeen = Date.now();
  will: WillMessage | null = null;
  /** Session expiry interval negotiated at CONNECT (may be changed by DISCONNECT). */
  sessionExpiry = 0;
  /** The client's Receive Maximum: QoS > 0 messages we may have in flight towards it. */
  sendQuota = 65535;
  /** The client's Maximum Packet Size. */
  maxPacketOut = Number.POSITIVE_INFINITY;
  topicAliasMaxOut = 0;
  readonly aliasesIn: Map<number, string> = new LazyMap();
  readonly aliasesOut: Map<string, number> = new LazyMap();
  /** QoS 1/2 PUBLISH received and not yet completed (PUBACK / PUBCOMP not sent). */
  inflightIn = 0;
  /** Last PUBLISH topic and its UTF-8 bytes (devices repeat topics). */
  lastTopic = "";
  lastTopicBytes: Buffer = NO_BYTES;
  /** Who the client proved to be at CONNECT; null before CONNECT and in open mode (no auth layer). */
  identity: Identity | null = null;
  /** Closes the connection when the identity expires (MqttAuth.armExpiry). */
  expiryTimer: NodeJS.Timeout | null = null;
  /** DISCONNECT received (no will unless reason 0x04). */
  gracefulDisconnect = false;
  #queue: Packet[] = [];
  #busy = false;
  readonly #framer: PacketFramer;
  #readingPaused = false;
  /** Bytes budget of what we send (the broker's one delivery policy): pause, then disconnect a slow consumer. */
  readonly budget: SendBudget;

  constructor(core: MqttCore, transport: MqttTransport) {
    this.core = core;
    this.transport = transport;
    this.parser = mqtt.parser({ protocolVersion: 4 });
    this.#framer = new PacketFramer(core.maxPacketBytes);
    this.parser.on("packet", (packet: Packet) => this.#onPacket(packet));
    this.parser.on("error", (err: Error) => this.#onParseError(err));
    this.pipeline = new IngressPipeline(
      core.broker,
      (logTopic) => core.directory.note(logTopic),
      () => this.#maybeResumeReading(),
      (err) => {
        core.log.error("mqtt.ingress.completion_failed", { client: this.clientId, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
        core.broker.metrics.backgroundErrors.inc({ task: "mqtt-ingress" });
      },
    );
    // The transports' drain events are not reliable for small overruns (uWS reports drain
    // only after a failed send): the budget also re-measures every 10 ms while paused.
    this.budget = new SendBudget(
      { maxBufferedBytes: core.maxBufferedBytes, slowConsumerGraceMs: core.slowConsumerGraceMs },
      () => this.transport.bufferedBytes(),
      (reason) => this.#slowConsumer(reason),
      10,
      () => core.broker.metrics.traffic.backpressurePauses.inc({ gateway: transport.kind === "ws" ? "mqtt-ws" : "mqtt" }),
    );
    transport.onDrain = () => this.budget.drained();
  }

  // ---- input --------------------------------------------------------------------------

  onData(data: Buffer): void {
    if (this.closed) return;
    if (this.#deferred.length > 0) {
      this.#deferred.push(data);
      this.#deferredBytes += data.length;
      if (this.#deferredBytes > DEFERRED_MAX) {
        if (this.transport.kind === "tcp") {
          // A client sending faster than its turns parse: stop reading it until the backlog is parsed.
          if (!this.#backlogPaused) {
            this.#backlogPaused = true;
            this.#applyReading();
          }
        } else {
          // uWS cannot stop reading one WebSocket: parse the backlog now (bounded memory first).
          while (this.#deferred.length > 0 && !this.closed) {
            const chunk = this.#deferred.shift()!;
            this.#deferredBytes -= chunk.length;
            this.#parse(chunk);
          }
        }
      }
      return;
    }
    if (data.length <= FIRST_SLICE) {
      this.#parse(data);
      return;
    }
    // A large read (many pipelined PUBLISH): parse its first slice now and the rest in the
    // next event-loop turn, so that the first slice's records are appended and its PUBACK /
    // PUBLISH written while the peer keeps working, instead of all after the whole read.
    this.#parse(data.subarray(0, FIRST_SLICE));
    this.#deferred.push(data.subarray(FIRST_SLICE));
    this.#deferredBytes = data.length - FIRST_SLICE;
    // Scheduled after this tick's ingress flush has scheduled the append (nextTick is FIFO),
    // so that the append of the first slice runs before the rest is parsed.
    process.nextTick(scheduleDeferred, this);
  }

  /** Input received but not parsed yet (the rest of a large read), in arrival order. */
  #deferred: Buffer[] = [];
  #deferredBytes = 0;

  /** setImmediate/nextTick callbacks take the connection as an argument: no closure kept per connection. */

  /**
   * Parses at most TURN_BYTES of the deferred input, then leaves the rest for the next
   * event-loop turn: the loop serves every other socket (new connections, probes) in
   * between, so one flooding client holds it for one slice per turn, not for its whole
   * backlog (up to 2 MB that libuv reads from a busy socket in one turn).
   */
  parseDeferred(): void {
    let budget = TURN_BYTES;
    while (this.#deferred.length > 0 && !this.closed && budget > 0) {
      let data = this.#deferred[0]!;
      if (data.length > budget) {
        this.#deferred[0] = data.subarray(budget);
        data = data.subarray(0, budget);
      } else this.#deferred.shift();
      this.#deferredBytes -= data.length;
      budget -= data.length;
      this.#parse(data);
    }
    if (!this.closed && this.#deferred.length > 0) {
      setImmediate(parseDeferred, this);
      return;
    }
    if (this.#backlogPaused) {
      this.#backlogPaused = false;
      this.#applyReading();
    }
    if (this.closed) {
      this.#deferred = [];
      this.#deferredBytes = 0;
    }
  }

  #parse(data: Buffer): void {
    // PUBLISH / PUBACK straight from the buffer, everything else through mqtt-packet (fast-packets.ts).
    this.#framer.push(data, (this.parser as unknown as { settings: { protocolVersion: number } }).settings.protocolVersion, this.connected, this.#sink);
  }

  /** The framer's sink: packets to #onPacket, other bytes to mqtt-packet. */
  readonly #sink: FramerSink = {
    packet: (packet) => {
      this.#onPacket(packet);
      return !this.closed;
    },
    fallback: (bytes) => this.#parseSlow(bytes),
    partial: () => this.#parserPartial,
  };

  /** mqtt-packet holds part of a packet. */
  #parserPartial = false;

  /** mqtt-packet parses `data`; false once the connection closed. */
  #parseSlow(data: Buffer): boolean {
    let left: number;
    try {
      left = this.parser.parse(data);
    } catch (err) {
      this.#onParseError(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
    if (this.closed) return false;
    this.#parserPartial = parserHoldsPart(this.parser, left);
    // A packet whose header announced more than we accept: refuse before buffering it.
    const length = parserPacketLength(this.parser);
    if (length > 0 && 1 + varIntSize(length) + length > this.core.maxPacketBytes) {
      this.fail(new MqttProtocolError(RC.PACKET_TOO_LARGE, `packet of ${length} bytes exceeds the maximum packet size ${this.core.maxPacketBytes}`));
      return false;
    }
    return !this.closed;
  }

  #onParseError(err: Error): void {
    if (this.closed) return;
    if (!this.connected && PARSE_ERRORS_PROTOCOL.test(err.message)) {
      // MQTT 3.1.1 §3.1.2.2: unacceptable protocol level → CONNACK 0x01, then close.
      if (/version/.test(err.message)) this.transport.write(mqtt.generate({ cmd: "connack", returnCode: 1, sessionPresent: false }, { protocolVersion: 4 }));
      this.close("bad-protocol");
      return;
    }
    this.fail(new MqttProtocolError(RC.MALFORMED_PACKET, `malformed packet: ${err.message}`));
  }

  #onPacket(packet: Packet): void {
    if (this.closed) return;
    const length = packet.length ?? 0;
    if (length > 0 && 1 + varIntSize(length) + length > this.core.maxPacketBytes) {
      // arrived whole within one read, so the header check in onData did not see it pending
      this.fail(new MqttProtocolError(RC.PACKET_TOO_LARGE, `packet of ${length} bytes exceeds the maximum packet size ${this.core.maxPacketBytes}`));
      return;
    }
    this.lastSeen = Date.now();
    if (packet.cmd === "connect" && !this.connected && !this.#busy) {
      // Later packets in this very buffer must be parsed with the client's version.
      (this.parser as unknown as { settings: { protocolVersion: number } }).settings.protocolVersion = packet.protocolVersion ?? 4;
    }
    if (this.#busy) {
      this.#queue.push(packet);
      if (this.#queue.length > 1000) this.#pauseReading();
      return;
    }
    this.#run(packet);
  }

  #run(packet: Packet): void {
    let result: void | Promise<void>;
    try {
      result = dispatch(this, packet);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (result) {
      this.#busy = true;
      result.then(
        () => this.#next(),
        (err: unknown) => this.fail(err),
      );
    }
  }

  #next(): void {
    this.#busy = false;
    while (!this.closed && !this.#busy && this.#queue.length > 0) this.#run(this.#queue.shift()!);
    this.#maybeResumeReading();
  }

  /** Too many publishes waiting for the log: stop reading from this client for a while. */
  checkIngressBackpressure(): void {
    if (this.pipeline.pending > this.core.maxPendingPublishes) this.#pauseReading();
  }

  #pauseReading(): void {
    if (this.#readingPaused) return;
    this.#readingPaused = true;
    this.#applyReading();
  }

  #maybeResumeReading(): void {
    if (this.#readingPaused && this.#queue.length < 100 && this.pipeline.pending <= this.core.maxPendingPublishes / 2) {
      this.#readingPaused = false;
      this.#applyReading();
    }
  }

  /** Deferred input over DEFERRED_MAX: reading stops until it is parsed. */
  #backlogPaused = false;
  #transportPaused = false;

  /** Reading is paused while packets wait for the log (#readingPaused) or input waits to be parsed (#backlogPaused). */
  #applyReading(): void {
    const pause = this.#readingPaused || this.#backlogPaused;
    if (pause === this.#transportPaused) return;
    this.#transportPaused = pause;
    if (pause) this.transport.pauseReading();
    else this.transport.resumeReading();
  }

  // ---- output -------------------------------------------------------------------------

  send(packet: Packet): void {
    if (this.closed && packet.cmd !== "disconnect") return;
    this.transport.write(encodePacket(packet, this.version));
  }

  /**
   * Sends a record as PUBLISH. False when this client cannot take it: larger than its Maximum
   * Packet Size, or not encodable at all; the caller skips it (never retried: a record that
   * cannot be sent now cannot be sent on a reconnect either). Each skip is logged
   * (`mqtt.deliver.undeliverable`) and counted in `tributary_mqtt_undeliverable_records_total`;
   * properties MQTT cannot carry are left out (record-mapping.ts) and counted per delivery.
   */
  sendPublish(msg: OutgoingMessage, qos: QoS, packetId: number, retain: boolean, dup: boolean, subIds: number[] | undefined): boolean {
    if (this.closed) return true;
    let sent: boolean;
    try {
      sent = this.#sendPublish(msg, qos, packetId, retain, dup, subIds);
    } catch (err) {
      this.#undeliverable(msg, "unencodable", String(err));
      return false;
    }
    if (!sent) {
      this.#undeliverable(msg, "too-large", `the PUBLISH exceeds the client's Maximum Packet Size of ${this.maxPacketOut} bytes`);
      return false;
    }
    this.core.delivered++;
    if (this.version === 5 && msg.droppedProperties > 0) this.core.broker.metrics.mqttDroppedProperties.inc(msg.droppedProperties);
    return true;
  }

  #undeliverable(msg: OutgoingMessage, reason: MqttUndeliverableReason, error: string): void {
    this.core.broker.metrics.mqttUndeliverableRecords.inc({ reason });
    this.core.log.warn("mqtt.deliver.undeliverable", { client: this.clientId, topic: msg.topic, offset: msg.offset, reason, error });
  }

  #sendPublish(msg: OutgoingMessage, qos: QoS, packetId: number, retain: boolean, dup: boolean, subIds: number[] | undefined): boolean {
    const v5 = this.version === 5;
    let expiry: number | undefined;
    if (v5 && msg.expiresAt !== null) expiry = Math.max(1, Math.ceil((msg.expiresAt - Date.now()) / 1000));
    const alias = v5 && this.topicAliasMaxOut > 0;
    if (!v5 || (expiry === undefined && subIds === undefined && !alias)) {
      // Shared encoding: one buffer per (version, qos, retain, dup) per message; packet id patched.
      const variant = (this.version << 4) | (qos << 2) | (retain ? 2 : 0) | (dup ? 1 : 0);
      let buf = msg.encodedVariant === variant ? msg.encoded : null;
      if (!buf) {
        // First subscriber: encode with its packet id; later ones copy and patch the id.
        const properties = v5 ? msg.properties : undefined;
        buf =
          (properties === undefined ? encodePlainPublish(msg.topic, msg.payload, qos, retain, dup, packetId, this.version) : null) ??
          encodePacket({ cmd: "publish", topic: msg.topic, payload: msg.payload as Buffer, qos, retain, dup, messageId: qos > 0 ? packetId : undefined, properties } as IPublishPacket, this.version);
        msg.encoded = buf;
        msg.encodedVariant = variant;
        if (buf.length > this.maxPacketOut) return false;
        this.transport.write(buf);
        return true;
      }
      if (buf.length > this.maxPacketOut) return false;
      if (qos > 0) {
        const out = Buffer.allocUnsafe(buf.length);
        buf.copy(out);
        let i = 1;
        while (out[i]! & 0x80) i++;
        const at = i + 1 + 2 + out.readUInt16BE(i + 1);
        out.writeUInt16BE(packetId, at);
        buf = out;
      }
      this.transport.write(buf);
      return true;
    }
    const properties: NonNullable<IPublishPacket["properties"]> = { ...msg.properties };
    if (expiry !== undefined) properties.messageExpiryInterval = expiry;
    if (subIds !== undefined) properties.subscriptionIdentifier = subIds.length === 1 ? subIds[0]! : (subIds as unknown as number);
    let topic = msg.topic;
    if (alias) {
      const known = this.aliasesOut.get(topic);
      if (known !== undefined) {
        properties.topicAlias = known;
        topic = "";
      } else if (this.aliasesOut.size < this.topicAliasMaxOut) {
        const id = this.aliasesOut.size + 1;
        this.aliasesOut.set(topic, id);
        properties.topicAlias = id;
      }
    }
    const buf = encodePacket(
      { cmd: "publish", topic, payload: msg.payload as Buffer, qos, retain, dup, messageId: qos > 0 ? packetId : undefined, properties } as IPublishPacket,
      5,
    );
    if (buf.length > this.maxPacketOut) {
      if (properties.topicAlias !== undefined && topic !== "") this.aliasesOut.delete(topic);
      return false;
    }
    this.transport.write(buf);
    return true;
  }

  sendPubrel(packetId: number): void {
    this.sendAck("pubrel", packetId);
  }

  /** PUBACK / PUBREC / PUBREL / PUBCOMP with success: a copy of a pre-generated packet with the id patched in. */
  sendAck(cmd: "puback" | "pubrec" | "pubrel" | "pubcomp", packetId: number): void {
    if (this.closed) return;
    const template = ackTemplate(cmd, this.version);
    const out = Buffer.allocUnsafe(template.length);
    template.copy(out);
    out.writeUInt16BE(packetId, 2);
    this.transport.write(out);
  }

  congested(): boolean {
    return !this.budget.check();
  }

  whenDrained(fn: () => void): void {
    void this.budget.whenOpen().then(() => {
      if (!this.closed) fn();
    });
  }

  /**
   * The client stopped reading for longer than the grace period: MQTT 5 DISCONNECT 0x97
   * (Quota exceeded) with the reason, 3.1.1 a plain close. Its persistent session keeps
   * its position (nothing acknowledged is lost; what was in flight is sent again).
   */
  #slowConsumer(reason: string): void {
    const gateway = this.transport.kind === "ws" ? "mqtt-ws" : "mqtt";
    this.core.broker.metrics.slowConsumerDisconnects.inc({ gateway });
    this.core.log.info("mqtt.slow_consumer", { client: this.clientId, remote: this.transport.remoteAddress, reason });
    this.disconnect(RC.QUOTA_EXCEEDED, `slow consumer: ${reason}`);
  }

  // ---- closing ------------------------------------------------------------------------

  /** Closes because of `err`: a protocol violation (its reason code) or an internal failure (0x80). */
  fail(err: unknown): void {
    if (this.closed) return;
    const reasonCode = err instanceof MqttProtocolError ? err.reasonCode : RC.UNSPECIFIED_ERROR;
    this.core.broker.metrics.protocolErrors.inc({ gateway: this.transport.kind === "ws" ? "mqtt-ws" : "mqtt", code: `0x${reasonCode.toString(16).padStart(2, "0")}` });
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof MqttProtocolError || isTributaryError(err)) this.core.log.debug("mqtt.connection.rejected", { client: this.clientId, remote: this.transport.remoteAddress, reasonCode, error: message });
    else this.core.log.warn("mqtt.connection.error", { client: this.clientId, remote: this.transport.remoteAddress, error: message });
    this.disconnect(reasonCode, message);
  }

  /** Sends DISCONNECT (MQTT 5, after CONNACK) and closes the connection. */
  disconnect(reasonCode: number, reasonString?: string): void {
    if (this.closed) return;
    if (this.connected && this.version === 5) {
      const properties = reasonString ? { reasonString: reasonString.slice(0, 200) } : undefined;
      this.transport.write(mqtt.generate({ cmd: "disconnect", reasonCode, properties }, { protocolVersion: 5 }));
    }
    this.close(`reason-0x${reasonCode.toString(16)}`);
  }

  /** Ends the transport and the connection's part of the session. */
  close(why: string): void {
    if (this.closed) return;
    this.transport.end();
    this.#closed(why);
  }

  /** The peer or the network closed the transport. */
  onTransportClose(): void {
    if (this.closed) return;
    // What the peer sent before closing is handled as if it had been parsed at once.
    if (this.#deferred.length > 0) this.parseDeferred();
    if (this.closed) return;
    this.#closed("transport-closed");
  }

  #closed(why: string): void {
    if (this.closed) return; // a WebSocket may report its close while we are closing it
    this.closed = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    this.budget.close();
    this.#queue = [];
    this.#framer.clear();
    this.core.connectionClosed(this, why);
  }
}

const ACK_TEMPLATES = new Map<string, Buffer>();

/**
 * A success ack without properties in its shortest form, the same bytes for every version:
 * MQTT 5 lets the reason code and property length be left out when the reason is Success
 * and there are no properties (§3.4.2.1), as Mosquitto sends them; some MQTT 5 clients
 * (paho-mqtt 1.6 in Debian 12) fail on the long form.
 */
function ackTemplate(cmd: "puback" | "pubrec" | "pubrel" | "pubcomp", _version: number): Buffer {
  let t = ACK_TEMPLATES.get(cmd);
  if (!t) {
    t = mqtt.generate({ cmd, messageId: 1 } as Packet, { protocolVersion: 4 });
    ACK_TEMPLATES.set(cmd, t);
  }
  return t;
}

function scheduleDeferred(conn: MqttConnection): void {
  setImmediate(parseDeferred, conn);
}

function parseDeferred(conn: MqttConnection): void {
  conn.parseDeferred();
}

/** Bytes of a read parsed in the turn it arrives (some 50 small PUBLISH); the rest waits one turn. */
const FIRST_SLICE = 4096;
/** Deferred input beyond this stops reading the socket until it is parsed (a bound on what a flooding client buffers). */
const DEFERRED_MAX = 256 * 1024;
/** Deferred input one connection parses per event-loop turn. */
const TURN_BYTES = 64 * 1024;

function varIntSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}
