import { TributaryError } from "../../errors.ts";
import type { CommittedOffset } from "../log-engine.ts";
import { str, type RedisEngineCore } from "./redis-engine-core.ts";
import { SCRIPTS } from "./redis-scripts.ts";

/**
 * Committed group offsets of `RedisLogEngine` (internal to it): one hash per group, field
 * `<topic>:<partition>`, value `<offset>|<committedAt>|<metadata>`. The engine remembers the
 * highest offset it has seen committed per group and field, and raises a store that rolled
 * back (failover, restart without persistence) to it on commit and on fetch.
 */
export class RedisGroupOffsets {
  readonly #core: RedisEngineCore;
  /** Highest committed offset this engine has seen per group/field: a rolled-back store is repaired. */
  readonly #committed = new Map<string, number>();
  readonly #knownGroups = new Set<string>();

  constructor(core: RedisEngineCore) {
    this.#core = core;
  }

  async commit(group: string, topic: string, partition: number, offset: number, metadata = ""): Promise<void> {
    const core = this.#core;
    core.assertOpen();
    if (typeof group !== "string" || group.length === 0) throw new TributaryError("BAD_REQUEST", "group must be a non-empty string", { group });
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new TributaryError("BAD_REQUEST", `offset must be a non-negative integer, got ${String(offset)}`, { group, topic, partition });
    }
    await core.partitionTopic(topic, partition);
    const field = core.keys.offsetField(topic, partition);
    const ck = `${group}\u0000${field}`;
    // Never below what this engine has seen committed: repairs a store that rolled back.
    const floor = this.#committed.get(ck) ?? -1;
    const effective = Math.max(offset, floor);
    const stored = await core.call({ group, topic, partition }, async () => {
      if (!this.#knownGroups.has(group)) {
        await core.client.sadd(core.keys.groups(), group);
        this.#knownGroups.add(group);
      }
      return SCRIPTS.commitOffset.run(core.client, [core.keys.groupOffsets(group)], [field, effective, Date.now(), metadata, effective === offset ? "0" : "1"]);
    });
    const parsed = parseCommitted(str(stored));
    if (parsed) this.#committed.set(ck, Math.max(floor, parsed.offset));
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

  /** A stored commit below what this engine saw (the store rolled back) is raised again. */
  async #reconcile(group: string, field: string, stored: CommittedOffset | null): Promise<CommittedOffset | null> {
    const core = this.#core;
    const ck = `${group}\u0000${field}`;
    const seen = this.#committed.get(ck);
    if (seen === undefined || (stored && stored.offset >= seen)) {
      if (stored) this.#committed.set(ck, stored.offset);
      return stored;
    }
    const committedAt = Date.now();
    await core.call({ group }, () => SCRIPTS.commitOffset.run(core.client, [core.keys.groupOffsets(group)], [field, seen, committedAt, stored?.metadata ?? "", "1"]));
    return { offset: seen, metadata: stored?.metadata ?? "", committedAt };
  }
}

function parseCommitted(raw: string): CommittedOffset | null {
  const a = raw.indexOf("|");
  const b = raw.indexOf("|", a + 1);
  if (a < 0 || b < 0) return null;
  return { offset: Number(raw.slice(0, a)), committedAt: Number(raw.slice(a + 1, b)), metadata: raw.slice(b + 1) };
}
