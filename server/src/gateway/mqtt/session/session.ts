import type { OutgoingMessage, QoS } from "../record-mapping.ts";
import { CursorSet, type CursorDeps, type StoredPosition } from "../delivery/cursor-set.ts";
import type { DeliveryTarget, MqttCursor } from "../delivery/mqtt-cursor.ts";
import type { TributaryError } from "../../../errors.ts";
import type { MqttGroupMember } from "../delivery/group-member.ts";
import { firstLevel, logTopicForLevel } from "../topic-mapping.ts";
import type { Subscription } from "./subscription.ts";
import { LazyMap, LazySet } from "../../../lazy-collections.ts";

/** What a session needs from the connection it is attached to. */
export interface SessionConnection {
  readonly version: number;
  /** Client's Receive Maximum: QoS 1/2 messages we may have in flight towards it. */
  readonly sendQuota: number;
  /** Sends a PUBLISH; false when dropped (larger than the client's Maximum Packet Size). */
  sendPublish(msg: OutgoingMessage, qos: QoS, packetId: number, retain: boolean, dup: boolean, subIds: number[] | undefined): boolean;
  sendPubrel(packetId: number): void;
  /** Socket buffer over the limit: stop offering until `whenDrained` fires. */
  congested(): boolean;
  whenDrained(fn: () => void): void;
}

export interface Inflight {
  packetId: number;
  msg: OutgoingMessage;
  qos: 1 | 2;
  /** "publish": waiting for PUBACK/PUBREC; "pubrel": PUBREL sent, waiting for PUBCOMP. */
  stage: "publish" | "pubrel";
  cursor: MqttCursor | null;
  retain: boolean;
  subIds: number[] | undefined;
  /** QoS 2 of a consumer-group delivery: the position moves on PUBCOMP, not PUBREC. */
  ackOnComplete: boolean;
}

interface Direct {
  msg: OutgoingMessage;
  qos: QoS;
  retain: boolean;
  subIds: number[] | undefined;
}

export interface SessionHooks {
  /** A persistent position or the subscription set changed. */
  changed(session: Session): void;
  /** Shared groups whose cursors wait for room in this session. */
  resumeShared(session: Session): void;
}

/**
 * An MQTT session: subscriptions, a cursor per partition of every log topic they read,
 * and the QoS 1/2 state towards the client (in-flight window = the client's Receive
 * Maximum) and from it (QoS 2 packet ids awaiting PUBREL). It outlives its connection
 * when the session expiry interval is > 0.
 *
 * Overlapping subscriptions: a message matching several of the session's subscriptions
 * is delivered once, at the highest granted QoS among them (capped by the QoS it was
 * published with), carrying every matching Subscription Identifier.
 */
export class Session implements DeliveryTarget {
  readonly clientId: string;
  /** Session Expiry Interval, seconds (0 = ends with the connection; 0xFFFFFFFF = never). */
  expiry: number;
  connection: SessionConnection | null = null;
  readonly subs: Map<string, Subscription> = new LazyMap();
  readonly cursors: CursorSet;
  readonly inflight: Map<number, Inflight> = new LazyMap();
  /** QoS 2 packet ids received (PUBREC sent), awaiting PUBREL: duplicates are not stored twice. */
  readonly inboundQos2: Set<number> = new LazySet();
  /** Wall-clock ms when the connection went away (null while connected). */
  disconnectedAt: number | null = null;
  expiryTimer: NodeJS.Timeout | null = null;
  willTimer: NodeJS.Timeout | null = null;
  /** Positions loaded from the store, used when cursors are first created after a restart. */
  storedPositions: Map<string, Map<number, StoredPosition>> | null = null;
  /** The session record (subscriptions, expiry) must be written again. */
  subsDirty = false;
  /** Subscriptions with No Local: while > 0 this client's publishes carry its client id. */
  noLocalCount = 0;
  /** CONNECT user name (the group member's `user`). */
  user: string | null = null;
  /** Consumer-group memberships of `$share` subscriptions, by subscription filter. */
  readonly groupMembers: Map<string, MqttGroupMember> = new LazyMap();
  readonly #literal: Map<string, Subscription[]> = new LazyMap();
  #wild: Subscription[] = [];
  readonly #hooks: SessionHooks;
  #nextPacketId = 1;
  #blocked = false;
  #direct: Direct[] = [];
  #closed = false;

  constructor(clientId: string, expiry: number, deps: CursorDeps, hooks: SessionHooks) {
    this.clientId = clientId;
    this.expiry = expiry;
    this.cursors = new CursorSet(deps, this);
    this.#hooks = hooks;
  }

  get hasWildcardFirstLevel(): boolean {
    return this.#wild.length > 0;
  }

