/**
 * Consumer groups across nodes that share one Redis (docs/consumer-groups.md, "Across
 * nodes"). Exactly one node coordinates a group: the holder of the group's lease
 * (group-leases.ts). Every node runs this coordinator; a call for a group is served
 * locally when this node holds (or just acquired) the lease, and otherwise sent to the
 * holder over the nodes' Redis inboxes (group-bus.ts). The holder runs the ordinary
 * GroupCoordinator logic; for a member connected to another node it binds a proxy
 * channel whose `assign` / `revoke` / `removed` travel back to that node, where the real
 * channel (the member's WebSocket subscription) gets them.
 *
 * Fencing: every request carries the lease epoch the sender resolved; the holder refuses
 * requests of another epoch (UNAVAILABLE: the sender re-resolves and retries), re-checks
 * its lease in Redis before accepting a commit, and a member's node drops events from a
 * coordinator epoch older than one it has already heard from.
 *
 * Failover: group state lives with the holder. When it dies, its lease expires after
 * `leaseTtlMs`; the next request for the group (a member heartbeat) acquires it on another
 * node, which starts the group afresh: members get UNKNOWN_MEMBER and join again (the SDK
 * does this by itself), resuming from the committed offsets. A clean shutdown releases the
 * leases at once.
 *
 * Lost events: an `assign` for a member on another node that is not answered within the
 * rebalance timeout removes the member (see #assignFailed); a lost `removed` is caught up by
 * the member's next heartbeat (UNKNOWN_MEMBER); a lost `revoke` counts as not confirmed, as
 * locally. Each is logged and counted (task `group-event`), as are failures of the group
 * index and of dropping a lost group's state (task `group-state`).
 */
import { TributaryError, isTributaryError } from "../errors.ts";
import { GroupCoordinator, type CommitRequest, type GroupCoordinatorOptions, type GroupDescription, type GroupListing, type GroupMemberChannel, type JoinRequest, type MemberAssignment, type MemberRevocation, type ResetOffsetsResult } from "../groups/group-coordinator.ts";
import type { GroupState, GroupStateName } from "../groups/group-store.ts";
import type { LeaveReason } from "../groups/instrumentation.ts";
import type { MemberRecord } from "../groups/membership-store.ts";
import type { ResetTarget } from "../groups/offsets.ts";
import { connectClient, createClient, type RedisClient } from "../redis/redis-connection.ts";
import { RedisErrorReporter } from "../redis/redis-error-reporter.ts";
import { keyPrefixOf } from "../redis/redis-key-prefix.ts";
import { parseRedisUrl } from "../redis/redis-url.ts";
import { GroupBus, type BusRequest } from "./group-bus.ts";
import { GroupLeases, type LeaseHolder } from "./group-leases.ts";

export interface ClusterGroupCoordinatorOptions extends GroupCoordinatorOptions {
  /** The Redis the nodes share (the engine's URL). */
  redisUrl: string;
  nodeId: string;
  /** Coordinator lease TTL (default 5000 ms): how long a dead coordinator's groups wait before moving. */
  leaseTtlMs?: number;
  /** Timeout of one request to the coordinating node (default 1500 ms). */
  requestTimeoutMs?: number;
  /** Where failures nobody awaits go (connections, leases, bus, lost events). Default: logged to stderr, not counted. */
  reporter?: RedisErrorReporter;
}

type Held = (channel: GroupMemberChannel) => void;

export class ClusterGroupCoordinator extends GroupCoordinator {
  readonly nodeId: string;
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #leases: GroupLeases;
  readonly #bus: GroupBus;
  readonly #prefix: string;
  readonly #requestTimeoutMs: number;
  readonly #rebalanceTimeoutMs: number;
  readonly #reporter: RedisErrorReporter;
  /** Local members of groups coordinated elsewhere: group → memberId → their channel. */
  readonly #members = new Map<string, Map<string, GroupMemberChannel>>();
  /** Events that arrived before the join answer registered the member: "group\0memberId" → actions. */
  readonly #early = new Map<string, Held[]>();
  /** Highest coordinator epoch heard from, per group (older coordinators' events are dropped). */
  readonly #epochs = new Map<string, number>();
  readonly #sweep: NodeJS.Timeout;
  #emptyBefore = new Set<string>();
  #shutdown: Promise<void> | undefined;

