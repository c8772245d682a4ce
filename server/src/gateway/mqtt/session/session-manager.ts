import type { IPublishPacket } from "mqtt-packet";
import type { GroupCoordinator } from "../../../groups/index.ts";
import type { Logger } from "../../../logger.ts";
import type { CursorDeps, StoredPosition } from "../delivery/cursor-set.ts";
import { MqttGroupMember, type MqttGroupMemberDeps } from "../delivery/group-member.ts";
import { shareGroupName } from "../delivery/share-group-name.ts";
import { SharedGroup } from "../delivery/shared-group.ts";
import type { TopicDirectory } from "../delivery/topic-directory.ts";
import type { QoS } from "../record-mapping.ts";
import { firstLevel, logTopicForLevel } from "../topic-mapping.ts";
import { parseSharedFilter } from "../../../broker/topic-filter.ts";
import { Session, type SessionConnection } from "./session.ts";
import { SessionStore, type StoredSession } from "./session-store.ts";
import { makeSubscription, toStored, type StoredSubscription, type Subscription } from "./subscription.ts";

export interface WillMessage {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  properties?: IPublishPacket["properties"];
  /** Will Delay Interval, seconds (MQTT 5). */
  delay: number;
}

/** How `$share` subscriptions reach the node's consumer-group coordinator. */
export interface ShareGroupOptions {
  coordinator: GroupCoordinator;
  nodeId: string;
  /** Commit interval of the acknowledged prefix, ms (default 1000). */
  commitIntervalMs?: number;
  /** Longest wait for in-flight deliveries when partitions are revoked, ms (default 10 000). */
  revokeTimeoutMs?: number;
}

/** The longest session expiry: never expires. */
export const NEVER_EXPIRES = 0xffffffff;

/**
 * All sessions of the gateway: creation and takeover at CONNECT, subscriptions, expiry,
 * will messages (published at once, or after the Will Delay Interval unless the session
 * resumes first, and at the latest when the session ends), and persistence (SessionStore).
 */
export class SessionManager {
  readonly sessions = new Map<string, Session>();
  readonly groups = new Map<string, SharedGroup>();
  readonly #deps: CursorDeps;
  readonly #store: SessionStore;
  readonly #directory: TopicDirectory;
  readonly #log: Logger;
  readonly #publishWill: (clientId: string, will: WillMessage) => void;
  readonly #dirty = new Set<Session>();
  #commitTimer: NodeJS.Timeout | null = null;
  /** Subscriptions of sessions restored from the store, re-applied when they reconnect. */
  readonly #restored = new Map<string, StoredSubscription[]>();

  /** Set when `$share` subscriptions are consumer groups (the node has a coordinator). */
  readonly #memberDeps: MqttGroupMemberDeps | null;

