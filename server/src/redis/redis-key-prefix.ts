/**
 * The key prefix every Redis user of a node shares (the `prefix` query parameter of the
 * Redis URL). Nodes, engines and CLIs with the same prefix on the same Redis see the same
 * data: the log engine's keys (log/redis/redis-keys.ts) and the cluster's
 * `{<prefix>:cluster}:*` keys (registry, leases, inboxes) all start with it.
 */
export const DEFAULT_KEY_PREFIX = "trib";

/** The prefix a parsed URL (or engine options) names, else the default. */
export function keyPrefixOf(options: { keyPrefix?: string }): string {
  return options.keyPrefix ?? DEFAULT_KEY_PREFIX;
}
