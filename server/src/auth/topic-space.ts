/**
 * Where log topics sit in the MQTT topic space that permissions are written in.
 *
 * Grants are MQTT topic patterns; the first level of an MQTT topic names the log topic
 * (docs/mqtt.md "Topic mapping"), and the whole MQTT topic is the record key. So the
 * records of log topic `sensor-data` are the MQTT topics `sensor-data` and
 * `sensor-data/...`, and "all of log topic T" is the filter `<level of T>/#`.
 *
 * A log topic whose name starts with `_` is named in patterns by the MQTT level it escapes
 * (`__24SYS` is `$SYS`, `_my_20topic` is `my topic`). A log topic that is not the image of
 * any MQTT level is outside the pattern space and only `admin` reaches it. The node's
 * internal topics (`__mqtt.sessions`, `__mqtt.retained`: the one rule is
 * broker/internal-topics.ts) are among those: admin may read them, nobody may write,
 * create or delete them from outside.
 */
import { isInternalTopic } from "../broker/internal-topics.ts";
import { TopicFilter, isValidTopicName } from "../broker/topic-filter.ts";
import { levelForLogTopic, logTopicForLevel } from "../gateway/mqtt/topic-mapping.ts";

/**
 * The MQTT first level that log topic `logTopic` holds, or null when no MQTT topic maps to
 * it (internal topics, non-canonical escapes such as `_x`, levels that could not be an
 * MQTT level because they contain `/`, `+` or `#`).
 */
export function mqttLevelOf(logTopic: string): string | null {
  const level = levelForLogTopic(logTopic);
  if (level === null) return null;
  if (level.includes("/") || level.includes("+") || level.includes("#") || level.includes("\u0000")) return null;
  return logTopicForLevel(level) === logTopic ? level : null;
}

/** Internal log topics: the node's one rule (broker/internal-topics.ts), re-exported for the auth layer. */
export { isInternalTopic };

/** The log topic an MQTT topic name or filter lives in (its first level, escaped); null when the name is too long to map. */
export function logTopicOfMqtt(mqttTopicOrFilter: string): string | null {
  const slash = mqttTopicOrFilter.indexOf("/");
  return logTopicForLevel(slash === -1 ? mqttTopicOrFilter : mqttTopicOrFilter.slice(0, slash));
}

/** The filter naming every record of the log topic whose MQTT level is `level`: `<level>/#`. */
export function wholeTopicFilter(level: string): TopicFilter {
  return new TopicFilter(`${level}/#`);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A record key read as the MQTT topic it stands for within `logTopic`: the key as text
 * when it is a valid MQTT topic name whose first level maps to `logTopic`, else null (a
 * null key, binary bytes, or a key naming another topic's space).
 */
export function keyAsMqttTopic(logTopic: string, key: string | Uint8Array | null): string | null {
  if (key === null) return null;
  let text: string;
  if (typeof key === "string") text = key;
  else {
    try {
      text = utf8.decode(key);
    } catch {
      return null;
    }
  }
  if (!isValidTopicName(text)) return null;
  return logTopicOfMqtt(text) === logTopic ? text : null;
}
