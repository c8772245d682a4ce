/**
 * The consumer-group side of a subscription (`subscribe(topic, handler, { group })`),
 * following docs/consumer-groups.md:
 *
 * - Joins by sending `subscribe` with `group`; the server answers `joined` {memberId}. After
 *   a reconnect the SDK joins again with that memberId: within the session timeout it keeps
 *   its partitions (no rebalance) and skips records it already processed.
 * - `assign` (handled at once): the new generation (commits carry it) and the partitions to start, each at
 *   the group's committed offset (or the reset policy's). Emits `assigned`.
 * - `revoke`: stops handing those partitions to the application (buffered messages are
 *   dropped), waits for the handler to finish its current message of them, commits the
 *   processed positions (`autoCommit`), confirms with `revoked`, emits `revoked`.
 * - Auto-commit: every `autoCommitIntervalMs` (default 5 s) commits, per owned partition,
 *   the offset after the last message the handler finished; also on revoke and leave.
 * - Fenced commits: ILLEGAL_GENERATION (a rebalance is under way: the next `assign` brings
 *   the new generation), PARTITION_NOT_OWNED (the partition moved on), UNKNOWN_MEMBER (the
 *   session timed out: the server also sends `error` {sub, UNKNOWN_MEMBER} and the SDK joins
 *   anew, every partition counts as lost and is reported in `revoked` with `lost: true`).
 *
 * Delivery is at-least-once with per-partition order: a partition's new owner starts at the
 * last commit, so what was processed after it is delivered again.
 */
import type { AssignFrame, JoinedFrame, RevokeFrame, SubscribeFrame } from "../protocol/index.ts";
import { TributaryClientError, isTributaryClientError } from "./errors.ts";
import type { Subscription, SubscriptionHost } from "./subscription.ts";
import type { SubscribeOptions, SubscriptionEvents } from "./types.ts";

/** What the member needs from its subscription's delivery state. */
export interface GroupPartitionControl {
  /** Accept messages of `partition` from `offset` on (lower offsets are skipped). */
  start(partition: number, offset: number, epoch: string): void;
  /** Drop buffered messages of `partitions`. */
  drop(partitions: number[]): void;
  /** Resolves when the handler is not processing a message of `partitions`. */
  whenIdle(partitions: number[]): Promise<void>;
  /** Offset after the last message of `partition` the application finished. */
  processed(partition: number): number | undefined;
  /** Emits a subscription event. */
  emit<E extends keyof SubscriptionEvents>(event: E, payload: SubscriptionEvents[E]): void;
}

const FENCED = new Set(["ILLEGAL_GENERATION", "PARTITION_NOT_OWNED", "UNKNOWN_MEMBER", "UNAVAILABLE", "TIMEOUT"]);

