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
 *   processed positions (`autoCommit`), confirms with `revoked`, emits `revoked`. The revoke
 *   is confirmed only once that commit landed or was fenced (then reported on the client's
 *   `error`: the partition's next owner gets those records again). A commit that cannot
 *   reach the server (connection lost, node unavailable) is retried with backoff while the
 *   connection lasts; after a reconnect the server sends the revoke again to the re-bound
 *   member, which commits then: a dropped connection costs no duplicates.
 * - Auto-commit: every `autoCommitIntervalMs` (default 5 s) commits, per owned partition,
 *   the offset after the last message the handler finished; also on revoke and leave. A
 *   failed commit before leaving is reported on `error` (a stale generation because an
 *   `assign` crossed it is retried once with the new one).
 * - Fenced commits: ILLEGAL_GENERATION (a rebalance is under way: the next `assign` brings
 *   the new generation), PARTITION_NOT_OWNED (the partition moved on), UNKNOWN_MEMBER (the
 *   session timed out: the server also sends `error` {sub, UNKNOWN_MEMBER} and the SDK joins
 *   anew, every partition counts as lost and is reported in `revoked` with `lost: true`).
 *
 * Delivery is at-least-once with per-partition order: a partition's new owner starts at the
 * last commit, so what was processed after it is delivered again.
 */
import type { AssignFrame, JoinedFrame, RevokeFrame, SubscribeFrame } from "../protocol/index.ts";
import { backoff } from "./backoff.ts";
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
  /** Epoch of the history `processed(partition)` belongs to (the assignment's, or a `reset`'s since). */
  epoch(partition: number): string | undefined;
  /** Emits a subscription event. */
  emit<E extends keyof SubscriptionEvents>(event: E, payload: SubscriptionEvents[E]): void;
}

const FENCED = new Set(["ILLEGAL_GENERATION", "PARTITION_NOT_OWNED", "UNKNOWN_MEMBER", "UNAVAILABLE", "TIMEOUT"]);

/** Backoff bounds of a commit on revoke that could not reach the server (ms). */
const REVOKE_COMMIT_RETRY_MIN_MS = 50;
const REVOKE_COMMIT_RETRY_MAX_MS = 1000;

