import { isValidTopicFilter } from "../broker/topic-filter.ts";
import type { AclEntry, AclRules } from "./acl-file.ts";
import { ALL_GROUPS, DENY_ALL_POLICY, topicRules, type Policy } from "./policy.ts";

/** A user name or client id that would change a pattern's meaning if substituted. */
const UNSAFE = /[+#/]/;

/**
 * The Policy the ACL file gives a client: its section (the anonymous one when `username`
 * is null) plus every `pattern` line with `%u` and `%c` substituted, Mosquitto's rules:
 * - a pattern with `%u` does not apply to a client without user name; one with `%c` not to
 *   a client without client id (WebSocket/HTTP clients that gave none);
 * - if a pattern line needs a user name or client id containing `+`, `#` or `/`, the
 *   client gets nothing at all (such a value could widen the pattern, e.g. client id `#`);
 * - `read`/`readwrite` grant subscribing (filters within the pattern) and presence on
 *   topics readable whole; `write`/`readwrite` grant publishing; `deny` refuses both;
 * - any consumer group may be joined (the format has no notion of groups); never admin.
 */
export function aclPolicy(rules: AclRules, username: string | null, clientId: string | null): Policy {
  const entries: AclEntry[] = [...(username === null ? rules.anonymous : (rules.users.get(username) ?? []))];
  for (const p of rules.patterns) {
    const needsUser = p.pattern.includes("%u");
    const needsClient = p.pattern.includes("%c");
    if ((needsUser && username === null) || (needsClient && clientId === null)) continue;
    if ((needsUser && UNSAFE.test(username!)) || (needsClient && UNSAFE.test(clientId!))) return DENY_ALL_POLICY;
    const pattern = p.pattern.replace(/%([cu])/g, (_, k: string) => (k === "u" ? username! : clientId!)); // one pass: a value is never substituted again
    if (isValidTopicFilter(pattern)) entries.push({ ...p, pattern });
  }
  const of = (...access: string[]) => entries.filter((e) => access.includes(e.access)).map((e) => e.pattern);
  const deny = of("deny");
  return Object.freeze({
    admin: false,
    publish: topicRules(of("write", "readwrite"), deny),
    subscribe: topicRules(of("read", "readwrite"), deny),
    presence: "subscribe",
    groups: ALL_GROUPS,
  });
}