export class GroupMember {
  readonly group: string;
  readonly autoCommit: boolean;
  readonly autoCommitIntervalMs: number;
  readonly strategies: string[] | undefined;
  readonly sessionTimeoutMs: number | undefined;
  /** Assigned by the server in `joined`; kept across reconnects to re-bind. */
  memberId: string | undefined;
  /** Generation of the latest `assign` (0 before the first). */
  generation = 0;
  readonly #sub: Subscription<any>;
  readonly #control: GroupPartitionControl;
  readonly #host: SubscriptionHost;
  /** Partitions this member consumes now. */
  readonly #owned = new Set<number>();
  /** Per partition: the last offset committed (or the start offset it was assigned at). */
  readonly #committed = new Map<number, number>();
  /** Revokes are completed (commit, confirm) one after the other. */
  #queue: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(sub: Subscription<any>, options: SubscribeOptions, control: GroupPartitionControl, host: SubscriptionHost) {
    this.group = options.group!;
    this.autoCommit = options.autoCommit ?? true;
    this.autoCommitIntervalMs = options.autoCommitIntervalMs ?? 5000;
    this.strategies = options.strategy === undefined ? undefined : Array.isArray(options.strategy) ? [...options.strategy] : [options.strategy];
    this.sessionTimeoutMs = options.sessionTimeoutMs;
    this.#sub = sub;
    this.#control = control;
    this.#host = host;
  }

  /** Partitions owned now, ascending. */
  get partitions(): number[] {
    return [...this.#owned].sort((a, b) => a - b);
  }

  owns(partition: number): boolean {
    return this.#owned.has(partition);
  }

  /** The group fields of the `subscribe` frame. */
  joinFields(): Pick<SubscribeFrame, "group" | "strategies" | "sessionTimeoutMs" | "memberId"> {
    return {
      group: this.group,
      ...(this.strategies ? { strategies: this.strategies } : {}),
      ...(this.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: this.sessionTimeoutMs } : {}),
      ...(this.memberId !== undefined ? { memberId: this.memberId } : {}),
    };
  }

  onJoined(frame: JoinedFrame): void {
    if (this.memberId !== undefined && frame.memberId !== this.memberId) this.#lose(); // a new member: nothing carries over
    this.memberId = frame.memberId;
    this.#control.emit("joined", { group: this.group, memberId: frame.memberId });
    if (this.autoCommit && this.#timer === undefined && !this.#sub.closed) {
      this.#timer = setInterval(() => void this.#autoCommit(), this.autoCommitIntervalMs);
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }

  onAssign(frame: AssignFrame): void {
    // Synchronously: the partitions' messages may follow in the same network read. (The
    // server sends an `assign` only after this member confirmed every revoke of the round.)
    {
      if (this.#sub.closed) return;
      this.generation = frame.generation;
      const keep = new Set(frame.partitions.filter((tp) => tp.topic === this.#sub.topic).map((tp) => tp.partition));
      const dropped = [...this.#owned].filter((p) => !keep.has(p));
      if (dropped.length > 0) {
        for (const p of dropped) this.#owned.delete(p);
        this.#control.drop(dropped);
      }
      const added: Array<{ partition: number; offset: number; committed: boolean }> = [];
      for (const a of frame.added) {
        if (a.topic !== this.#sub.topic) continue;
        // Still ours since before (a re-bind): skip what the handler already processed.
        const processed = this.#owned.has(a.partition) ? this.#control.processed(a.partition) : undefined;
        const from = processed !== undefined && processed > a.offset ? processed : a.offset;
        this.#control.start(a.partition, from, a.epoch);
        this.#owned.add(a.partition);
        this.#committed.set(a.partition, a.offset);
        added.push({ partition: a.partition, offset: from, committed: a.committed });
      }
      this.#control.emit("assigned", { group: this.group, generation: frame.generation, partitions: this.partitions, added });
    }
  }

  onRevoke(frame: RevokeFrame): void {
    // Stop at once: messages of these partitions already received are not handed out any more.
    const partitions = frame.partitions.filter((tp) => tp.topic === this.#sub.topic).map((tp) => tp.partition);
    for (const p of partitions) this.#owned.delete(p);
    this.#control.drop(partitions);
    this.#serially(async () => {
      await this.#control.whenIdle(partitions);
      if (this.autoCommit) await this.#commitPartitions(partitions, frame.generation).catch(() => undefined);
      this.#host.send({ op: "revoked", sub: this.#sub.id, generation: frame.generation, partitions: frame.partitions });
      this.#control.emit("revoked", { group: this.group, generation: frame.generation, partitions, lost: false });
    });
  }

  /** The server removed the member (session timeout): every partition is lost; join anew. */
  onRemoved(): void {
    this.#lose();
    this.memberId = undefined;
    if (!this.#sub.closed) this.#host.resubscribe(this.#sub);
  }

  /** Commits the processed position of every owned partition that moved since the last commit. */
  commit(): Promise<void> {
    return this.#commitPartitions([...this.#owned], this.generation);
  }

  /** Before an explicit leave: let the handler finish, commit (with autoCommit). */
  async beforeLeave(): Promise<void> {
    this.stopTimers();
    const partitions = [...this.#owned];
    await this.#control.whenIdle(partitions);
    if (this.autoCommit) await this.#commitPartitions(partitions, this.generation).catch(() => undefined);
    this.#owned.clear();
  }

  stopTimers(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #autoCommit(): Promise<void> {
    try {
      await this.commit();
    } catch (err) {
      if (!(isTributaryClientError(err) && FENCED.has(err.code))) this.#host.reportError(err as TributaryClientError);
    }
  }

  async #commitPartitions(partitions: number[], generation: number): Promise<void> {
    if (this.memberId === undefined || generation === 0) return;
    const offsets: Array<{ topic: string; partition: number; offset: number }> = [];
    for (const partition of partitions) {
      const offset = this.#control.processed(partition);
      if (offset !== undefined && offset !== this.#committed.get(partition)) offsets.push({ topic: this.#sub.topic, partition, offset });
    }
    if (offsets.length === 0) return;
    await this.#host.request({ op: "commit", id: 0, sub: this.#sub.id, generation, offsets });
    for (const o of offsets) if ((this.#committed.get(o.partition) ?? -1) < o.offset) this.#committed.set(o.partition, o.offset);
  }

  #lose(): void {
    const lost = this.partitions;
    this.#owned.clear();
    this.#committed.clear();
    this.generation = 0;
    if (lost.length > 0) {
      this.#control.drop(lost);
      this.#control.emit("revoked", { group: this.group, generation: this.generation, partitions: lost, lost: true });
    }
  }

  #serially(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((err: unknown) => {
      this.#host.reportError(isTributaryClientError(err) ? err : new TributaryClientError("INTERNAL", `group "${this.group}": ${String(err)}`, {}, { cause: err }));
    });
  }
}
