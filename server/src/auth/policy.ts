/**
 * A Policy is what one identity may do, compiled once (from JWT claims, from the ACL file
 * lines that apply to a user and client id, or one of the fixed policies below) and
 * evaluated by the authorizer. Pure data + pure functions; no I/O.
 *
 * Topic rules are MQTT topic patterns (wildcards `+`/`#`, see broker/topic-filter.ts):
 * - a topic name is allowed when some `allow` pattern matches it (or `all`) and no `deny`
 *   pattern matches it;
 * - a subscription filter is allowed when some `allow` pattern covers it (every topic the
 *   filter can match is matched by that one pattern; or `all`) and no `deny` pattern
 *   overlaps it (no topic is matched by both). So `sensor-data/#` allows subscribing to
 *   `sensor-data/+/temp` but `sensor-data/+` does not allow `sensor-data/#`.
 * Patterns follow MQTT's `$` rule: `#` and `+/…` never match `$SYS/…`; only `all` does.
 */
import { TopicFilter, filterCovers, filtersOverlap, isValidTopicFilter } from "../broker/topic-filter.ts";

export interface TopicRules {
  /** Every topic, `$`-topics included, that no `deny` pattern matches. */
  readonly all: boolean;
  readonly allow: readonly TopicFilter[];
  readonly deny: readonly TopicFilter[];
}

export interface GroupRules {
  /** Any consumer group (internal groups excepted: nobody joins those). */
  readonly all: boolean;
  readonly names: ReadonlySet<string>;
  /** From entries ending in `*`: `billing-*` allows every group starting with `billing-`. */
  readonly prefixes: readonly string[];
}

export interface Policy {
  /** The admin surface (topic create/delete/config, group reset, cluster) and read access to internal topics; implies every other permission except writing internal topics. */
  readonly admin: boolean;
  readonly publish: TopicRules;
  readonly subscribe: TopicRules;
  /**
   * Presence (being present on a log topic and reading who is): `"subscribe"` = on every
   * log topic the identity may read whole (`<topic>/#` allowed by `subscribe`); rules =
   * on log topics whose MQTT first level these patterns match (`room-42`, `+`).
   */
  readonly presence: TopicRules | "subscribe";
  readonly groups: GroupRules;
}

export const NO_TOPICS: TopicRules = Object.freeze({ all: false, allow: [], deny: [] });
export const ALL_TOPICS: TopicRules = Object.freeze({ all: true, allow: [], deny: [] });
export const NO_GROUPS: GroupRules = Object.freeze({ all: false, names: new Set<string>(), prefixes: [] });
export const ALL_GROUPS: GroupRules = Object.freeze({ all: true, names: new Set<string>(), prefixes: [] });

/** Nothing at all: unknown, expired or revoked identities. */
export const DENY_ALL_POLICY: Policy = Object.freeze({ admin: false, publish: NO_TOPICS, subscribe: NO_TOPICS, presence: NO_TOPICS, groups: NO_GROUPS });

/** Everything, admin included: anonymous clients of a node with no authentication configured (loopback only). */
export const OPEN_POLICY: Policy = Object.freeze({ admin: true, publish: ALL_TOPICS, subscribe: ALL_TOPICS, presence: "subscribe", groups: ALL_GROUPS });

/** Publish and subscribe anywhere, any group, presence where readable; not admin. Like Mosquitto with a password file and no ACL file. */
export const PUBSUB_POLICY: Policy = Object.freeze({ admin: false, publish: ALL_TOPICS, subscribe: ALL_TOPICS, presence: "subscribe", groups: ALL_GROUPS });

/** Thrown by topicRules for a pattern that is not a valid MQTT topic filter; callers turn it into their own error (file line, claim name). */
export class InvalidPatternError extends Error {
  override readonly name = "InvalidPatternError";
  readonly pattern: string;
  constructor(pattern: string) {
    super(`"${pattern}" is not a valid MQTT topic pattern (a level is either text, "+", or a final "#")`);
    this.pattern = pattern;
  }
}

/** Compiles pattern lists into TopicRules; throws InvalidPatternError for an invalid pattern. */
export function topicRules(allow: readonly string[], deny: readonly string[] = []): TopicRules {
  const compile = (p: string) => {
    if (!isValidTopicFilter(p)) throw new InvalidPatternError(p);
    return new TopicFilter(p);
  };
  return Object.freeze({ all: false, allow: allow.map(compile), deny: deny.map(compile) });
}

/** Compiles group names; an entry ending in `*` is a prefix, `*` alone is any group. */
export function groupRules(entries: readonly string[]): GroupRules {
  if (entries.includes("*")) return ALL_GROUPS;
  const names = new Set<string>();
  const prefixes: string[] = [];
  for (const e of entries) {
    if (e.endsWith("*")) prefixes.push(e.slice(0, -1));
    else names.add(e);
  }
  return Object.freeze({ all: false, names, prefixes });
}

/** Is MQTT topic name `topic` allowed by `rules`? */
export function topicAllowed(rules: TopicRules, topic: string): boolean {
  for (const d of rules.deny) if (d.matches(topic)) return false;
  if (rules.all) return true;
  for (const a of rules.allow) if (a.matches(topic)) return true;
  return false;
}

/** Is every topic `filter` can match allowed by `rules` (covered by one allow pattern, overlapping no deny pattern)? */
export function filterAllowed(rules: TopicRules, filter: TopicFilter): boolean {
  for (const d of rules.deny) if (filtersOverlap(d, filter)) return false;
  if (rules.all) return true;
  for (const a of rules.allow) if (filterCovers(a, filter)) return true;
  return false;
}

export function groupAllowed(rules: GroupRules, group: string): boolean {
  if (rules.all || rules.names.has(group)) return true;
  for (const p of rules.prefixes) if (group.startsWith(p)) return true;
  return false;
}
