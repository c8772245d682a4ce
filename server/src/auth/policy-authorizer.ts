import { TopicFilter, isValidTopicFilter, isValidTopicName, parseSharedFilter } from "../broker/topic-filter.ts";
import { isInternalGroup } from "../groups/internal-groups.ts";
import type { Authorizer } from "./authorizer.ts";
import { DEFAULT_DECISION_CACHE_LIMITS, DecisionCache, type DecisionCacheLimits } from "./decision-cache.ts";
import type { Identity } from "./identity.ts";
import { DENY_ALL_POLICY, filterAllowed, groupAllowed, topicAllowed, type Policy } from "./policy.ts";
import { isInternalTopic, keyAsMqttTopic, logTopicOfMqtt, mqttLevelOf, wholeTopicFilter } from "./topic-space.ts";

/** The policy of an identity right now (after reloads); DENY_ALL_POLICY for one that is unknown or revoked. */
export type PolicyResolver = (identity: Identity) => Policy;

export interface PolicyAuthorizerOptions {
  /** Bounds of each per-identity decision cache (one per kind of question). */
  cache?: DecisionCacheLimits;
  /** Clock for expiry, ms since the epoch (tests). */
  now?: () => number;
}

/** Per identity: the resolved policy and its decisions, valid while `generation` is current. */
interface IdentityState {
  generation: number;
  policy: Policy;
  publish: DecisionCache | null;
  subscribe: DecisionCache | null;
  consume: DecisionCache | null;
  /** Log topic → may write it whole. */
  produce: DecisionCache | null;
  presence: DecisionCache | null;
  groups: DecisionCache | null;
}

type CacheKind = "publish" | "subscribe" | "consume" | "produce" | "presence" | "groups";

/**
 * Authorizer over compiled Policies (policy.ts), with decisions cached per identity and
 * topic in bounded DecisionCaches held in a WeakMap keyed by the Identity object: they
 * live as long as the connection keeps its identity, and no longer.
 *
 * Revocation reaches the cache two ways: expiry is checked against the clock on every
 * call before any cached decision is used; `invalidate()` (AuthService calls it on every
 * reload of the ACL, password or key files) bumps a generation, and an identity whose
 * state is older re-resolves its policy and starts with empty caches on its next check.
 */
export class PolicyAuthorizer implements Authorizer {
  readonly #resolve: PolicyResolver;
  readonly #limits: DecisionCacheLimits;
  readonly #now: () => number;
  readonly #states = new WeakMap<Identity, IdentityState>();
  #generation = 0;

  constructor(resolve: PolicyResolver, options: PolicyAuthorizerOptions = {}) {
    this.#resolve = resolve;
    this.#limits = options.cache ?? DEFAULT_DECISION_CACHE_LIMITS;
    this.#now = options.now ?? Date.now;
  }

  /** Forgets every cached policy and decision (after a reload). */
  invalidate(): void {
    this.#generation++;
  }

