import { TributaryError } from "../../errors.ts";
import { TOPIC_NAME_PATTERN } from "../../broker/broker.ts";
import { keyFilter, TopicFilter, type KeyFilter } from "../../broker/topic-filter.ts";

export type { KeyFilter };

/**
 * What a subscription's `topic` names: a log topic, optionally narrowed by an MQTT-style
 * filter on record keys (DESIGN.md "MQTT ↔ log mapping"). The first level names the log
 * topic; a filter with more levels matches the record KEY read as an MQTT topic:
 * `sensor-data/+/temp` tails `sensor-data` and keeps records whose key is
 * `sensor-data/<one level>/temp`. `+` matches exactly one level, `#` (last level only)
 * matches any number of levels including none (`a/#` matches `a`). A plain name
 * (`sensor-data`) delivers every record of the topic, whatever its key. Records with a
 * null key, or a key that is not UTF-8, never match a filter.
 */
export interface TopicSelector {
  /** The log topic. */
  topic: string;
  /** Null = every record. */
  filter: KeyFilter | null;
}


export function parseTopicSelector(spec: string): TopicSelector {
  const levels = spec.split("/");
  const topic = levels[0]!;
  if (!TOPIC_NAME_PATTERN.test(topic)) {
    if (topic === "+" || topic === "#") {
      throw new TributaryError("BAD_REQUEST", `the first level of "${spec}" must name a topic, not a wildcard`, { topic: spec });
    }
    throw new TributaryError("INVALID_TOPIC", `"${topic}" is not a valid topic name: [a-zA-Z0-9._-]{1,249}`, { topic: spec });
  }
  if (levels.length === 1) return { topic, filter: null };
  levels.forEach((level, i) => {
    if (level === "#" && i !== levels.length - 1) {
      throw new TributaryError("BAD_REQUEST", `"#" must be the last level of the filter "${spec}"`, { topic: spec });
    }
    if (level !== "+" && level !== "#" && (level.includes("+") || level.includes("#"))) {
      throw new TributaryError("BAD_REQUEST", `a wildcard must fill a whole level in "${spec}"`, { topic: spec });
    }
  });
  return { topic, filter: keyFilter(new TopicFilter(spec)) };
}