  private constructor(options: ClusterGroupCoordinatorOptions, client: RedisClient, subscriber: RedisClient, bus: GroupBus, prefix: string, reporter: RedisErrorReporter) {
    super(options);
    this.nodeId = options.nodeId;
    this.#client = client;
    this.#subscriber = subscriber;
    this.#bus = bus;
    this.#prefix = prefix;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 1500;
    this.#rebalanceTimeoutMs = options.rebalanceTimeoutMs ?? 30_000;
    this.#reporter = reporter;
    this.#leases = new GroupLeases({ client, prefix, nodeId: options.nodeId, ttlMs: options.leaseTtlMs, reporter, onLost: (group) => void this.#forget(group) });
    bus.serve((request, from) => this.#serve(request, from));
    // Leases of groups that emptied out are given back, so the next member's node takes them;
    // the groups still held are (re-)written to the group index.
    this.#sweep = setInterval(() => void this.#sweepHeld(), this.#leases.ttlMs);
    this.#sweep.unref();
  }

  static async connect(options: ClusterGroupCoordinatorOptions): Promise<ClusterGroupCoordinator> {
    const target = parseRedisUrl(options.redisUrl);
    const reporter = options.reporter ?? RedisErrorReporter.standalone();
    const client = createClient(target, { role: "commands", component: "group-coordinator", reporter });
    const subscriber = createClient(target, { role: "subscriber", component: "group-coordinator", reporter });
    try {
      await connectClient(client, target);
      await connectClient(subscriber, target);
      const prefix = keyPrefixOf(target);
      const bus = await GroupBus.open(client, subscriber, prefix, options.nodeId, reporter);
      return new ClusterGroupCoordinator(options, client, subscriber, bus, prefix, reporter);
    } catch (err) {
      client.disconnect();
      subscriber.disconnect();
      throw err;
    }
  }

  /** The node coordinating `group` now, or null when nobody does. */
  async coordinatorOf(group: string): Promise<LeaseHolder | null> {
    return this.#leases.holder(group);
  }

  // ---- the GroupCoordinator API, routed to the group's coordinator -----------------------------

  override async join(group: string, request: JoinRequest): Promise<{ memberId: string; generation: number }> {
    return this.#route(group, true, () => super.join(group, request), async (holder) => {
      const { channel, ...wire } = request;
      const result = await this.#bus.request<{ memberId: string; generation: number }>(holder.nodeId, { kind: "join", group, epoch: holder.epoch, request: wire }, this.#requestTimeoutMs);
      this.#register(group, result.memberId, channel);
      return result;
    });
  }

  override async leave(group: string, memberId: string): Promise<boolean> {
    this.#members.get(group)?.delete(memberId);
    return this.#route(group, false, () => super.leave(group, memberId), (holder) => this.#bus.request<boolean>(holder.nodeId, { kind: "leave", group, epoch: holder.epoch, memberId }, this.#requestTimeoutMs), () => Promise.resolve(false));
  }

  override async heartbeat(group: string, memberId: string): Promise<{ generation: number; state: GroupStateName }> {
    return this.#route(group, true, () => super.heartbeat(group, memberId), (holder) =>
      this.#bus.request<{ generation: number; state: GroupStateName }>(holder.nodeId, { kind: "heartbeat", group, epoch: holder.epoch, memberId }, this.#requestTimeoutMs),
    ).catch((err: unknown) => {
      if (isTributaryError(err, "UNKNOWN_MEMBER")) this.#members.get(group)?.delete(memberId);
      throw err;
    });
  }

  override async commit(group: string, request: CommitRequest): Promise<void> {
    return this.#route(group, true, () => this.#fencedCommit(group, request), (holder) => this.#bus.request<void>(holder.nodeId, { kind: "commit", group, epoch: holder.epoch, request }, this.#requestTimeoutMs));
  }

  override async describeGroup(group: string): Promise<GroupDescription> {
    return this.#route(group, false, () => super.describeGroup(group), (holder) => this.#bus.request<GroupDescription>(holder.nodeId, { kind: "describe", group, epoch: holder.epoch }, this.#requestTimeoutMs));
  }

  override async listGroups(): Promise<GroupListing[]> {
    const names = new Set([...(await this.engine.listGroups()), ...(await this.#client.smembers(this.#groupsKey()))]);
    const out: GroupListing[] = [];
    for (const group of [...names].sort()) {
      try {
        const d = await this.describeGroup(group);
        out.push({ group, state: d.state, generation: d.generation, members: d.members.length });
      } catch (err) {
        if (!isTributaryError(err, "UNKNOWN_GROUP")) throw err;
        // Index housekeeping: on failure the name stays listed-but-skipped and the next listing prunes it again.
        await this.#client.srem(this.#groupsKey(), group).catch((err: unknown) => this.#reporter.report("group-state", "group.index_prune_failed", err, { group }));
      }
    }
    return out;
  }

  override async resetOffsets(group: string, topic: string, to: ResetTarget, partitions?: number[]): Promise<ResetOffsetsResult> {
    return this.#route(group, true, () => super.resetOffsets(group, topic, to, partitions), (holder) =>
      this.#bus.request<ResetOffsetsResult>(holder.nodeId, { kind: "reset", group, epoch: holder.epoch, topic, to, partitions }, this.#requestTimeoutMs),
    );
  }

  /** Stops coordinating: gives up every lease (other nodes take the groups at once) and disconnects. */
  override close(): void {
    super.close();
    clearInterval(this.#sweep);
    this.#shutdown ??= (async () => {
      await this.#leases.close();
      await this.#bus.close();
      this.#client.disconnect();
      this.#subscriber.disconnect();
    })();
  }

  /** Resolves once `close()` released the leases and disconnected. */
  closed(): Promise<void> {
    return this.#shutdown ?? Promise.resolve();
  }

  // ---- routing ---------------------------------------------------------------------------------

  /**
   * Runs `local` when this node coordinates `group` (acquiring the lease if `acquire` and it is
   * free), else `remote` against the holder. Retries while the coordinator is changing, for up
   * to a lease TTL plus a request timeout. Without `acquire`, an unheld group runs `idle` (or `local`).
   */
  async #route<T>(group: string, acquire: boolean, local: () => Promise<T>, remote: (holder: LeaseHolder) => Promise<T>, idle?: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#leases.ttlMs + this.#requestTimeoutMs;
    let delay = 50;
    for (;;) {
      const holder = acquire ? await this.#acquire(group) : await this.#leases.holder(group);
      if (!holder) return (idle ?? local)();
      if (holder.nodeId === this.nodeId) {
        if (this.#leases.heldEpoch(group) === undefined) await this.#acquire(group); // our lease, not yet known locally (restart)
        return local();
      }
      try {
        return await remote(holder);
      } catch (err) {
        if (!isTributaryError(err, "UNAVAILABLE") || Date.now() + delay > deadline) throw err;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 500);
      }
    }
  }

  async #acquire(group: string): Promise<LeaseHolder> {
    let holder: LeaseHolder;
    try {
      holder = await this.#leases.acquire(group);
    } catch (err) {
      throw new TributaryError("UNAVAILABLE", `cannot reach Redis to find the coordinator of group "${group}": ${(err as Error).message}`, { group }, { cause: err });
    }
    if (holder.nodeId === this.nodeId) {
      // On failure the group is missing from listGroups() until the next sweep re-indexes the held groups.
      await this.#client.sadd(this.#groupsKey(), group).catch((err: unknown) => this.#reporter.report("group-state", "group.index_add_failed", err, { group }));
    }
    return holder;
  }

  /** A commit on the coordinator: only while the lease is still this node's in Redis (fencing). */
  async #fencedCommit(group: string, request: CommitRequest): Promise<void> {
    const epoch = this.#leases.heldEpoch(group);
    const holder = await this.#leases.holder(group);
    if (epoch === undefined || !holder || holder.nodeId !== this.nodeId || holder.epoch !== epoch) {
      throw new TributaryError("UNAVAILABLE", `node ${this.nodeId} no longer coordinates group "${group}"; retry`, { group });
    }
    return super.commit(group, request);
  }

  // ---- serving other nodes -----------------------------------------------------------------------

  async #serve(request: BusRequest, from: string): Promise<unknown> {
    const group = String(request.group);
    const epoch = Number(request.epoch);
    switch (request.kind) {
      case "assign":
      case "revoke":
      case "removed":
        return this.#onEvent(group, epoch, request);
    }
    if (this.#leases.heldEpoch(group) !== epoch) {
      throw new TributaryError("UNAVAILABLE", `node ${this.nodeId} does not coordinate group "${group}" in lease epoch ${epoch}; retry`, { group });
    }
    switch (request.kind) {
      case "join": {
        const wire = request.request as Omit<JoinRequest, "channel">;
        return super.join(group, { ...wire, channel: this.#proxy(group, from) });
      }
      case "leave":
        return super.leave(group, String(request.memberId));
      case "heartbeat":
        return super.heartbeat(group, String(request.memberId));
      case "commit":
        await this.#fencedCommit(group, request.request as CommitRequest);
        return null;
      case "describe":
        return super.describeGroup(group);
      case "reset":
        return super.resetOffsets(group, String(request.topic), request.to as ResetTarget, request.partitions as number[] | undefined);
      default:
        throw new TributaryError("BAD_REQUEST", `unknown group request ${String(request.kind)}`);
    }
  }

  /** On the coordinator: the channel of a member connected to `node`. */
  #proxy(group: string, node: string): GroupMemberChannel {
    let memberId = "";
    const epoch = () => this.#leases.heldEpoch(group) ?? 0;
    const send = (body: BusRequest, timeoutMs = this.#requestTimeoutMs) => this.#bus.request<unknown>(node, { ...body, group, epoch: epoch() }, timeoutMs);
    const failed = (kind: string, err: unknown, fields: Record<string, unknown> = {}) => {
      if (!this.#shutdown) this.#reporter.report("group-event", "group.event_failed", err, { group, kind, memberId, node, ...fields });
    };
    return {
      // The member's node answers once the member has it; without an answer within the
      // rebalance timeout the member is removed (#assignFailed).
      assign: (assignment: MemberAssignment) => {
        memberId = assignment.memberId;
        const sentIn = this.#leases.heldEpoch(group);
        send({ kind: "assign", assignment }, this.#rebalanceTimeoutMs + 1000).catch((err: unknown) => {
          failed("assign", err, { generation: assignment.generation });
          void this.#assignFailed(group, assignment.memberId, sentIn);
        });
      },
      // The member's node answers once the member confirmed; no answer within the rebalance
      // timeout counts as a timeout for the coordinator too (the rebalance goes on without it).
      revoke: async (revocation: MemberRevocation) => {
        memberId = revocation.memberId;
        try {
          await send({ kind: "revoke", revocation }, this.#rebalanceTimeoutMs + 1000);
        } catch (err) {
          failed("revoke", err, { generation: revocation.generation });
          throw err;
        }
      },
      // Lost: the member's node still thinks the member is in; its next heartbeat gets
      // UNKNOWN_MEMBER, which ends the subscription the same way.
      removed: (reason: LeaveReason) => void send({ kind: "removed", memberId, reason }).catch((err: unknown) => failed("removed", err, { reason })),
    };
  }

  /**
   * An `assign` did not reach a member on another node (its node is gone, the inbox message
   * was lost while that node's subscriber reconnected, Redis was unreachable). Later assigns
   * only carry what changes, so the member would never start the partitions it missed: it is
   * removed from the group instead. The rebalance that follows hands its partitions to the
   * other members; if its node is alive, the member's next heartbeat gets UNKNOWN_MEMBER and
   * it joins again with a full assignment (records after its last commit are delivered again,
   * as in any rebalance). Nothing to do when this node no longer coordinates the group (the
   * new coordinator starts it afresh) or is shutting down.
   */
  async #assignFailed(group: string, memberId: string, sentIn: number | undefined): Promise<void> {
    if (this.#shutdown || sentIn === undefined || this.#leases.heldEpoch(group) !== sentIn) return;
    try {
      if (await super.leave(group, memberId)) this.#reporter.note("group.member_removed_after_lost_assign", { group, memberId });
    } catch (err) {
      // Left to the member's session timeout, which removes it the same way.
      this.#reporter.report("group-event", "group.member_remove_failed", err, { group, memberId });
    }
  }

  /** On a member's node: an event from the coordinator for one of its members. */
  async #onEvent(group: string, epoch: number, request: BusRequest): Promise<unknown> {
    const newest = this.#epochs.get(group) ?? 0;
    if (epoch < newest) return null; // a deposed coordinator
    this.#epochs.set(group, epoch);
    const memberId = request.kind === "assign" ? (request.assignment as MemberAssignment).memberId : request.kind === "revoke" ? (request.revocation as MemberRevocation).memberId : String(request.memberId);
    const act = (channel: GroupMemberChannel): Promise<unknown> => {
      switch (request.kind) {
        case "assign":
          channel.assign(request.assignment as MemberAssignment);
          return Promise.resolve(null);
        case "revoke":
          return channel.revoke(request.revocation as MemberRevocation).then(() => null);
        default:
          this.#members.get(group)?.delete(memberId);
          channel.removed?.(request.reason as LeaveReason);
          return Promise.resolve(null);
      }
    };
    const channel = this.#members.get(group)?.get(memberId);
    if (channel) return act(channel);
    // The join answer has not registered the member yet: hold the event briefly.
    const key = `${group}\u0000${memberId}`;
    return new Promise((resolve) => {
      const list = this.#early.get(key) ?? [];
      list.push((ch) => void act(ch).then(resolve, () => resolve(null)));
      this.#early.set(key, list);
      setTimeout(() => {
        if (this.#early.get(key) === list) this.#early.delete(key);
        resolve(null);
      }, this.#requestTimeoutMs * 2).unref();
    });
  }

  #register(group: string, memberId: string, channel: GroupMemberChannel): void {
    let members = this.#members.get(group);
    if (!members) this.#members.set(group, (members = new Map()));
    members.set(memberId, channel);
    const key = `${group}\u0000${memberId}`;
    const held = this.#early.get(key);
    this.#early.delete(key);
    for (const action of held ?? []) action(channel);
  }

  /**
   * The lease was lost (another node coordinates now): drop the group's state here. A failure
   * leaves stale state behind (logged and counted); it is only read again if this node
   * re-acquires the lease, and then members it does not know get UNKNOWN_MEMBER and rejoin.
   */
  async #forget(group: string): Promise<void> {
    const failed = (what: string, err: unknown, fields: Record<string, unknown> = {}) =>
      this.#reporter.report("group-state", "group.forget_failed", err, { group, what, ...fields });
    await this.store.delete(group).catch((err: unknown) => failed("group state", err));
    let members: MemberRecord[] = [];
    try {
      members = await this.membership.members(group);
    } catch (err) {
      failed("member list", err);
    }
    for (const m of members) await this.membership.store.remove(group, m.id).catch((err: unknown) => failed("member", err, { memberId: m.id }));
  }

  /** One sweep: re-indexes the groups this node holds, then releases the ones that emptied out. */
  async #sweepHeld(): Promise<void> {
    const held = this.#leases.heldGroups();
    if (held.length > 0) {
      await this.#client.sadd(this.#groupsKey(), ...held).catch((err: unknown) => this.#reporter.report("group-state", "group.index_add_failed", err, { groups: held.length }));
    }
    await this.#releaseEmpty(held);
  }

  /** Releases the leases of groups found without members on two sweeps in a row (a join may be under way on the first). */
  async #releaseEmpty(held: string[]): Promise<void> {
    const empty = new Set<string>();
    for (const group of held) {
      const state = await this.#loadForSweep(group);
      if (state === undefined || (state && Object.keys(state.members).length > 0)) continue;
      if (!this.#emptyBefore.has(group)) {
        empty.add(group);
        continue;
      }
      await this.settled(group);
      const again = await this.#loadForSweep(group);
      if (again === null || (again && Object.keys(again.members).length === 0)) await this.#leases.release(group);
    }
    this.#emptyBefore = empty;
  }

  /** The group's state for the sweep; undefined when it cannot be read (the lease is then kept: members may be there). */
  async #loadForSweep(group: string): Promise<GroupState | null | undefined> {
    try {
      return await this.store.load(group);
    } catch (err) {
      this.#reporter.report("group-state", "group.state_load_failed", err, { group });
      return undefined;
    }
  }

  #groupsKey(): string {
    return `{${this.#prefix}:cluster}:groups`;
  }
}