  canPublish(identity: Identity, mqttTopic: string): boolean {
    const state = this.#state(identity);
    if (state === null) return false;
    return this.#cached(state, "publish", mqttTopic, () => {
      if (!isValidTopicName(mqttTopic) || logTopicOfMqtt(mqttTopic) === null) return false;
      return state.policy.admin || topicAllowed(state.policy.publish, mqttTopic);
    });
  }

  canProduce(identity: Identity, logTopic: string, key: string | Uint8Array | null): boolean {
    const state = this.#state(identity);
    if (state === null) return false;
    const whole = this.#cached(state, "produce", logTopic, () => {
      if (isInternalTopic(logTopic)) return false;
      if (state.policy.admin) return true;
      const level = mqttLevelOf(logTopic);
      return level !== null && filterAllowed(state.policy.publish, wholeTopicFilter(level));
    });
    if (whole) return true;
    if (isInternalTopic(logTopic)) return false;
    const mqttTopic = keyAsMqttTopic(logTopic, key);
    return mqttTopic !== null && this.canPublish(identity, mqttTopic);
  }

  canSubscribe(identity: Identity, mqttFilter: string): boolean {
    const state = this.#state(identity);
    if (state === null) return false;
    return this.#cached(state, "subscribe", mqttFilter, () => {
      const shared = parseSharedFilter(mqttFilter); // `$share/<group>/<filter>`: the permission is the inner filter's
      if (shared === "invalid") return false;
      const filter = shared === null ? mqttFilter : shared.filter;
      if (!isValidTopicFilter(filter)) return false;
      return state.policy.admin || filterAllowed(state.policy.subscribe, new TopicFilter(filter));
    });
  }

  canConsume(identity: Identity, topicOrFilter: string): boolean {
    const state = this.#state(identity);
    if (state === null) return false;
    return this.#cached(state, "consume", topicOrFilter, () => {
      const slash = topicOrFilter.indexOf("/");
      const logTopic = slash === -1 ? topicOrFilter : topicOrFilter.slice(0, slash);
      if (logTopic.length === 0 || logTopic.includes("+") || logTopic.includes("#")) return false;
      if (slash !== -1 && !isValidTopicFilter(topicOrFilter)) return false;
      if (isInternalTopic(logTopic) || state.policy.admin) return state.policy.admin;
      const level = mqttLevelOf(logTopic);
      if (level === null) return false;
      // A key filter of a plain-named topic selects exactly the MQTT topics it matches; any
      // other read (every record, or keys of an escaped name) needs the whole topic.
      const filter = slash !== -1 && level === logTopic ? new TopicFilter(topicOrFilter) : wholeTopicFilter(level);
      return filterAllowed(state.policy.subscribe, filter);
    });
  }

  canJoinGroup(identity: Identity, group: string): boolean {
    const state = this.#state(identity);
    if (state === null) return false;
    return this.#cached(state, "groups", group, () => {
      if (group.length === 0 || isInternalGroup(group)) return false;
      return state.policy.admin || groupAllowed(state.policy.groups, group);
    });
  }

  canPresence(identity: Identity, logTopic: string): boolean {
    const state = this.#state(identity);
    if (state === null) return false;
    return this.#cached(state, "presence", logTopic, () => {
      if (isInternalTopic(logTopic)) return false;
      if (state.policy.admin) return true;
      const level = mqttLevelOf(logTopic);
      if (level === null) return false;
      const presence = state.policy.presence;
      if (presence === "subscribe") return filterAllowed(state.policy.subscribe, wholeTopicFilter(level));
      return isValidTopicName(level) && topicAllowed(presence, level);
    });
  }

  canManageTopic(identity: Identity, logTopic: string): boolean {
    const state = this.#state(identity);
    return state !== null && state.policy.admin && !isInternalTopic(logTopic);
  }

  isAdmin(identity: Identity): boolean {
    const state = this.#state(identity);
    return state !== null && state.policy.admin;
  }

  /** The current state of `identity`; null once it has expired. */
  #state(identity: Identity): IdentityState | null {
    if (identity.expiresAt !== null && this.#now() >= identity.expiresAt) return null;
    let state = this.#states.get(identity);
    if (state === undefined || state.generation !== this.#generation) {
      let policy: Policy;
      try {
        policy = this.#resolve(identity);
      } catch {
        policy = DENY_ALL_POLICY; // a resolver failure denies; never a throw to the caller
      }
      state = { generation: this.#generation, policy, publish: null, subscribe: null, consume: null, produce: null, presence: null, groups: null };
      this.#states.set(identity, state);
    }
    return state;
  }

  #cached(state: IdentityState, kind: CacheKind, key: string, decide: () => boolean): boolean {
    let cache = state[kind];
    const hit = cache?.get(key);
    if (hit !== undefined) return hit;
    const allowed = decide();
    cache ??= state[kind] = new DecisionCache(this.#limits);
    cache.set(key, allowed);
    return allowed;
  }
}
