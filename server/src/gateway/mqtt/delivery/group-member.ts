import { isTributaryError, TributaryError } from "../../../errors.ts";
import type { GroupCoordinator, GroupMemberChannel, MemberAssignment, MemberRevocation } from "../../../groups/index.ts";
import { levelFor, type OutgoingMessage, type QoS } from "../record-mapping.ts";
import type { Session } from "../session/session.ts";
import type { Subscription } from "../session/subscription.ts";
import type { CursorDeps } from "./cursor-set.ts";
import { MqttCursor, type DeliveryTarget } from "./mqtt-cursor.ts";

export interface MqttGroupMemberDeps extends CursorDeps {
  coordinator: GroupCoordinator;
  nodeId: string;
  /** How often the acknowledged prefix is committed while it moves (ms). */
  commitIntervalMs: number;
  /** Longest wait for in-flight QoS 1/2 deliveries of revoked partitions (ms). */
  revokeTimeoutMs: number;
  /** The member id changed (persist it with the session). */
  memberIdChanged(session: Session): void;
}

/** The coordinator's longest member session timeout (docs/consumer-groups.md). */
const MAX_GROUP_SESSION_MS = 300_000;

interface PendingRevoke {
  cursors: MqttCursor[];
  done: () => void;
}

/**
 * One MQTT session's membership in the consumer group behind a `$share/<share>/<filter>`
 * subscription (docs/mqtt.md, "Shared subscriptions"), and the coordinator's channel to it.
 *
 * - `assign` → one MqttCursor per added partition of the log topic, at its start offset;
 *   it runs while the session is connected. Records whose key does not match the filter are
 *   skipped and count as processed.
 * - Commits: per partition, the acknowledged prefix (QoS 0: written to the socket; QoS 1:
 *   PUBACK; QoS 2: PUBCOMP), every `commitIntervalMs` while it moved, on revoke and on leave.
 *   Never past a record that was not acknowledged (at-least-once).
 * - `revoke` → stops the cursors at once, waits until their in-flight deliveries are
 *   acknowledged (or `revokeTimeoutMs`, or the session ends), commits, confirms. A dropped
 *   connection does not end the wait: a persistent session resends its unacknowledged
 *   PUBLISHes when the client reconnects, and their acknowledgements are committed before
 *   the partitions move (docs/consumer-groups.md, "A member whose connection dropped").
 * - Liveness: heartbeats every third of the member's session timeout while the MQTT
 *   connection is open. A persistent session that disconnects keeps its partitions until the
 *   group session timeout (`min(session expiry, 300 s)`); a reconnect carries on as the same
 *   member. `removed` (timed out) or `UNKNOWN_MEMBER` → joins again as a new member.
 */
export class MqttGroupMember implements GroupMemberChannel, DeliveryTarget {
  readonly group: string;
  readonly logTopic: string;
  readonly session: Session;
  sub: Subscription;
  memberId = "";
  generation = -1;
  readonly #deps: MqttGroupMemberDeps;
  readonly #level: string;
  readonly #cursors = new Map<number, MqttCursor>();
  #revokes: PendingRevoke[] = [];
  #heartbeat: NodeJS.Timeout | null = null;
  #commitTimer: NodeJS.Timeout | null = null;
  #commitChain: Promise<void> = Promise.resolve();
  #rejoinTimer: NodeJS.Timeout | null = null;
  #left = false;

  constructor(session: Session, sub: Subscription, group: string, logTopic: string, deps: MqttGroupMemberDeps) {
    const level = levelFor(logTopic);
    if (level === null) throw new TributaryError("BAD_REQUEST", `log topic "${logTopic}" has no MQTT name`, { topic: logTopic });
    this.session = session;
    this.sub = sub;
    this.group = group;
    this.logTopic = logTopic;
    this.#level = level;
    this.#deps = deps;
  }

  /** Member session timeout: the coordinator default for a session that ends with its connection, else the session expiry (capped). */
  get sessionTimeoutMs(): number | undefined {
    if (this.session.expiry === 0) return undefined;
    return Math.min(this.session.expiry * 1000, MAX_GROUP_SESSION_MS);
  }

