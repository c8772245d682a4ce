/**
 * The JWT claims Tributary reads, and their compilation into a Policy
 * (docs/security.md "Token claims"). Names follow EMQX's JWT ACL claim and Centrifugo's
 * connection token, so existing token issuers need little change:
 *
 * | claim      | type                                   | meaning |
 * |------------|----------------------------------------|---------|
 * | `sub`      | string, required                       | who: shown in presence (`user`) and logs |
 * | `exp`      | NumericDate                            | expiry; enforced at connect and while connected |
 * | `nbf`, `iat`, `aud`, `iss`, `jti` | standard           | `nbf` always enforced, `aud`/`iss` when configured |
 * | `acl`      | `{"pub": [...], "sub": [...], "all": [...]}` | MQTT topic patterns to publish / subscribe / both (EMQX's format) |
 * | `groups`   | string[]                               | consumer groups it may join: names, `prefix-*`, or `*` |
 * | `presence` | `true` or string[]                     | presence on every topic it may read whole, or on topics whose name these patterns match |
 * | `admin`    | boolean                                | the admin surface and read access to internal topics |
 *
 * Patterns may use `${clientid}` and `${username}` (EMQX's placeholders; `${username}` is
 * `sub`): a pattern whose value is unknown or contains `+`, `#` or `/` grants nothing.
 * A claim of the wrong type makes the whole token invalid (never silently ignored).
 */
import type { JWTPayload } from "jose";
import { isValidTopicFilter } from "../broker/topic-filter.ts";
import { TributaryError } from "../errors.ts";
import { InvalidPatternError, NO_GROUPS, groupRules, topicRules, type Policy, type TopicRules } from "./policy.ts";

export interface TopicAclClaim {
  /** Patterns the holder may publish to. */
  pub?: string[];
  /** Patterns the holder may subscribe to (filters within them). */
  sub?: string[];
  /** Patterns for both. */
  all?: string[];
}

export interface TributaryClaims extends JWTPayload {
  sub: string;
  acl?: TopicAclClaim;
  groups?: string[];
  presence?: boolean | string[];
  admin?: boolean;
}

/** Most patterns one token may carry (each permission check walks them once per new topic). */
export const MAX_TOKEN_PATTERNS = 1000;

const PLACEHOLDER = /\$\{(clientid|username)\}/g;

function invalid(message: string): TributaryError {
  return new TributaryError("UNAUTHORIZED", `invalid token: ${message}`, { reason: "claims" });
}

function stringList(value: unknown, claim: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw invalid(`claim "${claim}" must be a list of strings`);
  return value as string[];
}

/** Substitutes `${clientid}`/`${username}`; null when a needed value is missing or unsafe in a topic level. */
function substitute(pattern: string, clientId: string | null, username: string): string | null {
  if (!pattern.includes("${")) return pattern;
  let ok = true;
  const out = pattern.replace(PLACEHOLDER, (_, name: string) => {
    const value = name === "clientid" ? clientId : username;
    if (value === null || value === "" || /[+#/]/.test(value)) ok = false;
    return value ?? "";
  });
  return ok ? out : null;
}

function compile(patterns: string[], claim: string, clientId: string | null, username: string): TopicRules {
  const resolved = patterns.map((p) => substitute(p, clientId, username)).filter((p): p is string => p !== null);
  try {
    return topicRules(resolved);
  } catch (err) {
    if (err instanceof InvalidPatternError) throw invalid(`claim "${claim}": ${err.message}`);
    throw err;
  }
}

/**
 * Checks the claim types of a verified payload and compiles its Policy for a connection
 * with client id `clientId`. Throws TributaryError("UNAUTHORIZED") naming the bad claim.
 */
export function policyFromClaims(payload: JWTPayload, clientId: string | null): Policy {
  const sub = payload.sub;
  if (typeof sub !== "string" || sub === "") throw invalid('claim "sub" (who the token is for) is required and must be a non-empty string');
  const raw = payload as Record<string, unknown>;

  let pub: string[] = [];
  let subscribe: string[] = [];
  if (raw.acl !== undefined) {
    const acl = raw.acl;
    if (Array.isArray(acl)) throw invalid('claim "acl" as a list of rules is not supported; use {"pub": [...], "sub": [...], "all": [...]}');
    if (acl === null || typeof acl !== "object") throw invalid('claim "acl" must be an object {"pub": [...], "sub": [...], "all": [...]}');
    const unknown = Object.keys(acl).filter((k) => k !== "pub" && k !== "sub" && k !== "all");
    if (unknown.length > 0) throw invalid(`claim "acl" has unknown field(s) ${unknown.map((k) => `"${k}"`).join(", ")}; expected pub, sub, all`);
    const { pub: p, sub: s, all: a } = acl as Record<string, unknown>;
    const all = stringList(a, "acl.all");
    pub = [...stringList(p, "acl.pub"), ...all];
    subscribe = [...stringList(s, "acl.sub"), ...all];
  }
  const groups = stringList(raw.groups, "groups");

  let presence: Policy["presence"] = "subscribe";
  let presencePatterns: string[] = [];
  if (raw.presence === undefined || raw.presence === false) presence = topicRules([]);
  else if (raw.presence !== true) presencePatterns = stringList(raw.presence, "presence");

  if (raw.admin !== undefined && typeof raw.admin !== "boolean") throw invalid('claim "admin" must be a boolean');
  const total = pub.length + subscribe.length + groups.length + presencePatterns.length;
  if (total > MAX_TOKEN_PATTERNS) throw invalid(`${total} patterns and groups; at most ${MAX_TOKEN_PATTERNS}`);

  if (presencePatterns.length > 0) presence = compile(presencePatterns, "presence", clientId, sub);
  return Object.freeze({
    admin: raw.admin === true,
    publish: compile(pub, "acl.pub", clientId, sub),
    subscribe: compile(subscribe, "acl.sub", clientId, sub),
    presence,
    groups: groups.length > 0 ? groupRules(groups) : NO_GROUPS,
  });
}

export interface ClaimOptions {
  sub: string;
  pub?: string[];
  subscribe?: string[];
  groups?: string[];
  presence?: boolean;
  admin?: boolean;
}

/** The claims `tributary token create` puts in a token (exp/aud/iss are set by the signer). */
export function buildClaims(o: ClaimOptions): TributaryClaims {
  const claims: TributaryClaims = { sub: o.sub };
  const acl: TopicAclClaim = {};
  if (o.pub && o.pub.length > 0) acl.pub = o.pub;
  if (o.subscribe && o.subscribe.length > 0) acl.sub = o.subscribe;
  if (acl.pub || acl.sub) claims.acl = acl;
  if (o.groups && o.groups.length > 0) claims.groups = o.groups;
  if (o.presence) claims.presence = true;
  if (o.admin) claims.admin = true;
  for (const p of [...(o.pub ?? []), ...(o.subscribe ?? [])]) {
    if (!isValidTopicFilter(p)) throw new TributaryError("BAD_REQUEST", new InvalidPatternError(p).message, { pattern: p });
  }
  if (o.sub === "") throw new TributaryError("BAD_REQUEST", "--sub: the subject must not be empty");
  return claims;
}
