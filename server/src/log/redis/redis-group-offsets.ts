import { validateCommit } from "../commit-options.ts";
import type { CommitOptions, CommittedOffset } from "../log-engine.ts";
import { str, type RedisEngineCore } from "./redis-engine-core.ts";
import { SCRIPTS } from "./redis-scripts.ts";

/** A committed position this engine has seen: the floor a rolled-back store is raised to. */
interface SeenCommit {
  offset: number;
  epoch: string | null;
}

/**
 * Committed group positions of `RedisLogEngine` (internal to it): one hash per group, field
 * `<topic>:<partition>`, value `<offset>|<committedAt>[@<epoch>]|<metadata>` (the epoch
 * URI-encoded; no `@<epoch>` = unknown, as in values written before commits had epochs),
 * written by commit-offset.lua.
 *
 * Within one history (same epoch, or a commit of unknown epoch) the stored offset only
 * rises, and the engine remembers the highest position it has seen committed per group and
 * field: a store that rolled back (failover, restart without persistence) is raised to it
 * again on commit and on fetch, with the epoch it was committed under (so a position
 * restored after the partition's history was rewritten reads as stale, never as current).
 * A commit under another known epoch starts a new history and replaces the stored value.
 */
export class RedisGroupOffsets {
  readonly #core: RedisEngineCore;
  /** Highest committed position this engine has seen per group/field: a rolled-back store is repaired. */
  readonly #committed = new Map<string, SeenCommit>();
  readonly #knownGroups = new Set<string>();

  constructor(core: RedisEngineCore) {
    this.#core = core;
  }

  async commit(group: string, topic: string, partition: number, offset: number, options?: CommitOptions): Promise<void> {
    const core = this.#core;
    core.assertOpen();
    const c = validateCommit(group, topic, partition, offset, options);
    await core.partitionTopic(topic, partition);
    const field = core.keys.offsetField(topic, partition);
    const ck = `${group}\u0000${field}`;
    // Never below what this engine has seen committed in the same history: repairs a store that rolled back.
    const floor = this.#committed.get(ck);
    const raise = floor !== undefined && continues(floor.epoch, c.epoch) && floor.offset > c.offset;
    const effective = raise ? floor.offset : c.offset;
    const epoch = raise ? floor.epoch : c.epoch;
    const stored = await core.call({ group, topic, partition }, async () => {
      if (!this.#knownGroups.has(group)) {
        await core.client.sadd(core.keys.groups(), group);
        this.#knownGroups.add(group);
      }
      return SCRIPTS.commitOffset.run(core.client, [core.keys.groupOffsets(group)], [field, effective, Date.now(), c.metadata, raise ? "1" : "0", encodeEpoch(epoch)]);
    });
    const parsed = parseCommitted(str(stored));
    if (parsed) this.#see(ck, parsed);
  }

  async fetch(group: string, topic: string, partition: number): Promise<CommittedOffset | null> {
    const core = this.#core;
    core.assertOpen();
    await core.partitionTopic(topic, partition);
    const field = core.keys.offsetField(topic, partition);
    const raw = await core.call({ group, topic, partition }, () => core.client.hget(core.keys.groupOffsets(group), field));
    return this.#reconcile(group, field, raw === null ? null : parseCommitted(raw));
  }

  async fetchGroup(group: string): Promise<Map<string, Map<number, CommittedOffset>>> {
    const core = this.#core;
    core.assertOpen();
    const all = await core.call({ group }, () => core.client.hgetall(core.keys.groupOffsets(group)));
    const out = new Map<string, Map<number, CommittedOffset>>();
    for (const [field, raw] of Object.entries(all)) {
      const i = field.lastIndexOf(":");
      const topic = field.slice(0, i);
      const partition = Number(field.slice(i + 1));
      const c = await this.#reconcile(group, field, parseCommitted(raw));
      if (!c) continue;
      let m = out.get(topic);
      if (!m) out.set(topic, (m = new Map()));
      m.set(partition, c);
    }
    return out;
  }

  async listGroups(): Promise<string[]> {
    const core = this.#core;
    core.assertOpen();
    return (await core.call({}, () => core.client.smembers(core.keys.groups()))).sort();
  }

  /**
   * Drops every group's committed offsets of a deleted topic (a re-created topic starts
   * afresh). Runs inside the caller's `core.call`.
   */
  async forgetTopic(name: string, partitions: number): Promise<void> {
    const core = this.#core;
    const groups = await core.client.smembers(core.keys.groups());
    const fields = Array.from({ length: partitions }, (_, p) => core.keys.offsetField(name, p));
    await Promise.all(groups.map((g) => core.client.hdel(core.keys.groupOffsets(g), ...fields)));
    for (const k of [...this.#committed.keys()]) if (k.split("\u0000")[1]?.startsWith(`${name}:`)) this.#committed.delete(k);
  }

  /** Remembers `stored` as the floor, unless the floor is higher in the same epoch. */
  #see(ck: string, stored: CommittedOffset): void {
    const prev = this.#committed.get(ck);
    if (prev && prev.epoch === stored.epoch && prev.offset > stored.offset) return;
    this.#committed.set(ck, { offset: stored.offset, epoch: stored.epoch });
  }

  /**
   * A stored commit missing, or below what this engine saw in the same epoch (the store
   * rolled back), is raised again. A stored commit of another epoch is someone's newer
   * history (or an older one the reader will find stale): it is taken as it is.
   */
  async #reconcile(group: string, field: string, stored: CommittedOffset | null): Promise<CommittedOffset | null> {
    const core = this.#core;
    const ck = `${group}\u0000${field}`;
    const seen = this.#committed.get(ck);
    if (seen === undefined || (stored && (stored.epoch !== seen.epoch || stored.offset >= seen.offset))) {
      if (stored) this.#committed.set(ck, { offset: stored.offset, epoch: stored.epoch });
      return stored;
    }
    const metadata = stored?.metadata ?? "";
    const committedAt = Date.now();
    const result = await core.call({ group }, () =>
      SCRIPTS.commitOffset.run(core.client, [core.keys.groupOffsets(group)], [field, seen.offset, committedAt, metadata, "1", encodeEpoch(seen.epoch)]),
    );
    return parseCommitted(str(result)) ?? { offset: seen.offset, epoch: seen.epoch, metadata, committedAt };
  }
}

/** Whether a commit of epoch `incoming` continues a history stored under `stored` (commit-offset.lua's rule). */
function continues(stored: string | null, incoming: string | null): boolean {
  return incoming === null || stored === incoming;
}

function encodeEpoch(epoch: string | null): string {
  return epoch === null ? "" : encodeURIComponent(epoch);
}

function decodeEpoch(raw: string): string | null {
  if (raw === "") return null;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // not written by this engine: keep it as it is (it will not match a partition epoch)
  }
}

function parseCommitted(raw: string): CommittedOffset | null {
  const a = raw.indexOf("|");
  const b = raw.indexOf("|", a + 1);
  if (a < 0 || b < 0) return null;
  const stamp = raw.slice(a + 1, b);
  const at = stamp.indexOf("@");
  return {
    offset: Number(raw.slice(0, a)),
    epoch: at < 0 ? null : decodeEpoch(stamp.slice(at + 1)),
    committedAt: Number(at < 0 ? stamp : stamp.slice(0, at)),
    metadata: raw.slice(b + 1),
  };
}