  /** Joins (re-binding `sub.memberId` when the coordinator still knows it). Throws the coordinator's error. */
  async join(): Promise<void> {
    const { coordinator, nodeId } = this.#deps;
    const { memberId } = await coordinator.join(this.group, {
      clientId: this.session.clientId,
      user: this.session.user,
      node: nodeId,
      topics: [this.logTopic],
      strategies: ["cooperative-sticky", "range"],
      reset: "latest",
      sessionTimeoutMs: this.sessionTimeoutMs,
      memberId: this.sub.memberId,
      channel: this,
    });
    if (this.#left) {
      await coordinator.leave(this.group, memberId).catch((err: unknown) => this.#leaveFailed(memberId, err));
      return;
    }
    this.memberId = memberId;
    if (this.sub.memberId !== memberId) {
      this.sub.memberId = memberId;
      this.#deps.memberIdChanged(this.session);
    }
    this.#startTimers();
  }

  // ---- GroupMemberChannel ------------------------------------------------------------------

  assign(a: MemberAssignment): void {
    if (this.#left) return;
    if (a.memberId === this.memberId && a.generation < this.generation) return; // a late assignment of an older round: never undo a newer one
    this.memberId = a.memberId;
    this.generation = a.generation;
    const keep = new Set(a.partitions.filter((tp) => tp.topic === this.logTopic).map((tp) => tp.partition));
    for (const [partition, cursor] of this.#cursors) {
      if (keep.has(partition)) continue;
      cursor.close();
      this.#cursors.delete(partition);
    }
    const running = this.session.connection !== null;
    for (const p of a.added) {
      if (p.topic !== this.logTopic) continue;
      this.#cursors.get(p.partition)?.close();
      const cursor = new MqttCursor({ target: this, env: this.#deps.delivery, logTopic: this.logTopic, partition: p.partition, level: this.#level, epoch: p.epoch, next: p.offset, atEnd: false });
      // a reset-policy start is committed at the next tick, so the group has a position even before traffic
      cursor.lastCommitted = p.committed ? p.offset : -1;
      cursor.lastCommittedEpoch = p.committed ? p.epoch : null;
      this.#cursors.set(p.partition, cursor);
      if (running) cursor.start();
    }
  }

  revoke(r: MemberRevocation): Promise<void> {
    const cursors: MqttCursor[] = [];
    for (const tp of r.partitions) {
      if (tp.topic !== this.logTopic) continue;
      const cursor = this.#cursors.get(tp.partition);
      if (!cursor) continue;
      cursor.stop(); // no new PUBLISH of this partition from now on
      this.#cursors.delete(tp.partition);
      cursors.push(cursor);
    }
    return this.#awaitAcked(cursors)
      .then(() => this.#commit(cursors, r.generation))
      .finally(() => {
        for (const c of cursors) c.close();
      });
  }

  removed(): void {
    this.#resetMembership();
    if (!this.#left && this.session.connection) this.#scheduleRejoin(0);
  }

  // ---- DeliveryTarget ----------------------------------------------------------------------

  offer(msg: OutgoingMessage, cursor: MqttCursor): boolean {
    const sub = this.sub;
    if (!sub.topicFilter.matches(msg.topic)) return true; // not for this filter: processed
    if (msg.expiresAt !== null && msg.expiresAt <= Date.now()) return true;
    const qos = (msg.publishedQos === null ? sub.qos : Math.min(sub.qos, msg.publishedQos)) as QoS;
    return this.session.offerShared(msg, qos, cursor, sub.id === undefined ? undefined : [sub.id], true);
  }

  /** The partition's delivery ended (e.g. its topic was deleted): logged; the coordinator's next assignment decides what follows. */
  cursorFailed(cursor: MqttCursor, err: TributaryError): void {
    this.#deps.log.warn("mqtt.group.cursor_failed", { group: this.group, topic: cursor.logTopic, partition: cursor.partition, code: err.code, error: err.message });
  }

  positionChanged(): void {
    if (this.#revokes.length > 0) this.#checkRevokes();
  }

  // ---- session lifecycle (SessionManager) ----------------------------------------------------

  /** The session's connection is open again: deliver, heartbeat (or join again after a removal). */
  attached(): void {
    if (this.#left) return;
    if (this.memberId === "") this.#scheduleRejoin(0);
    for (const c of this.#cursors.values()) c.start();
  }

  /** The connection dropped (the session lives on): stop delivering and heartbeating; pending revokes wait for the acks after a reconnect. */
  detached(): void {
    for (const c of this.#cursors.values()) c.stop();
    this.#checkRevokes();
  }

  /** Flow control freed room in the session. */
  resume(): void {
    for (const c of this.#cursors.values()) c.resume();
  }

  /** Leaves the group after committing the acknowledged prefix (taken now, synchronously). Idempotent. */
  async leave(): Promise<void> {
    if (this.#left) return;
    this.#left = true;
    this.#stopTimers();
    const cursors = [...this.#cursors.values()];
    for (const c of cursors) c.stop();
    this.#cursors.clear();
    const offsets = this.#pendingOffsets(cursors);
    const { memberId, generation } = this;
    for (const r of this.#revokes.splice(0)) r.done();
    if (memberId === "") return;
    try {
      if (offsets.length > 0) await this.#deps.coordinator.commit(this.group, { memberId, generation, offsets });
    } catch (err) {
      this.#deps.log.debug("mqtt.group.leave_commit_failed", { group: this.group, memberId, error: String(err) });
    }
    for (const c of cursors) c.close();
    await this.#deps.coordinator.leave(this.group, memberId).catch((err: unknown) => this.#leaveFailed(memberId, err));
  }

  /** The coordinator did not take our leave (closed, unreachable): its session timeout removes the member instead. */
  #leaveFailed(memberId: string, err: unknown): void {
    this.#deps.log.warn("mqtt.group.leave_failed", { group: this.group, memberId, error: String(err) });
    this.#deps.broker.metrics.backgroundErrors.inc({ task: "mqtt-group-leave" });
  }

  // ---- internals -----------------------------------------------------------------------------

  #startTimers(): void {
    if (!this.#heartbeat) {
      const every = Math.max(25, Math.floor((this.sessionTimeoutMs ?? 10_000) / 3));
      this.#heartbeat = setInterval(() => this.#beat(), every);
      this.#heartbeat.unref();
    }
    if (!this.#commitTimer) {
      this.#commitTimer = setInterval(() => void this.#commit([...this.#cursors.values()], this.generation), this.#deps.commitIntervalMs);
      this.#commitTimer.unref();
    }
  }

  #stopTimers(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#commitTimer) clearInterval(this.#commitTimer);
    if (this.#rejoinTimer) clearTimeout(this.#rejoinTimer);
    this.#heartbeat = this.#commitTimer = this.#rejoinTimer = null;
  }

  /** Heartbeats only while the MQTT connection is open: liveness follows the connection. */
  #beat(): void {
    if (this.#left || this.memberId === "" || !this.session.connection) return;
    this.#deps.coordinator.heartbeat(this.group, this.memberId).catch((err: unknown) => {
      if (isTributaryError(err, "UNKNOWN_MEMBER")) this.removed();
      else this.#deps.log.debug("mqtt.group.heartbeat_failed", { group: this.group, memberId: this.memberId, error: String(err) });
    });
  }

  /** Acknowledged prefixes not committed yet, each with the epoch it was read in (a reset may have moved a cursor to a new history). */
  #pendingOffsets(cursors: MqttCursor[]): Array<{ topic: string; partition: number; offset: number; epoch: string }> {
    const out: Array<{ topic: string; partition: number; offset: number; epoch: string }> = [];
    for (const c of cursors) {
      const offset = c.committed();
      if (offset !== c.lastCommitted || c.epoch !== c.lastCommittedEpoch) out.push({ topic: this.logTopic, partition: c.partition, offset, epoch: c.epoch });
    }
    return out;
  }

  /** Commits the acknowledged prefix of `cursors` with `generation`; commits of one member never overlap. */
  #commit(cursors: MqttCursor[], generation: number): Promise<void> {
    const run = async (): Promise<void> => {
      const memberId = this.memberId;
      if (memberId === "" || generation < 0) return;
      const offsets = this.#pendingOffsets(cursors);
      if (offsets.length === 0) return;
      try {
        await this.#deps.coordinator.commit(this.group, { memberId, generation, offsets });
        for (const o of offsets) {
          const c = cursors.find((x) => x.partition === o.partition);
          if (c) {
            c.lastCommitted = o.offset;
            c.lastCommittedEpoch = o.epoch;
          }
        }
      } catch (err) {
        this.#commitFailed(err, offsets);
      }
    };
    const next = this.#commitChain.then(run);
    this.#commitChain = next;
    return next;
  }

  #commitFailed(err: unknown, offsets: Array<{ partition: number }>): void {
    if (isTributaryError(err, "ILLEGAL_GENERATION")) return; // the next assign brings the generation
    if (isTributaryError(err, "PARTITION_NOT_OWNED")) {
      for (const o of offsets) {
        const context = isTributaryError(err) ? err.context : {};
        if (context.partition !== undefined && context.partition !== o.partition) continue;
        this.#cursors.get(o.partition)?.close();
        this.#cursors.delete(o.partition);
      }
      return;
    }
    if (isTributaryError(err, "UNKNOWN_MEMBER")) {
      this.removed();
      return;
    }
    this.#deps.log.warn("mqtt.group.commit_failed", { group: this.group, memberId: this.memberId, error: String(err) });
  }

  /** Resolves when every cursor has no unacknowledged delivery, the connection is gone, or the revoke timeout passed. */
  #awaitAcked(cursors: MqttCursor[]): Promise<void> {
    if (cursors.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), this.#deps.revokeTimeoutMs);
      timer.unref();
      const entry: PendingRevoke = { cursors, done: () => finish() };
      const finish = (): void => {
        clearTimeout(timer);
        this.#revokes = this.#revokes.filter((r) => r !== entry);
        resolve();
      };
      this.#revokes.push(entry);
      this.#checkRevokes();
    });
  }

  #checkRevokes(): void {
    for (const r of [...this.#revokes]) {
      if (this.session.closed || r.cursors.every((c) => c.committed() === c.next)) r.done();
    }
  }

  #resetMembership(): void {
    for (const c of this.#cursors.values()) c.close();
    this.#cursors.clear();
    this.memberId = "";
    this.generation = -1;
    if (this.sub.memberId !== undefined) {
      this.sub.memberId = undefined;
      this.#deps.memberIdChanged(this.session);
    }
  }

  #scheduleRejoin(delayMs: number): void {
    if (this.#rejoinTimer || this.#left) return;
    this.#rejoinTimer = setTimeout(() => {
      this.#rejoinTimer = null;
      if (this.#left || this.memberId !== "" || !this.session.connection) return;
      this.join().catch((err: unknown) => {
        this.#deps.log.warn("mqtt.group.rejoin_failed", { group: this.group, client: this.session.clientId, error: String(err) });
        this.#scheduleRejoin(1000);
      });
    }, delayMs);
    this.#rejoinTimer.unref();
  }
}
