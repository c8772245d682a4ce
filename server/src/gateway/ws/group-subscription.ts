import type { SubscribeFrame } from "@tributary/client/protocol";
import { TributaryError, isTributaryError, toTributaryError } from "../../errors.ts";
import type { GroupCoordinator, GroupMemberChannel, MemberAssignment, MemberRevocation } from "../../groups/index.ts";
import { DeliveryCursor } from "../../broker/delivery/delivery-cursor.ts";
import type { KeyFilter } from "./topic-filter.ts";
import type { WsConnection } from "./ws-connection.ts";
import { WsSubscription, type WsDeliveryEnv } from "./ws-subscription.ts";

interface PendingRevoke {
  generation: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * A consumer-group subscription (`subscribe` with `group`): one member of the group, and
 * the coordinator's channel to it (docs/consumer-groups.md, "revoke-then-assign").
 *
 * - `assign` → sends the `assign` frame, then starts one cursor per `added` partition at
 *   its start offset (messages of a partition never precede its `assign`).
 * - `revoke` → stops the cursors of those partitions at once (no `message` of them follows
 *   the `revoke` frame), sends `revoke`, and resolves when the client confirms with
 *   `revoked` (after committing). A closed socket confirms nothing: a revoke that finds the
 *   socket closed, or is pending when it closes, is rejected with UNAVAILABLE (not
 *   delivered); the coordinator keeps it pending and sends it again (to the member's next
 *   subscription when the client re-binds) until the member confirms, leaves or times out,
 *   or the rebalance timeout passes. So a member whose connection dropped commits what it
 *   processed before its partitions move.
 * - While the subscription is live it heartbeats the member every third of its session
 *   timeout. When the socket closes the member is NOT removed: it stays until its session
 *   timeout, so a reconnect that re-subscribes with the same `memberId` re-binds without
 *   a rebalance (also when that socket closes before the join completed). An explicit
 *   `unsubscribe` leaves the group at once.
 * - `removed` (session timed out) → `error` {sub, UNKNOWN_MEMBER}; the subscription ends and
 *   the client subscribes again (a new member).
 *
 * Frames that the coordinator produces before the `joined` reply went out (a re-bind gets
 * its assignment inside `join`) are held and sent right after it, in order.
 */
export class GroupSubscription extends WsSubscription implements GroupMemberChannel {
  readonly group: string;
  readonly sessionTimeoutMs: number | undefined;
  readonly #coordinator: GroupCoordinator;
  memberId = "";
  /** Generation of the latest `assign` sent. */
  generation = 0;
  readonly #byPartition = new Map<number, DeliveryCursor>();
  #pendingRevokes: PendingRevoke[] = [];
  #beforeJoined: (() => void)[] | null = [];
  #heartbeat: NodeJS.Timeout | null = null;
  #left = false;
  /** `unsubscribe` (or a failure) asked to leave; a join completing afterwards leaves at once. */
  #leaveRequested = false;
  /** The memberId the client asked to re-bind, if any. */
  readonly #requestedMemberId: string | undefined;

  constructor(init: {
    id: number;
    conn: WsConnection;
    topic: string;
    spec: string;
    filter: KeyFilter | null;
    frame: SubscribeFrame;
    credit: number;
    maxCredit: number;
    coordinator: GroupCoordinator;
    env: WsDeliveryEnv;
  }) {
    super({ ...init, reset: init.frame.reset === "earliest" ? "earliest" : "latest" });
    this.group = init.frame.group!;
    this.sessionTimeoutMs = init.frame.sessionTimeoutMs;
    this.#requestedMemberId = init.frame.memberId;
    this.#coordinator = init.coordinator;
  }

