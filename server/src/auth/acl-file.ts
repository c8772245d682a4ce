/**
 * Mosquitto's `acl_file` format, parsed (docs/security.md "ACL file"):
 *
 *     # comment
 *     topic read public/#            ← before any `user` line: anonymous clients
 *     user alice
 *     topic readwrite sensors/alice/#
 *     topic deny sensors/alice/secret
 *     topic dashboards/#             ← no access word = readwrite
 *     pattern write devices/%c/status   ← every client; %c = client id, %u = user name
 *
 * - `topic [read|write|readwrite|deny] <pattern>` applies to the section it is in: the
 *   anonymous section before the first `user <name>` line, else that user's. A user's
 *   sections are merged if it appears twice.
 * - `pattern [read|write|readwrite|deny] <pattern>` applies to every client wherever it is
 *   written, after substituting `%c` and `%u`.
 * - `deny` wins over any grant, for reading and writing.
 * Bad lines are errors naming the file and line (Mosquitto 1.x skipped unknown lines
 * silently; a typo in an ACL should not go unnoticed).
 */
import { isValidTopicFilter } from "../broker/topic-filter.ts";
import { TributaryError } from "../errors.ts";

export type AclAccess = "read" | "write" | "readwrite" | "deny";

export interface AclEntry {
  readonly access: AclAccess;
  readonly pattern: string;
  readonly line: number;
}

export interface AclRules {
  readonly file: string;
  /** `topic` lines before the first `user` line. */
  readonly anonymous: readonly AclEntry[];
  readonly users: ReadonlyMap<string, readonly AclEntry[]>;
  /** `pattern` lines, in file order. */
  readonly patterns: readonly AclEntry[];
  /** Non-fatal findings to log (e.g. `%u` in a `topic` line, where it is not substituted). */
  readonly warnings: readonly string[];
}

const ACCESS = new Set<AclAccess>(["read", "write", "readwrite", "deny"]);

/** Splits off the first word (spaces or tabs): [word, rest without leading blanks]. */
function firstWord(s: string): [string, string] {
  const m = /^(\S+)[ \t]*(.*)$/.exec(s);
  return m ? [m[1]!, m[2]!] : ["", ""];
}

/** Parses an ACL file; throws TributaryError("INVALID_CONFIG") listing every bad line as `<file>:<line>: ...`. */
export function parseAcl(text: string, file: string): AclRules {
  const anonymous: AclEntry[] = [];
  const users = new Map<string, AclEntry[]>();
  const patterns: AclEntry[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  let section: AclEntry[] = anonymous;

  text.split("\n").forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) return;
    const at = `${file}:${lineNo}`;
    const [keyword, rest] = firstWord(line);

    if (keyword === "user") {
      if (rest === "") {
        problems.push(`${at}: "user" needs a user name`);
        return;
      }
      section = users.get(rest) ?? [];
      users.set(rest, section);
      return;
    }
    if (keyword !== "topic" && keyword !== "pattern") {
      problems.push(`${at}: unknown keyword "${keyword}"; expected "user <name>", "topic [read|write|readwrite|deny] <pattern>" or "pattern [read|write|readwrite|deny] <pattern>"`);
      return;
    }
    if (rest === "") {
      problems.push(`${at}: "${keyword}" needs a topic pattern`);
      return;
    }
    const [word, after] = firstWord(rest);
    let access: AclAccess = "readwrite";
    let pattern = rest;
    if (after !== "") {
      if (!ACCESS.has(word as AclAccess)) {
        problems.push(`${at}: unknown access "${word}"; expected read, write, readwrite or deny before the pattern`);
        return;
      }
      access = word as AclAccess;
      pattern = after;
    } else if (ACCESS.has(word as AclAccess)) {
      problems.push(`${at}: "${keyword} ${word}" needs a topic pattern after the access`);
      return;
    }
    if (!isValidTopicFilter(pattern)) {
      problems.push(`${at}: "${pattern}" is not a valid MQTT topic pattern (a level is either text, "+", or a final "#")`);
      return;
    }
    const entry: AclEntry = { access, pattern, line: lineNo };
    if (keyword === "pattern") patterns.push(entry);
    else {
      if (/%[cu]/.test(pattern)) warnings.push(`${at}: %c/%u are substituted only in "pattern" lines; this "topic" line means the literal text`);
      section.push(entry);
    }
  });

  if (problems.length > 0) {
    throw new TributaryError("INVALID_CONFIG", `invalid ACL file ${file} (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${problems.map((p) => `  - ${p}`).join("\n")}`, { file, problems });
  }
  return { file, anonymous, users, patterns, warnings };
}
