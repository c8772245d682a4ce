/**
 * MQTT topic names and filters: validation and matching (MQTT 3.1.1 §4.7, 5.0 §4.7), the
 * one matcher of the node: MQTT subscriptions match topic names with it, and WebSocket
 * subscriptions with a filter (`sensor-data/+/temp`) match record keys with it.
 * `$`-topics are not matched by a filter starting with `#` or `+` [MQTT-4.7.2-1].
 */

/** A topic name a client may PUBLISH to: non-empty, no wildcards, no NUL, valid UTF-8 (no U+FFFD from a bad decode). */
export function isValidTopicName(topic: string): boolean {
  if (topic.length === 0 || topic.length > 65535) return false;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === 0x23 /* # */ || c === 0x2b /* + */ || c === 0 || c === 0xfffd) return false;
  }
  return true;
}

/** A topic filter a client may SUBSCRIBE to: `#` last and alone in its level, `+` alone in its level. */
export function isValidTopicFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 65535) return false;
  const levels = filter.split("/");
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes("\u0000") || level.includes("\ufffd")) return false;
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) return false;
    if (level.includes("+") && level !== "+") return false;
  }
  return true;
}

/** A parsed filter, matched without allocation against topic names. */
export class TopicFilter {
  readonly filter: string;
  readonly levels: string[];
  /** First level has no wildcard: the filter names exactly one log topic. */
  readonly literalFirstLevel: boolean;
  readonly #exact: boolean;

  constructor(filter: string) {
    this.filter = filter;
    this.levels = filter.split("/");
    this.literalFirstLevel = this.levels[0] !== "+" && this.levels[0] !== "#";
    this.#exact = !filter.includes("+") && !filter.includes("#");
  }

  matches(topic: string): boolean {
    if (this.#exact) return topic === this.filter;
    if (!this.literalFirstLevel && topic.charCodeAt(0) === 0x24 /* $ */) return false;
    const levels = this.levels;
    let start = 0;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      if (level === "#") return true; // also matches the parent level (`a/#` matches `a`)
      if (start > topic.length) return false;
      let end = topic.indexOf("/", start);
      if (end === -1) end = topic.length;
      if (level !== "+" && (end - start !== level.length || !topic.startsWith(level, start))) return false;
      start = end + 1;
      if (i === levels.length - 1) return start > topic.length;
      if (start > topic.length && levels[i + 1] === "#") return true;
    }
    return false;
  }
}

/** Splits `$share/<group>/<filter>`; null when not a shared subscription; "invalid" when malformed. */
export function parseSharedFilter(filter: string): { group: string; filter: string } | null | "invalid" {
  if (!filter.startsWith("$share/")) return null;
  const rest = filter.slice(7);
  const slash = rest.indexOf("/");
  if (slash <= 0) return "invalid";
  const group = rest.slice(0, slash);
  const inner = rest.slice(slash + 1);
  if (group.includes("+") || group.includes("#") || !isValidTopicFilter(inner)) return "invalid";
  return { group, filter: inner };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Matches a record key read as an MQTT topic name; a null or non-UTF-8 key never matches. */
export type KeyFilter = (key: Uint8Array | null) => boolean;

export function keyFilter(filter: TopicFilter): KeyFilter {
  return (key) => {
    if (key === null) return false;
    let text: string;
    try {
      text = utf8.decode(key);
    } catch {
      return false; // not UTF-8: not an MQTT topic name, so no filter matches it
    }
    return filter.matches(text);
  };
}