export class GroupMember {
  readonly group: string;
  readonly autoCommit: boolean;
  readonly autoCommitIntervalMs: number;
  readonly strategies: string[] | undefined;
  readonly sessionTimeoutMs: number | undefined;
  readonly #onRevoke: SubscribeOptions["onRevoke"];
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
  readonly #committed = new Map<number, { offset: number; epoch: string | undefined }>();
  /** Partitions given up on a revoke that is not confirmed yet (its commit did not land). */
  readonly #revoking = new Set<number>();
  /** Counts `joined` frames; a revoke task that sees it change knows the server re-sends its revoke. */
  #joins = 0;
  #onJoined: (() => void)[] = [];
  /** Revokes are completed (commit, confirm) one after the other. */
  #queue: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(sub: Subscription<any>, options: SubscribeOptions, control: GroupPartitionControl, host: SubscriptionHost) {
    this.group = options.group!;
    this.autoCommit = options.autoCommit ?? true;
    this.autoCommitIntervalMs = options.autoCommitIntervalMs ?? 5000;
    this.strategies = options.strategy === undefined ? undefined : Array.isArray(options.strategy) ? [...options.strategy] : [options.strategy];
    this.sessionTimeoutMs = options.sessionTimeoutMs;
    this.#onRevoke = options.onRevoke;
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
    this.#joins++;
    for (const wake of this.#onJoined.splice(0)) wake();
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
      // A late `assign` of an older round (the server sends them in order; this is a guard)
      // must not undo a newer one.
      if (frame.generation < this.generation) return;
      this.generation = frame.generation; // also while leaving: the leave commit carries it
      if (this.#sub.closed) return;
      const keep = new Set(frame.partitions.filter((tp) => tp.topic === this.#sub.topic).map((tp) => tp.partition));
      const dropped = [...this.#owned].filter((p) => !keep.has(p));
      if (dropped.length > 0) {
        for (const p of dropped) this.#owned.delete(p);
        this.#control.drop(dropped);
      }
      // Revokes the server stopped waiting for (rebalance timeout): those partitions moved on without this member's commit.
      const moved = [...this.#revoking].filter((p) => !keep.has(p));
      for (const p of this.#revoking) if (keep.has(p)) this.#revoking.delete(p);
      if (moved.length > 0) this.#emitLost(moved, frame.generation);
      const added: Array<{ partition: number; offset: number; committed: boolean }> = [];
      for (const a of frame.added) {
        if (a.topic !== this.#sub.topic) continue;
        // Still ours since before (a re-bind): skip what the handler already processed, in
        // the same history only (offsets of another epoch name other records).
        const processed = this.#owned.has(a.partition) && this.#control.epoch(a.partition) === a.epoch ? this.#control.processed(a.partition) : undefined;
        const from = processed !== undefined && processed > a.offset ? processed : a.offset;
        this.#control.start(a.partition, from, a.epoch);
        this.#owned.add(a.partition);
        this.#committed.set(a.partition, { offset: a.offset, epoch: a.epoch });
        added.push({ partition: a.partition, offset: from, committed: a.committed });
      }
      this.#control.emit("assigned", { group: this.group, generation: frame.generation, partitions: this.partitions, added });
    }
  }

  onRevoke(frame: RevokeFrame): void {
    // Stop at once: messages of these partitions already received are not handed out any more.
    const partitions = frame.partitions.filter((tp) => tp.topic === this.#sub.topic).map((tp) => tp.partition);
    for (const p of partitions) {
      if (this.#owned.delete(p)) this.#revoking.add(p);
    }
    this.#control.drop(partitions);
    const joins = this.#joins;
    this.#serially(async () => {
      await this.#control.whenIdle(partitions);
      if (this.#onRevoke) {
        try {
          await this.#onRevoke(partitions);
        } catch (err) {
          this.#report(err, "onRevoke", partitions, "the revoke goes on");
        }
      }
      if (this.autoCommit && !(await this.#commitOnRevoke(partitions, frame.generation, joins))) return;
      this.#host.send({ op: "revoked", sub: this.#sub.id, generation: frame.generation, partitions: frame.partitions });
      for (const p of partitions) this.#revoking.delete(p);
      this.#control.emit("revoked", { group: this.group, generation: frame.generation, partitions, lost: false });
    });
  }

  /** The server removed the member (session timeout): every partition is lost; join anew. */
  onRemoved(): void {
    this.#lose();
    this.memberId = undefined;
    if (!this.#sub.closed) this.#host.resubscribe(this.#sub);
  }

  /** Commits the processed position of every owned partition that moved since the last commit, or the given `offsets` (owned or revoking partitions). */
  commit(offsets?: Record<number, number>): Promise<void> {
    if (!offsets) return this.#commitPartitions([...this.#owned], this.generation);
    const partitions = Object.keys(offsets).map(Number).filter((p) => this.#owned.has(p) || this.#revoking.has(p));
    return this.#commitPartitions(partitions, this.generation, offsets);
  }

  /** Before an explicit leave: let the handler finish, commit (with autoCommit); a failed commit is reported. */
  async beforeLeave(): Promise<void> {
    this.stopTimers();
    await this.#control.whenIdle([...this.#owned]);
    if (this.autoCommit) {
      const generation = this.generation;
      try {
        await this.#commitPartitions([...this.#owned], generation);
      } catch (err) {
        // An `assign` crossed the commit: frames arrive in order, so its generation is known now.
        const retry = isTributaryClientError(err, "ILLEGAL_GENERATION") && this.generation !== generation;
        await (retry ? this.#commitPartitions([...this.#owned], this.generation) : Promise.reject(err)).catch((e: unknown) =>
          this.#report(e, "commit before leaving", [...this.#owned], "their records processed since the last commit go to the next owners again"),
        );
      }
    }
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

  async #commitPartitions(partitions: number[], generation: number, explicit?: Record<number, number>): Promise<void> {
    if (this.memberId === undefined || generation === 0) return;
    const offsets: Array<{ topic: string; partition: number; offset: number; epoch?: string }> = [];
    for (const partition of partitions) {
      const offset = explicit ? explicit[partition] : this.#control.processed(partition);
      const epoch = this.#control.epoch(partition);
      const last = this.#committed.get(partition);
      if (offset === undefined || (last !== undefined && last.offset === offset && last.epoch === epoch)) continue;
      // With its epoch: a reset since the assignment may have moved the partition into a new history.
      offsets.push(epoch === undefined ? { topic: this.#sub.topic, partition, offset } : { topic: this.#sub.topic, partition, offset, epoch });
    }
    if (offsets.length === 0) return;
    await this.#host.request({ op: "commit", id: 0, sub: this.#sub.id, generation, offsets });
    for (const o of offsets) {
      const last = this.#committed.get(o.partition);
      if (last === undefined || last.epoch !== o.epoch || last.offset < o.offset) this.#committed.set(o.partition, { offset: o.offset, epoch: o.epoch });
    }
  }

  /**
   * Commits the processed positions of revoked partitions. True when the revoke may be
   * confirmed: the commit landed, or it was fenced (the partitions moved on already: reported).
   * A commit that could not reach the server is retried with backoff; false when the member
   * re-joined meanwhile (the server sends the revoke again, to be completed then) or the
   * subscription closed.
   */
  async #commitOnRevoke(partitions: number[], generation: number, joins: number): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#commitPartitions(partitions, generation);
        return true;
      } catch (err) {
        if (!isTributaryClientError(err) || !err.retriable) {
          this.#report(err, "commit on revoke", partitions, "their records processed since the last commit go to the next owner again");
          return true;
        }
        if (attempt === 0) this.#report(err, "commit on revoke", partitions, "retrying; the revoke is confirmed once it lands (after a reconnect, on the re-sent revoke)");
      }
      await this.#rejoinedOrAfter(backoff(attempt, REVOKE_COMMIT_RETRY_MIN_MS, REVOKE_COMMIT_RETRY_MAX_MS));
      if (this.#sub.closed || this.#joins !== joins) return false;
    }
  }

  /** Resolves at the next `joined` or after `ms`, whichever comes first. */
  #rejoinedOrAfter(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#onJoined = this.#onJoined.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#onJoined.push(done);
    });
  }

  /** Reports a failed group commit on the client's `error`, naming the group, the partitions and what follows. */
  #report(err: unknown, what: string, partitions: number[], consequence: string): void {
    const e = isTributaryClientError(err) ? err : new TributaryClientError("INTERNAL", String(err), {}, { cause: err });
    this.#host.reportError(
      new TributaryClientError(e.code, `group "${this.group}": ${what} of partitions [${partitions.join(", ")}] of "${this.#sub.topic}" failed (${e.message}); ${consequence}`, { ...e.context, group: this.group, topic: this.#sub.topic, partitions, memberId: this.memberId }, { cause: e }),
    );
  }

  #lose(): void {
    const lost = [...new Set([...this.partitions, ...this.#revoking])].sort((a, b) => a - b);
    this.#owned.clear();
    this.#committed.clear();
    this.generation = 0;
    if (lost.length > 0) {
      this.#control.drop(lost);
      this.#emitLost(lost, this.generation);
    }
  }

  /** Partitions that moved on without this member's commit. */
  #emitLost(partitions: number[], generation: number): void {
    for (const p of partitions) this.#revoking.delete(p);
    this.#control.emit("revoked", { group: this.group, generation, partitions, lost: true });
  }

  #serially(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((err: unknown) => {
      this.#host.reportError(isTributaryClientError(err) ? err : new TributaryClientError("INTERNAL", `group "${this.group}": ${String(err)}`, {}, { cause: err }));
    });
  }
}
