import { createHash } from "node:crypto";
import { firstLevel, logTopicForLevel } from "../topic-mapping.ts";

/** Characters a group name may hold besides the ones reserved for namespacing (`:`, `$`). */
const PLAIN_NAME = /^[a-zA-Z0-9._-]{1,200}$/;

function hash12(s: string): string {
  return createHash("sha1").update(s).digest("hex").slice(0, 12);
}

/**
 * The consumer group behind `$share/<share>/<filter>` (docs/mqtt.md, "Shared subscriptions"):
 *
 * - `<share>` itself when the filter is a whole log topic, `<level>/#` (it matches every
 *   MQTT topic of the log topic `<level>`): `$share/billing/orders/#` is group `billing`
 *   on topic `orders`, so an SDK client sharing the work subscribes to `orders` with
 *   `{ group: "billing" }`;
 * - `mqtt:<share>:<h>` for any narrower filter, `<h>` = first 12 hex chars of SHA-1 of the
 *   filter: an MQTT shared subscription is identified by share name AND filter, and two
 *   different filters must not split one partition set between them;
 * - `mqtt:<h(share)>:<h>` when the share name has characters a group name cannot hold.
 *
 * Returns null when the filter's first level is a wildcard (no single log topic).
 */
export function shareGroupName(share: string, filter: string): { group: string; logTopic: string } | null {
  const level = firstLevel(filter);
  if (level === "+" || level === "#") return null;
  const logTopic = logTopicForLevel(level);
  if (logTopic === null) return null;
  const plain = PLAIN_NAME.test(share);
  if (plain && filter === `${level}/#`) return { group: share, logTopic };
  return { group: `mqtt:${plain ? share : hash12(share)}:${hash12(filter)}`, logTopic };
}
