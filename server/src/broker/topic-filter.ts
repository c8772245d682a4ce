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

/**
 * True when every topic name `filter` can match is also matched by `pattern` (both valid
 * filters, see isValidTopicFilter): the "filter within pattern" check of subscription
 * permissions. Exact: it agrees with TopicFilter.matches over all topic names, including
 * `a/#` matching its parent `a` and `$`-topics never matching a wildcard first level.
 * Examples: `sensor-data/#` covers `sensor-data/+/temp` and `sensor-data`;
 * `sensor-data/+` does not cover `sensor-data/#`; `#` does not cover `$SYS/#`.
 */
export function filterCovers(pattern: TopicFilter, filter: TopicFilter): boolean {
  const p = pattern.levels;
  const f = filter.levels;
  // `$`-topics: the filter can match them only with a literal `$…` first level, which a wildcard first level never matches.
  if (filter.literalFirstLevel && f[0]!.charCodeAt(0) === 0x24 && !pattern.literalFirstLevel) return false;
  for (let i = 0; ; i++) {
    if (i < p.length && p[i] === "#") return true; // matches any rest, including none (`a/#` matches `a`)
    if (i === p.length || i === f.length) return i === p.length && i === f.length;
    const pl = p[i]!;
    const fl = f[i]!;
    // The filter matches every deeper topic and its parent; only a pattern rest of `#` matches
    // all of those, or a rest of `+/#` where the parent is not a topic name: at the first level,
    // or below an empty first level (the parent would be the empty string).
    if (fl === "#") return (i === 0 || (i === 1 && f[0] === "")) && pl === "+" && p.length === i + 2 && p[i + 1] === "#";
    if (pl === "+") continue;
    if (fl === "+" || fl !== pl) return false;
  }
}

/**
 * True when some topic name is matched by both filters (both valid). Used to refuse a
 * subscription that could reach a denied topic. Exact in the same sense as filterCovers.
 */
export function filtersOverlap(a: TopicFilter, b: TopicFilter): boolean {
  const x = a.levels;
  const y = b.levels;
  // A literal `$…` first level meets only a literal first level (wildcards never match `$`-topics).
  if (a.literalFirstLevel !== b.literalFirstLevel) {
    const literal = a.literalFirstLevel ? x[0]! : y[0]!;
    if (literal.charCodeAt(0) === 0x24) return false;
  }
  for (let i = 0; ; i++) {
    if ((i < x.length && x[i] === "#") || (i < y.length && y[i] === "#")) {
      // `a/#` also matches its parent `a`; when the only common topic would be that parent and
      // it is the empty string (`/#` against `+`), it is not a topic name.
      const parentOnly = i === x.length || i === y.length;
      return !(parentOnly && i === 1 && (x[0] === "" || y[0] === ""));
    }
    if (i === x.length || i === y.length) return i === x.length && i === y.length;
    const xl = x[i]!;
    const yl = y[i]!;
    if (xl !== "+" && yl !== "+" && xl !== yl) return false;
  }
}