  /** Log topics this session's (non-shared) subscriptions read; null entry for "every topic". */
  neededTopics(): { literal: Set<string>; wildcard: boolean } {
    return { literal: new Set(this.#literal.keys()), wildcard: this.#wild.length > 0 };
  }

  /** Adds or replaces a (non-shared) subscription. Returns false when its first level maps to no log topic. */
  addSubscription(sub: Subscription): boolean {
    const prev = this.subs.get(sub.filter);
    if (prev) {
      this.#unindex(prev);
      if (prev.nl) this.noLocalCount--;
    }
    if (sub.topicFilter.literalFirstLevel) {
      const logTopic = logTopicForLevel(firstLevel(sub.topicFilter.filter));
      if (logTopic === null) return false;
      let list = this.#literal.get(logTopic);
      if (!list) this.#literal.set(logTopic, (list = []));
      list.push(sub);
    } else {
      this.#wild.push(sub);
    }
    this.subs.set(sub.filter, sub);
    if (sub.nl) this.noLocalCount++;
    return true;
  }

  removeSubscription(filter: string): Subscription | undefined {
    const sub = this.subs.get(filter);
    if (!sub) return undefined;
    this.subs.delete(filter);
    if (sub.nl) this.noLocalCount--;
    if (!sub.share) this.#unindex(sub);
    return sub;
  }

  #unindex(sub: Subscription): void {
    if (sub.topicFilter.literalFirstLevel) {
      const logTopic = logTopicForLevel(firstLevel(sub.topicFilter.filter));
      if (logTopic === null) return;
      const list = this.#literal.get(logTopic)?.filter((s) => s !== sub);
      if (list && list.length > 0) this.#literal.set(logTopic, list);
      else this.#literal.delete(logTopic);
    } else {
      this.#wild = this.#wild.filter((s) => s !== sub);
    }
  }

  /** Closes the cursors of log topics no subscription reads any more. */
  pruneCursors(): void {
    if (this.#wild.length > 0) return;
    for (const logTopic of [...this.cursors.byTopic.keys()]) if (!this.#literal.has(logTopic)) this.cursors.drop(logTopic);
  }

  attach(connection: SessionConnection): void {
    this.connection = connection;
    this.disconnectedAt = null;
    this.#blocked = false;
    // Resend what the client never acknowledged, with the same packet ids [MQTT-4.4.0-1].
    for (const entry of this.inflight.values()) {
      if (entry.stage === "pubrel") connection.sendPubrel(entry.packetId);
      else connection.sendPublish(entry.msg, entry.qos, entry.packetId, entry.retain, true, entry.subIds);
    }
    this.cursors.startAll();
  }

  detach(): void {
    this.connection = null;
    this.disconnectedAt = Date.now();
    this.cursors.stopAll();
    this.#direct = [];
  }

  close(): void {
    this.#closed = true;
    this.connection = null;
    this.cursors.closeAll();
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.willTimer) clearTimeout(this.willTimer);
    this.expiryTimer = this.willTimer = null;
  }

  get closed(): boolean {
    return this.#closed;
  }

  positionChanged(): void {
    if (this.expiry > 0) this.#hooks.changed(this);
  }

  cursorFailed(cursor: MqttCursor, err: TributaryError): void {
    this.cursors.cursorFailed(cursor, err);
  }

  /** DeliveryTarget: a record from one of this session's own cursors. */
  offer(msg: OutgoingMessage, cursor: MqttCursor): boolean {
    const conn = this.connection;
    if (!conn) return false;
    let maxQos = -1;
    let subIds: number[] | undefined;
    const literal = this.#literal.get(cursor.logTopic);
    if (literal) {
      for (const sub of literal) {
        if (!this.#matches(sub, msg)) continue;
        if (sub.qos > maxQos) maxQos = sub.qos;
        if (sub.id !== undefined) (subIds ??= []).push(sub.id);
      }
    }
    for (const sub of this.#wild) {
      if (!this.#matches(sub, msg)) continue;
      if (sub.qos > maxQos) maxQos = sub.qos;
      if (sub.id !== undefined) (subIds ??= []).push(sub.id);
    }
    if (maxQos < 0) return true;
    if (msg.expiresAt !== null && msg.expiresAt <= Date.now()) return true;
    const qos = (msg.publishedQos === null ? maxQos : Math.min(maxQos, msg.publishedQos)) as QoS;
    return this.#send(conn, msg, qos, cursor, msg.retain && this.#rap(msg, cursor), subIds);
  }

  #matches(sub: Subscription, msg: OutgoingMessage): boolean {
    return sub.topicFilter.matches(msg.topic) && !(sub.nl && msg.origin === this.clientId);
  }

  #rap(msg: OutgoingMessage, cursor: MqttCursor): boolean {
    const literal = this.#literal.get(cursor.logTopic) ?? [];
    for (const sub of literal) if (sub.rap && sub.topicFilter.matches(msg.topic)) return true;
    for (const sub of this.#wild) if (sub.rap && sub.topicFilter.matches(msg.topic)) return true;
    return false;
  }

  /**
   * A message of a shared group this session is a member of. `ackOnComplete`: a QoS 2
   * delivery counts as acknowledged on PUBCOMP (consumer groups) instead of PUBREC.
   */
  offerShared(msg: OutgoingMessage, qos: QoS, cursor: MqttCursor, subIds: number[] | undefined, ackOnComplete = false): boolean {
    const conn = this.connection;
    if (!conn) return false;
    return this.#send(conn, msg, qos, cursor, false, subIds, ackOnComplete);
  }

  /** Can take one more message at `qos` right now. */
  hasRoom(qos: QoS): boolean {
    const conn = this.connection;
    if (!conn || conn.congested()) return false;
    return qos === 0 || this.inflight.size < conn.sendQuota;
  }

  /** Retained messages on subscribe: sent as soon as there is room, before cursor traffic. */
  sendDirect(msg: OutgoingMessage, qos: QoS, retain: boolean, subIds: number[] | undefined): void {
    const conn = this.connection;
    if (!conn) return;
    if (this.#direct.length > 0 || !this.#send(conn, msg, qos, null, retain, subIds)) this.#direct.push({ msg, qos, retain, subIds });
  }

  #send(
    conn: SessionConnection,
    msg: OutgoingMessage,
    qos: QoS,
    cursor: MqttCursor | null,
    retain: boolean,
    subIds: number[] | undefined,
    ackOnComplete = false,
  ): boolean {
    if (conn.congested()) {
      this.#block(conn, true);
      return false;
    }
    if (qos === 0) {
      conn.sendPublish(msg, 0, 0, retain, false, subIds);
      return true;
    }
    if (this.inflight.size >= conn.sendQuota) {
      this.#block(conn, false);
      return false;
    }
    const packetId = this.#allocatePacketId();
    const entry: Inflight = { packetId, msg, qos, stage: "publish", cursor, retain, subIds, ackOnComplete };
    // Cannot be sent to this client (too large for it, unencodable; counted by the connection):
    // skipped, never in flight, so the position moves past it instead of re-sending it forever.
    if (!conn.sendPublish(msg, qos, packetId, retain, false, subIds)) return true;
    this.inflight.set(packetId, entry);
    cursor?.track(msg.offset);
    return true;
  }

  #block(conn: SessionConnection, congested: boolean): void {
    if (this.#blocked) return;
    this.#blocked = true;
    if (congested) conn.whenDrained(() => this.#unblock());
  }

  /** A share group could not place a message with any member: wake it when this session has room. */
  markBlocked(): void {
    const conn = this.connection;
    if (conn) this.#block(conn, conn.congested());
  }

  /**
   * Room appeared (acknowledgement or drain). Resuming waits for the end of the current
   * tick, so that all acknowledgements read together free their slots first and the paused
   * cursors then send a batch instead of one message per acknowledgement.
   */
  #unblock(): void {
    if (!this.#blocked || this.#unblockScheduled) return;
    this.#unblockScheduled = true;
    process.nextTick(this.#doUnblock);
  }

  #unblockScheduled = false;

  readonly #doUnblock = (): void => {
    this.#unblockScheduled = false;
    if (!this.#blocked || !this.connection) return;
    this.#blocked = false;
    const conn = this.connection;
    while (this.#direct.length > 0) {
      const d = this.#direct[0]!;
      if (!this.#send(conn, d.msg, d.qos, null, d.retain, d.subIds)) return;
      this.#direct.shift();
    }
    this.cursors.resumeAll();
    this.#hooks.resumeShared(this);
  };

  #allocatePacketId(): number {
    for (;;) {
      const id = this.#nextPacketId;
      this.#nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  /** PUBACK (QoS 1). Returns false when no such packet id was in flight. */
  puback(packetId: number): boolean {
    const entry = this.inflight.get(packetId);
    if (!entry || entry.qos !== 1) return false;
    this.inflight.delete(packetId);
    entry.cursor?.ack(entry.msg.offset);
    this.#unblock();
    return true;
  }

  /** PUBREC (QoS 2): the client has the message; the position moves on, PUBREL follows. */
  pubrec(packetId: number, failed: boolean): boolean {
    const entry = this.inflight.get(packetId);
    if (!entry || entry.qos !== 2) return false;
    if (!entry.ackOnComplete || failed) entry.cursor?.ack(entry.msg.offset);
    if (failed) {
      this.inflight.delete(packetId);
      this.#unblock();
      return true;
    }
    entry.stage = "pubrel";
    return true;
  }

  pubcomp(packetId: number): boolean {
    const entry = this.inflight.get(packetId);
    if (!entry || entry.stage !== "pubrel") return false;
    this.inflight.delete(packetId);
    if (entry.ackOnComplete) entry.cursor?.ack(entry.msg.offset);
    this.#unblock();
    return true;
  }

  /** Room appeared elsewhere (a share group's cursor may continue). */
  get blocked(): boolean {
    return this.#blocked;
  }
}
