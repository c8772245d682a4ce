import type { OutgoingMessage, QoS } from "../record-mapping.ts";
import type { Session } from "../session/session.ts";
import type { Subscription } from "../session/subscription.ts";
import { TopicFilter } from "../../../broker/topic-filter.ts";
import { CursorSet, type CursorDeps } from "./cursor-set.ts";
import type { DeliveryTarget, MqttCursor } from "./mqtt-cursor.ts";
import type { TributaryError } from "../../../errors.ts";

/**
 * A shared subscription `$share/<group>/<filter>`: the group has ONE cursor per
 * partition; each matching record goes to one connected member, round-robin, skipping
 * members whose in-flight window or socket is full. With no member connected the group's
 * cursors stop and resume from the log when a member comes back. Positions of a group are
 * kept while the gateway runs (not persisted across restarts).
 */
export class SharedGroup implements DeliveryTarget {
  readonly key: string;
  readonly name: string;
  readonly topicFilter: TopicFilter;
  readonly cursors: CursorSet;
  readonly members = new Map<Session, Subscription>();
  #order: Session[] = [];
  #rr = 0;

  constructor(name: string, filter: string, deps: CursorDeps) {
    this.name = name;
    this.key = `${name}/${filter}`;
    this.topicFilter = new TopicFilter(filter);
    this.cursors = new CursorSet(deps, this);
  }

  join(session: Session, sub: Subscription): void {
    this.members.set(session, sub);
    this.#order = [...this.members.keys()];
    this.memberStateChanged();
  }

  leave(session: Session): void {
    this.members.delete(session);
    this.#order = [...this.members.keys()];
    this.memberStateChanged();
  }

  /** A member connected or went away: run the cursors only while someone can receive. */
  memberStateChanged(): void {
    const anyOnline = this.#order.some((s) => s.connection !== null);
    if (anyOnline && !this.cursors.running) this.cursors.startAll();
    else if (!anyOnline && this.cursors.running) this.cursors.stopAll();
    else if (anyOnline) this.cursors.resumeAll();
  }

  resume(): void {
    this.cursors.resumeAll();
  }

  positionChanged(): void {}

  cursorFailed(cursor: MqttCursor, err: TributaryError): void {
    this.cursors.cursorFailed(cursor, err);
  }

  offer(msg: OutgoingMessage, cursor: MqttCursor): boolean {
    if (!this.topicFilter.matches(msg.topic)) return true;
    if (msg.expiresAt !== null && msg.expiresAt <= Date.now()) return true;
    const order = this.#order;
    const n = order.length;
    for (let i = 0; i < n; i++) {
      const index = (this.#rr + i) % n;
      const member = order[index]!;
      const sub = this.members.get(member)!;
      const qos = (msg.publishedQos === null ? sub.qos : Math.min(sub.qos, msg.publishedQos)) as QoS;
      if (!member.hasRoom(qos)) continue;
      if (!member.offerShared(msg, qos, cursor, sub.id === undefined ? undefined : [sub.id])) continue;
      this.#rr = (index + 1) % n;
      return true;
    }
    for (const member of order) member.markBlocked();
    return false;
  }
}
