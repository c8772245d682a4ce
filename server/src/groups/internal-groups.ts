/**
 * Groups the node uses for its own bookkeeping, not consumer groups anyone joins: the
 * positions of persistent MQTT sessions (`mqtt.session.<clientId>`, see
 * gateway/mqtt/session/session-store.ts). Admin listings hide them unless asked
 * (`GET /groups?internal=true`, `tributary groups list --internal`); describe and
 * reset-offsets still accept their names.
 */
export const INTERNAL_GROUP_PREFIXES: readonly string[] = ["mqtt.session."];

export function isInternalGroup(group: string): boolean {
  return INTERNAL_GROUP_PREFIXES.some((prefix) => group.startsWith(prefix));
}
