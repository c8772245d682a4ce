/**
 * Per-group coordinator leases in Redis: exactly one node coordinates a consumer group at a
 * time. A lease is `SET NX PX` (scripts/lease-acquire.lua) whose value carries the holder
 * and an epoch incremented at every acquisition (the fencing token); the holder renews it
 * every `ttlMs / 3` (taking it back if it expired and nobody acquired it since) and loses
 * it when a renewal finds it re-acquired (it then stops acting for the group: `onLost`). A node that dies stops renewing: its groups move to the next
 * node that needs them after at most `ttlMs`.
 *
 *   {<prefix>:cluster}:lease:<group>          "<nodeId>|<epoch>", PX ttlMs
 *   {<prefix>:cluster}:lease-epoch:<group>    integer, INCR per acquisition (never below the
 *                                             acquirer's clock in ms: epochs keep growing even if
 *                                             Redis lost the counter)
 *
 * Renewals and releases run in the background: their failures are logged and counted
 * (task `group-lease`) through the `reporter`; what each one means is said where it happens.
 */
import { readFileSync } from "node:fs";
import type { RedisClient } from "../redis/redis-connection.ts";
import { RedisErrorReporter, type FailureSeries } from "../redis/redis-error-reporter.ts";

const lua = (file: string) => readFileSync(new URL(`./scripts/${file}`, import.meta.url), "utf8");
const ACQUIRE = lua("lease-acquire.lua");
const RENEW = lua("lease-renew.lua");
const RELEASE = lua("lease-release.lua");

export interface LeaseHolder {
  nodeId: string;
  epoch: number;
}

export interface GroupLeasesOptions {
  client: RedisClient;
  prefix: string;
  nodeId: string;
  /** Lease time to live (default 5000 ms); renewed every third of it. */
  ttlMs?: number;
  /** The node lost a lease it held (a renewal found it gone or taken). */
  onLost?: (group: string, held: LeaseHolder) => void;
  /** Where renewal and release failures go. Default: logged to stderr, not counted. */
  reporter?: RedisErrorReporter;
}

function parse(value: unknown): LeaseHolder | null {
  if (typeof value !== "string" && !Buffer.isBuffer(value)) return null;
  const text = String(value);
  const bar = text.lastIndexOf("|");
  return bar < 0 ? null : { nodeId: text.slice(0, bar), epoch: Number(text.slice(bar + 1)) };
}

export class GroupLeases {
  readonly nodeId: string;
  readonly ttlMs: number;
  readonly #client: RedisClient;
  readonly #prefix: string;
  readonly #onLost: (group: string, held: LeaseHolder) => void;
  /** Leases this node holds: group → epoch. */
  readonly #held = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  readonly #reporter: RedisErrorReporter;
  readonly #renewFailures: FailureSeries;
  #closed = false;

  constructor(options: GroupLeasesOptions) {
    this.#client = options.client;
    this.#prefix = options.prefix;
    this.nodeId = options.nodeId;
    this.ttlMs = options.ttlMs ?? 5000;
    this.#onLost = options.onLost ?? (() => {});
    this.#reporter = options.reporter ?? RedisErrorReporter.standalone();
    this.#renewFailures = this.#reporter.series("group-lease", "group.lease_renew_failed", "group.lease_renew_recovered", { nodeId: this.nodeId });
    this.#timer = setInterval(() => void this.#renewAll(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.#timer.unref();
  }

  /** Groups whose lease this node holds. */
  heldGroups(): string[] {
    return [...this.#held.keys()];
  }

  /** The epoch of this node's lease on `group`, or undefined when it holds none. */
  heldEpoch(group: string): number | undefined {
    return this.#held.get(group);
  }

  /** Returns the group's coordinator, acquiring the lease for this node when nobody holds it. */
  async acquire(group: string): Promise<LeaseHolder> {
    const holder = parse(await this.#client.eval(ACQUIRE, 2, this.#leaseKey(group), this.#epochKey(group), this.nodeId, this.ttlMs, Date.now()))!;
    if (holder.nodeId === this.nodeId && !this.#closed) this.#held.set(group, holder.epoch);
    return holder;
  }

  /** The current holder, without acquiring. */
  async holder(group: string): Promise<LeaseHolder | null> {
    return parse(await this.#client.get(this.#leaseKey(group)));
  }

  /** Gives up every lease (clean shutdown): other nodes take the groups over at once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    const held = [...this.#held];
    this.#held.clear();
    await Promise.all(held.map(([group, epoch]) => this.#release(group, epoch)));
  }

  /** Drops a lease this node holds (it has nothing left to coordinate in the group). */
  async release(group: string): Promise<void> {
    const epoch = this.#held.get(group);
    if (epoch === undefined) return;
    this.#held.delete(group);
    await this.#release(group, epoch);
  }

  /**
   * Deletes the lease if it is still ours. On failure it is no longer renewed (forgotten
   * locally), so it expires by itself within `ttlMs`: until then other nodes' requests for the
   * group get UNAVAILABLE here (not a lease this node holds) and their senders retry until they
   * can acquire it, which is how a lost release is absorbed.
   */
  async #release(group: string, epoch: number): Promise<void> {
    try {
      await this.#client.eval(RELEASE, 1, this.#leaseKey(group), `${this.nodeId}|${epoch}`);
    } catch (err) {
      this.#reporter.report("group-lease", "group.lease_release_failed", err, { group, epoch, nodeId: this.nodeId, expiresInMs: this.ttlMs });
    }
  }

  async #renewAll(): Promise<void> {
    for (const [group, epoch] of [...this.#held]) {
      let renewed: unknown;
      try {
        renewed = await this.#client.eval(RENEW, 2, this.#leaseKey(group), this.#epochKey(group), `${this.nodeId}|${epoch}`, this.ttlMs, epoch);
        this.#renewFailures.recovered();
      } catch (err) {
        // Redis unreachable: logged and counted, retried at the next tick (a third of the TTL);
        // if it stays away the lease expires, and the first renewal that reaches Redis either
        // takes it back (nobody acquired it meanwhile) or reports it lost (onLost).
        if (!this.#closed) this.#renewFailures.failed(err, { group, epoch });
        continue;
      }
      if (Number(renewed) !== 1 && this.#held.get(group) === epoch) {
        this.#held.delete(group);
        this.#onLost(group, { nodeId: this.nodeId, epoch });
      }
    }
  }

  #leaseKey(group: string): string {
    return `{${this.#prefix}:cluster}:lease:${group}`;
  }

  #epochKey(group: string): string {
    return `{${this.#prefix}:cluster}:lease-epoch:${group}`;
  }
}
