/**
 * Where membership records live. `InMemoryMembershipStore` keeps them in this process
 * (the file engine's single node). A Redis-backed store comes next for multi-node: one
 * hash per scope for the records plus one sorted set of deadlines (`lastSeen +
 * sessionTimeoutMs`) so `expire` is a single `ZRANGEBYSCORE` + removal in a Lua script;
 * the contract below is written so that implementation needs no change above it.
 *
 * Guarantees every store keeps:
 * - Records are keyed by (scope, id); `put` replaces a record atomically.
 * - `expire(now)` removes and returns exactly the members whose deadline is <= now, each
 *   once: a member removed by `remove` or `expire` is never returned again, and a member
 *   `touch`ed after its deadline passed but before `expire` ran is kept.
 */
export interface MemberRecord {
  /** Unique within the scope: the coordinator's memberId for groups, the clientId for presence. */
  id: string;
  clientId: string;
  /** Authenticated user (token subject), or null for anonymous clients. */
  user: string | null;
  /** Node whose connection holds this member. */
  node: string;
  joinedAt: number;
  lastSeen: number;
  sessionTimeoutMs: number;
}

export interface MembershipStore {
  get(scope: string, id: string): Promise<MemberRecord | null>;
  /** Inserts or replaces; resolves with the previous record, if any. */
  put(scope: string, record: MemberRecord): Promise<MemberRecord | null>;
  /** Moves `lastSeen` forward; false when the member is not there. */
  touch(scope: string, id: string, lastSeen: number): Promise<boolean>;
  remove(scope: string, id: string): Promise<MemberRecord | null>;
  /** Members of a scope, ordered by joinedAt then id. */
  list(scope: string): Promise<MemberRecord[]>;
  /** Scopes with at least one member. */
  scopes(): Promise<string[]>;
  /** Removes and returns every member whose deadline (lastSeen + sessionTimeoutMs) is <= now. */
  expire(now: number): Promise<Array<{ scope: string; member: MemberRecord }>>;
}

export class InMemoryMembershipStore implements MembershipStore {
  readonly #scopes = new Map<string, Map<string, MemberRecord>>();

  async get(scope: string, id: string): Promise<MemberRecord | null> {
    const record = this.#scopes.get(scope)?.get(id);
    return record ? { ...record } : null;
  }

  async put(scope: string, record: MemberRecord): Promise<MemberRecord | null> {
    let members = this.#scopes.get(scope);
    if (!members) this.#scopes.set(scope, (members = new Map()));
    const previous = members.get(record.id) ?? null;
    members.set(record.id, { ...record });
    return previous;
  }

  async touch(scope: string, id: string, lastSeen: number): Promise<boolean> {
    const record = this.#scopes.get(scope)?.get(id);
    if (!record) return false;
    record.lastSeen = Math.max(record.lastSeen, lastSeen);
    return true;
  }

  async remove(scope: string, id: string): Promise<MemberRecord | null> {
    const members = this.#scopes.get(scope);
    const record = members?.get(id) ?? null;
    if (members && record) {
      members.delete(id);
      if (members.size === 0) this.#scopes.delete(scope);
    }
    return record;
  }

  async list(scope: string): Promise<MemberRecord[]> {
    const members = [...(this.#scopes.get(scope)?.values() ?? [])].map((r) => ({ ...r }));
    return members.sort((a, b) => a.joinedAt - b.joinedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async scopes(): Promise<string[]> {
    return [...this.#scopes.keys()].sort();
  }

  async expire(now: number): Promise<Array<{ scope: string; member: MemberRecord }>> {
    const out: Array<{ scope: string; member: MemberRecord }> = [];
    for (const [scope, members] of this.#scopes) {
      for (const [id, record] of members) {
        if (record.lastSeen + record.sessionTimeoutMs <= now) {
          members.delete(id);
          out.push({ scope, member: record });
        }
      }
      if (members.size === 0) this.#scopes.delete(scope);
    }
    return out;
  }
}