  constructor(
    deps: CursorDeps,
    store: SessionStore,
    directory: TopicDirectory,
    log: Logger,
    publishWill: (clientId: string, will: WillMessage) => void,
    shareGroups: ShareGroupOptions | null = null,
  ) {
    this.#deps = deps;
    this.#memberDeps = shareGroups && {
      ...deps,
      coordinator: shareGroups.coordinator,
      nodeId: shareGroups.nodeId,
      commitIntervalMs: shareGroups.commitIntervalMs ?? 1000,
      revokeTimeoutMs: shareGroups.revokeTimeoutMs ?? 10_000,
      memberIdChanged: (session) => this.#markDirty(session, true),
    };
    this.#store = store;
    this.#directory = directory;
    this.#log = log;
    this.#publishWill = publishWill;
  }

  #hooks = {
    changed: (session: Session) => this.#markDirty(session),
    resumeShared: (session: Session) => {
      for (const sub of session.subs.values()) if (sub.share) this.groups.get(`${sub.share}/${sub.topicFilter.filter}`)?.resume();
      for (const member of session.groupMembers.values()) member.resume();
    },
  };

  /** Restores persistent sessions saved by a previous run (expired ones are dropped). */
  async load(): Promise<void> {
    const stored = await this.#store.loadAll();
    const now = Date.now();
    for (const s of stored.values()) {
      this.#storedIds.add(s.clientId);
      const disconnectedAt = s.disconnectedAt ?? now;
      if (s.expiry !== NEVER_EXPIRES && disconnectedAt + s.expiry * 1000 <= now) {
        this.#removeStored(s.clientId);
        continue;
      }
      const session = new Session(s.clientId, s.expiry, this.#deps, this.#hooks);
      session.disconnectedAt = disconnectedAt;
      this.sessions.set(s.clientId, session);
      this.#restored.set(s.clientId, s.subscriptions);
      this.#armExpiry(session);
    }
    if (this.sessions.size > 0) this.#log.info("mqtt.sessions.restored", { count: this.sessions.size });
  }

  /**
   * The session for a CONNECT: a fresh one with Clean Start (discarding any previous
   * session), else the existing one (sessionPresent = true).
   */
  async open(
    clientId: string,
    cleanStart: boolean,
    expiry: number,
    user: string | null = null,
    permits: ((sub: Subscription) => boolean) | null = null,
  ): Promise<{ session: Session; present: boolean }> {
    let session = this.sessions.get(clientId);
    if (session && cleanStart) {
      this.#destroy(session, false);
      session = undefined;
    }
    const present = session !== undefined;
    if (!session) {
      session = new Session(clientId, expiry, this.#deps, this.#hooks);
      this.sessions.set(clientId, session);
    }
    session.expiry = expiry;
    session.user = user;
    if (session.expiryTimer) clearTimeout(session.expiryTimer);
    if (session.willTimer) clearTimeout(session.willTimer); // resumed in time: the delayed will is cancelled
    session.expiryTimer = session.willTimer = null;
    this.#pendingWills.delete(session);
    const restored = this.#restored.get(clientId);
    if (restored) {
      this.#restored.delete(clientId);
      if (present) {
        const positions = await this.#store.positions(clientId);
        session.storedPositions = positions;
        for (const stored of restored) {
          const sub = this.parseStored(stored);
          if (permits && !permits(sub)) {
            this.#log.info("mqtt.session.subscription_dropped", { clientId, filter: sub.filter, why: "no longer permitted" });
            this.#markDirty(session, true);
            continue;
          }
          await this.subscribe(session, sub);
        }
        session.storedPositions = null;
      }
    } else if (present && permits) {
      // A session kept from an earlier connection of this run: its subscriptions are judged for the new identity.
      for (const sub of [...session.subs.values()]) {
        if (permits(sub)) continue;
        this.#log.info("mqtt.session.subscription_dropped", { clientId, filter: sub.filter, why: "no longer permitted" });
        this.unsubscribe(session, sub.filter);
      }
    }
    if (expiry > 0) await this.#save(session, null);
    else if (this.#storedIds.has(clientId)) {
      await this.#store.remove(clientId);
      this.#storedIds.delete(clientId);
    }
    return { session, present };
  }

  parseStored(stored: StoredSubscription): Subscription {
    const shared = parseSharedFilter(stored.filter);
    if (shared && shared !== "invalid") return makeSubscription(stored, shared.filter, shared.group);
    return makeSubscription(stored, stored.filter);
  }

  attach(session: Session, connection: SessionConnection): void {
    session.attach(connection);
    for (const sub of session.subs.values()) if (sub.share) this.groups.get(`${sub.share}/${sub.topicFilter.filter}`)?.memberStateChanged();
    for (const member of session.groupMembers.values()) member.attached();
  }

  /** Adds a subscription (replacing one with the same filter). False when its topic cannot be mapped. */
  async subscribe(session: Session, sub: Subscription): Promise<boolean> {
    const positions = session.storedPositions;
    const target = sub.share && this.#memberDeps ? shareGroupName(sub.share, sub.topicFilter.filter) : null;
    if (target) {
      await this.#joinGroup(session, sub, target.group, target.logTopic);
    } else if (sub.share) {
      const key = `${sub.share}/${sub.topicFilter.filter}`;
      let group = this.groups.get(key);
      if (!group) {
        group = new SharedGroup(sub.share, sub.topicFilter.filter, this.#deps);
        this.groups.set(key, group);
      }
      if (!(await this.#ensureCursors(group.cursors, sub, null, group))) return false;
      session.subs.set(sub.filter, sub);
      group.join(session, sub);
    } else {
      if (!session.addSubscription(sub)) return false;
      if (!(await this.#ensureCursors(session.cursors, sub, positions, session))) {
        session.removeSubscription(sub.filter);
        return false;
      }
    }
    this.#markDirty(session, true);
    return true;
  }

  /**
   * `$share/<share>/<filter>` as a consumer group: the session joins (or, subscribing again
   * with the same filter, keeps its membership with the new options). Throws the
   * coordinator's error (the SUBACK then refuses the filter).
   */
  async #joinGroup(session: Session, sub: Subscription, group: string, logTopic: string): Promise<void> {
    const existing = session.groupMembers.get(sub.filter);
    if (existing) {
      sub.memberId = existing.memberId === "" ? undefined : existing.memberId;
      existing.sub = sub;
      session.subs.set(sub.filter, sub);
      return;
    }
    await this.#deps.broker.partitions(logTopic); // creates the topic when allowed, as a plain subscription would
    const member = new MqttGroupMember(session, sub, group, logTopic, this.#memberDeps!);
    session.groupMembers.set(sub.filter, member);
    session.subs.set(sub.filter, sub);
    try {
      await member.join();
    } catch (err) {
      if (session.groupMembers.get(sub.filter) === member) session.groupMembers.delete(sub.filter);
      if (session.subs.get(sub.filter) === sub) session.subs.delete(sub.filter);
      await member.leave();
      throw err;
    }
    if (session.connection) member.attached();
  }

  async #ensureCursors(
    cursors: Session["cursors"],
    sub: Subscription,
    positions: Map<string, Map<number, StoredPosition>> | null,
    owner: Session | SharedGroup,
  ): Promise<boolean> {
    if (sub.topicFilter.literalFirstLevel) {
      const logTopic = logTopicForLevel(firstLevel(sub.topicFilter.filter));
      if (logTopic === null) return false;
      await cursors.ensure(logTopic, "end", positions?.get(logTopic));
      return true;
    }
    this.#directory.addWatcher(owner, cursors);
    for (const logTopic of await this.#directory.topics()) await cursors.ensure(logTopic, "end", positions?.get(logTopic));
    return true;
  }

  /** Removes a subscription; returns whether it existed. */
  unsubscribe(session: Session, filter: string): boolean {
    const sub = session.removeSubscription(filter);
    if (!sub) return false;
    if (sub.share) this.#leaveGroup(session, sub);
    else {
      session.pruneCursors();
      if (!session.hasWildcardFirstLevel) this.#directory.removeWatcher(session);
    }
    this.#markDirty(session, true);
    return true;
  }

  #leaveGroup(session: Session, sub: Subscription): void {
    const member = session.groupMembers.get(sub.filter);
    if (member) {
      session.groupMembers.delete(sub.filter);
      void member.leave();
      return;
    }
    const key = `${sub.share}/${sub.topicFilter.filter}`;
    const group = this.groups.get(key);
    if (!group) return;
    group.leave(session);
    if (group.members.size === 0) {
      group.cursors.closeAll();
      this.#directory.removeWatcher(group);
      this.groups.delete(key);
    }
  }

  /**
   * The session's connection ended. `will` (if any) is published now, or after its delay,
   * or when the session ends, whichever comes first. Sessions with expiry 0 end now.
   */
  detach(session: Session, will: WillMessage | null): void {
    session.detach();
    for (const sub of session.subs.values()) if (sub.share) this.groups.get(`${sub.share}/${sub.topicFilter.filter}`)?.memberStateChanged();
    for (const member of session.groupMembers.values()) member.detached();
    if (will) {
      const delay = Math.min(will.delay, session.expiry);
      if (delay <= 0) this.#publishWill(session.clientId, will);
      else {
        this.#pendingWills.set(session, will);
        session.willTimer = setTimeout(() => {
          session.willTimer = null;
          this.#pendingWills.delete(session);
          this.#publishWill(session.clientId, will);
        }, Math.min(delay * 1000, 2 ** 31 - 1));
        session.willTimer.unref();
      }
    }
    if (session.expiry === 0) this.#destroy(session, true);
    else {
      this.#armExpiry(session);
      this.#markDirty(session, true);
    }
  }

  #armExpiry(session: Session): void {
    if (session.expiry === NEVER_EXPIRES) return;
    const remaining = (session.disconnectedAt ?? Date.now()) + session.expiry * 1000 - Date.now();
    session.expiryTimer = setTimeout(() => {
      session.expiryTimer = null;
      if (session.connection) return;
      if (remaining > 2 ** 31 - 1) this.#armExpiry(session);
      else this.#destroy(session, true);
    }, Math.max(0, Math.min(remaining, 2 ** 31 - 1)));
    session.expiryTimer.unref();
  }

  /** Ends a session: its pending will goes out now; state is forgotten (and deleted from the store). */
  #destroy(session: Session, fireWill: boolean): void {
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    if (session.willTimer && fireWill) {
      clearTimeout(session.willTimer);
      session.willTimer = null;
      const will = this.#pendingWills.get(session);
      if (will) this.#publishWill(session.clientId, will);
    }
    this.#pendingWills.delete(session);
    for (const sub of [...session.subs.values()]) if (sub.share) this.#leaveGroup(session, sub);
    this.#directory.removeWatcher(session);
    this.#dirty.delete(session);
    // Messages of shared groups this session never acknowledged: release the group's position.
    for (const entry of session.inflight.values()) entry.cursor?.ack(entry.msg.offset);
    session.close();
    this.#restored.delete(session.clientId);
    if (this.#storedIds.has(session.clientId)) this.#removeStored(session.clientId);
  }

  /**
   * Client ids that may have a record in the store (loaded at start, or saved since): only
   * their sessions' ends write a deletion. A clean session (expiry 0) is never saved, so
   * its many connects and disconnects write nothing.
   */
  readonly #storedIds = new Set<string>();

  /** Client ids whose ended session could not be deleted from the store: retried at the next flush. */
  readonly #unremoved = new Set<string>();

  /**
   * Deletes an ended session's record. A failure (the log unavailable) is logged and counted
   * (task `mqtt-session-remove`); until the record is gone a gateway restart would restore the
   * ended session (an expired one is dropped at load). So it is retried at the next flush (the
   * next session change, at the latest at shutdown), unless the client has a session again by
   * then: that one is saved or removed in its turn.
   */
  #removeStored(clientId: string): void {
    this.#unremoved.delete(clientId);
    this.#store.remove(clientId).then(() => {
      const current = this.sessions.get(clientId);
      if (!current || current.expiry === 0) this.#storedIds.delete(clientId);
    }, (err: unknown) => {
      this.#log.warn("mqtt.session.remove_failed", { clientId, error: String(err), retry: !this.sessions.has(clientId) });
      this.#deps.broker.metrics.backgroundErrors.inc({ task: "mqtt-session-remove" });
      if (!this.sessions.has(clientId)) this.#unremoved.add(clientId);
    });
  }

  /** Wills waiting for their delay (published early if the session ends first). */
  readonly #pendingWills = new Map<Session, WillMessage>();

  #markDirty(session: Session, subscriptionsChanged = false): void {
    if (session.expiry === 0 || session.closed) return;
    if (subscriptionsChanged) session.subsDirty = true;
    this.#dirty.add(session);
    this.#commitTimer ??= setTimeout(() => void this.flush(), 200);
  }

  /** Writes pending positions and session records. */
  async flush(): Promise<void> {
    if (this.#commitTimer) clearTimeout(this.#commitTimer);
    this.#commitTimer = null;
    const sessions = [...this.#dirty];
    this.#dirty.clear();
    for (const clientId of [...this.#unremoved]) {
      if (this.sessions.has(clientId)) this.#unremoved.delete(clientId);
      else this.#removeStored(clientId);
    }
    await Promise.all(
      sessions.map(async (session) => {
        try {
          if (session.subsDirty) {
            session.subsDirty = false;
            await this.#save(session, session.disconnectedAt);
          }
          for (const cursor of session.cursors.all()) {
            const committed = cursor.committed();
            const epoch = cursor.epoch;
            if (committed === cursor.lastCommitted && epoch === cursor.lastCommittedEpoch) continue;
            cursor.lastCommitted = committed;
            cursor.lastCommittedEpoch = epoch;
            await this.#store.commit(session.clientId, cursor.logTopic, cursor.partition, committed, epoch);
          }
        } catch (err) {
          this.#log.warn("mqtt.session.persist_failed", { clientId: session.clientId, error: String(err) });
        }
      }),
    );
  }

  #save(session: Session, disconnectedAt: number | null): Promise<void> {
    this.#storedIds.add(session.clientId);
    const restored = this.#restored.get(session.clientId);
    const stored: StoredSession = {
      clientId: session.clientId,
      expiry: session.expiry,
      subscriptions: restored ?? [...session.subs.values()].map(toStored),
      disconnectedAt,
    };
    return this.#store.save(stored);
  }

  /** Gateway shutdown, before connections close: connected persistent sessions will be saved as disconnected now. */
  prepareShutdown(): void {
    for (const session of this.sessions.values()) {
      if (session.connection && session.expiry > 0) {
        session.subsDirty = true;
        this.#dirty.add(session);
      }
    }
  }

  /** Gateway shutdown, after connections closed: writes every pending position and session record. */
  async shutdown(): Promise<void> {
    // consumer-group members commit what was acknowledged and leave: their partitions move now
    const leaving: Promise<void>[] = [];
    for (const session of this.sessions.values()) {
      for (const member of session.groupMembers.values()) leaving.push(member.leave());
      session.groupMembers.clear();
    }
    await Promise.race([Promise.all(leaving), new Promise((r) => setTimeout(r, 2000).unref())]);
    await this.flush();
    for (const session of this.sessions.values()) session.close();
    for (const group of this.groups.values()) group.cursors.closeAll();
  }
}
