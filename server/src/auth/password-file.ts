/**
 * The MQTT password file, Mosquitto's format: one `user:hash` per line; blank lines and
 * lines starting with `#` are ignored. The user name is everything before the first `:`.
 * Hash formats: see password-hash.ts (argon2id written; Mosquitto's `$7$`/`$6$` read).
 *
 *     # tributary passwd /etc/tributary/passwd alice
 *     alice:$argon2id$v=19$m=19456,t=2,p=1$Vh0x…$Wq3…
 *     bob:$7$101$x3KI6kJ6h4qUFVio$3YzPZkFR…==
 *
 * Pure text functions here (parse, update); reading, watching and verifying are in
 * password-file-authenticator.ts.
 */
import { TributaryError } from "../errors.ts";
import { hashFormat, type HashFormat } from "./password-hash.ts";

export interface PasswordEntry {
  readonly user: string;
  readonly hash: string;
  readonly format: HashFormat;
  readonly line: number;
}

export interface ParsedPasswordFile {
  readonly users: ReadonlyMap<string, PasswordEntry>;
  /** Non-fatal findings to log: weak `$6$` hashes. */
  readonly warnings: readonly string[];
}

/** Checks a user name for the file: non-empty, no `:`, no line breaks, no leading `#`. */
export function passwordUserProblem(user: string): string | null {
  if (user.length === 0) return "the user name is empty";
  if (user.includes(":")) return `the user name "${user}" contains ":" (the file's separator)`;
  if (/[\r\n]/.test(user)) return "the user name contains a line break";
  if (user.startsWith("#")) return `the user name "${user}" starts with "#" (a comment in the file)`;
  return null;
}

/** Parses the file; throws TributaryError("INVALID_CONFIG") listing every bad line as `<file>:<line>: ...`. */
export function parsePasswordFile(text: string, file: string): ParsedPasswordFile {
  const users = new Map<string, PasswordEntry>();
  const problems: string[] = [];
  const warnings: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.startsWith("#")) return;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      problems.push(`${file}:${lineNo}: expected "user:hash"${colon === 0 ? " (the user name is empty)" : ""}`);
      return;
    }
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1).trim();
    const format = hashFormat(hash);
    if (format === null) {
      problems.push(
        `${file}:${lineNo}: the password of user "${user}" is not a hash this node reads ($argon2id$, Mosquitto's $7$ or $6$); plain-text passwords are not accepted: set it with \`tributary passwd ${file} ${user}\``,
      );
      return;
    }
    const earlier = users.get(user);
    if (earlier) {
      problems.push(`${file}:${lineNo}: user "${user}" is already defined on line ${earlier.line}; keep one line per user`);
      return;
    }
    if (format === "sha512") warnings.push(`${file}:${lineNo}: user "${user}" has a weak $6$ (single SHA-512) hash; set the password again with \`tributary passwd ${file} ${user}\``);
    users.set(user, { user, hash, format, line: lineNo });
  });
  if (problems.length > 0) {
    throw new TributaryError("INVALID_CONFIG", `invalid password file ${file} (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${problems.map((p) => `  - ${p}`).join("\n")}`, { file, problems });
  }
  return { users, warnings };
}

/** Returns `text` with `user`'s line set to `hash` (replaced in place, or appended); other lines and comments are kept. */
export function setPasswordLine(text: string, user: string, hash: string): string {
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const at = lines.findIndex((l) => !l.startsWith("#") && l.slice(0, l.indexOf(":")) === user && l.includes(":"));
  const entry = `${user}:${hash}`;
  if (at === -1) lines.push(entry);
  else lines[at] = entry;
  return lines.join("\n") + "\n";
}

/** Returns `text` without `user`'s line, and whether there was one. */
export function deletePasswordLine(text: string, user: string): { text: string; deleted: boolean } {
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const kept = lines.filter((l) => l.startsWith("#") || !l.includes(":") || l.slice(0, l.indexOf(":")) !== user);
  return { text: kept.length === 0 ? "" : kept.join("\n") + "\n", deleted: kept.length !== lines.length };
}