  /** The member joined: sends `joined`, then whatever the coordinator sent meanwhile; starts heartbeating. */
  joined(requestId: number, memberId: string): void {
    this.memberId = memberId;
    if (!this.active) {
      // Unsubscribed meanwhile, or a new member whose client never learns its id: leave now.
      // A re-bind whose socket closed meanwhile stays, like any member whose socket closed.
      if (this.#leaveRequested || memberId !== this.#requestedMemberId) void this.leave();
      return;
    }
    this.conn.send({ op: "joined", id: requestId, sub: this.id, group: this.group, memberId });
    const queued = this.#beforeJoined ?? [];
    this.#beforeJoined = null;
    for (const action of queued) action();
    const every = Math.max(25, Math.floor((this.sessionTimeoutMs ?? 10_000) / 3));
    this.#heartbeat = setInterval(() => this.#beat(), every);
    this.#heartbeat.unref?.();
  }

  // ---- GroupMemberChannel ------------------------------------------------------------------

  assign(a: MemberAssignment): void {
    if (this.#beforeJoined) {
      this.#beforeJoined.push(() => this.assign(a));
      return;
    }
    if (!this.active || !this.conn.open) return;
    // Assignments of one member are applied in generation order: one of an older round that
    // arrives late (a cross-node event re-sent or overtaken) must not undo a newer one.
    if (a.generation < this.generation) return;
    this.generation = a.generation;
    this.memberId = a.memberId;
    const keep = new Set(a.partitions.filter((tp) => tp.topic === this.topic).map((tp) => tp.partition));
    for (const [partition, cursor] of this.#byPartition) {
      if (!keep.has(partition)) {
        cursor.close();
        this.#byPartition.delete(partition);
      }
    }
    this.conn.send({
      op: "assign",
      sub: this.id,
      group: a.group,
      generation: a.generation,
      strategy: a.strategy,
      partitions: a.partitions.map(({ topic, partition }) => ({ topic, partition })),
      added: a.added.map(({ topic, partition, offset, epoch, committed }) => ({ topic, partition, offset, epoch, committed })),
    });
    for (const p of a.added) {
      if (p.topic !== this.topic) continue;
      this.#byPartition.get(p.partition)?.close();
      const cursor = new DeliveryCursor(this.env, this, this.topic, p.partition, p.epoch, p.offset);
      this.#byPartition.set(p.partition, cursor);
      cursor.start();
    }
    this.cursors = [...this.#byPartition.values()];
  }

  revoke(r: MemberRevocation): Promise<void> {
    if (this.#beforeJoined) return new Promise((resolve, reject) => this.#beforeJoined!.push(() => void this.revoke(r).then(resolve, reject)));
    if (!this.active || !this.conn.open) return Promise.reject(this.#undeliverable());
    for (const tp of r.partitions) {
      if (tp.topic !== this.topic) continue;
      this.#byPartition.get(tp.partition)?.close();
      this.#byPartition.delete(tp.partition);
    }
    this.cursors = [...this.#byPartition.values()];
    const confirmed = new Promise<void>((resolve, reject) => this.#pendingRevokes.push({ generation: r.generation, resolve, reject }));
    this.conn.send({ op: "revoke", sub: this.id, group: r.group, generation: r.generation, partitions: r.partitions.map(({ topic, partition }) => ({ topic, partition })) });
    return confirmed;
  }

  removed(): void {
    this.#left = true; // the coordinator already dropped the member
    if (!this.active) return;
    this.stop();
    if (this.conn.subscriptions.get(this.id) === this) this.conn.subscriptions.delete(this.id);
    this.conn.sendError("UNKNOWN_MEMBER", `member ${this.memberId} was removed from group "${this.group}" (session timed out); subscribe again`, { sub: this.id });
  }

  // ---- client frames -------------------------------------------------------------------------

  /** The client's `revoked`: the revoke of `generation` is done. */
  confirmRevoke(generation: number): void {
    const done = this.#pendingRevokes.filter((r) => r.generation <= generation);
    this.#pendingRevokes = this.#pendingRevokes.filter((r) => r.generation > generation);
    for (const r of done) r.resolve();
  }

  /** Leaves the group now (explicit unsubscribe or a failed subscription), or as soon as the join completes. Idempotent. */
  async leave(): Promise<void> {
    this.#leaveRequested = true;
    this.stop();
    if (this.#left || this.memberId === "") return;
    this.#left = true;
    try {
      await this.#coordinator.leave(this.group, this.memberId);
    } catch (err) {
      // The member stays until its session timeout (a closed coordinator has nothing to leave).
      if (!isTributaryError(err, "UNAVAILABLE")) this.env.log?.warn("ws.group_leave_failed", { group: this.group, memberId: this.memberId, ...toTributaryError(err).toJSON() });
    }
  }

  override stop(): void {
    if (!this.active) return;
    super.stop();
    this.#byPartition.clear();
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    // Not confirmed: the coordinator sends them again (on a re-bind) or ends them (leave, timeout).
    const pending = this.#pendingRevokes;
    this.#pendingRevokes = [];
    for (const r of pending) r.reject(this.#undeliverable());
  }

  override fail(code: Parameters<WsSubscription["fail"]>[0], message: string): void {
    super.fail(code, message);
    void this.leave();
  }

  /** Why a revoke cannot be answered through this subscription (see the class comment). */
  #undeliverable(): TributaryError {
    return new TributaryError("UNAVAILABLE", `member ${this.memberId} of group "${this.group}" is not reachable through this subscription (connection closed or left); the revoke waits for it`, {
      group: this.group,
      memberId: this.memberId,
    });
  }

  #beat(): void {
    if (!this.active || !this.conn.open) return;
    this.#coordinator.heartbeat(this.group, this.memberId).catch((err: unknown) => {
      if (isTributaryError(err, "UNKNOWN_MEMBER")) this.removed();
      else if (!isTributaryError(err, "UNAVAILABLE")) this.conn.sendError(toTributaryError(err).code, toTributaryError(err).message, { sub: this.id });
    });
  }
}
