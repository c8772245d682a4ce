import { TOPIC_NAME_PATTERN } from "../../broker/broker.ts";

/**
 * MQTT topic ↔ log topic mapping (docs/mqtt.md, "Topic mapping").
 *
 * The first level of an MQTT topic names the log topic; the full MQTT topic is the
 * record key. A first level that is a valid log topic name, does not start with `_` and
 * is not made of dots only maps to itself (`sensor-data/d1/temp` → `sensor-data`).
 * Any other first level (empty as in `/a/b`, `$SYS`, `ünïcode`, `my topic`, `_x`, `..`)
 * is escaped, reversibly: `_` followed by the level's UTF-8 bytes where every byte
 * outside `[a-zA-Z0-9.-]` is written `_HH` (two upper-case hex digits).
 `$SYS` → `__24SYS`, `` (empty) → `_`, `a b` → `_a_20b`, `_x` → `__5Fx`.
 *
 * Internal log topics (`__mqtt.sessions`, `__mqtt.retained`) are never produced by this
 * rule (after the prefix, a `_` is always followed by two hex digits), so MQTT clients
 * cannot reach them.
 */

const KEEP = /^[a-zA-Z0-9.-]$/;
const HEX = "0123456789ABCDEF";
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const cache = new Map<string, string | null>();

/** First level of an MQTT topic or filter (everything before the first `/`). */
export function firstLevel(mqttTopic: string): string {
  const slash = mqttTopic.indexOf("/");
  return slash === -1 ? mqttTopic : mqttTopic.slice(0, slash);
}

/** Log topic for an MQTT first level; null when even the escaped name is too long. */
export function logTopicForLevel(level: string): string | null {
  const cached = cache.get(level);
  if (cached !== undefined) return cached;
  let result: string | null;
  if (TOPIC_NAME_PATTERN.test(level) && level[0] !== "_" && !/^\.+$/.test(level)) {
    result = level;
  } else {
    let out = "_";
    for (const byte of encoder.encode(level)) {
      const ch = String.fromCharCode(byte);
      out += byte < 0x80 && KEEP.test(ch) ? ch : "_" + HEX[byte >> 4] + HEX[byte & 15];
    }
    result = out.length <= 249 ? out : null;
  }
  if (cache.size > 10_000) cache.clear();
  cache.set(level, result);
  return result;
}

/** Log topic for a full MQTT topic name; null when the first level cannot be mapped. */
export function logTopicFor(mqttTopic: string): string | null {
  return logTopicForLevel(firstLevel(mqttTopic));
}

/** The MQTT first level a log topic stands for; null for internal topics and names this rule never produces. */
export function levelForLogTopic(logTopic: string): string | null {
  if (logTopic[0] !== "_") return logTopic;
  const bytes: number[] = [];
  for (let i = 1; i < logTopic.length; i++) {
    const ch = logTopic[i]!;
    if (ch === "_") {
      const hex = logTopic.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(ch.charCodeAt(0));
    }
  }
  try {
    return decoder.decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
}
