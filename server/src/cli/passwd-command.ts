/**
 * `tributary passwd <file> <user>`: sets (adds or replaces) a user's line in an MQTT
 * password file with an argon2id hash, like `mosquitto_passwd`. The password comes from
 * `--password`, else from stdin: typed twice without echo on a terminal, else the first
 * line of piped input. `-D` deletes the user; `-c` starts a new file. The file is
 * rewritten atomically (temp file + rename) with mode 0600 for a new file; other lines
 * and comments are kept. Messages go to stderr; stdout stays empty.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { deletePasswordLine, parsePasswordFile, passwordUserProblem, setPasswordLine } from "../auth/password-file.ts";
import { hashPassword } from "../auth/password-hash.ts";
import { TributaryError, isTributaryError } from "../errors.ts";

interface PasswdOptions {
  password?: string;
  create?: boolean;
  delete?: boolean;
}

/** Reads a password on a terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let text = "";
    const done = (err: Error | null) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done(null);
        if (ch === "\u0003") return done(new TributaryError("BAD_REQUEST", "interrupted"));
        if (ch === "\u007f" || ch === "\b") text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on("data", onData);
  });
}

async function readPassword(o: PasswdOptions): Promise<string> {
  if (o.password !== undefined) return o.password;
  if (process.stdin.isTTY) {
    const first = await promptHidden("Password: ");
    const again = await promptHidden("Reenter password: ");
    if (first !== again) throw new TributaryError("BAD_REQUEST", "passwords do not match");
    return first;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  const newline = text.indexOf("\n");
  return (newline === -1 ? text : text.slice(0, newline)).replace(/\r$/, "");
}

function writeAtomically(file: string, text: string): void {
  const mode = existsSync(file) ? statSync(file).mode & 0o777 : 0o600;
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, file);
  } catch (err) {
    throw new TributaryError("INTERNAL", `cannot write ${file}: ${(err as Error).message}`, { file }, { cause: err });
  }
}

export async function runPasswd(file: string, user: string, o: PasswdOptions): Promise<void> {
  const problem = passwordUserProblem(user);
  if (problem !== null) throw new TributaryError("BAD_REQUEST", problem);
  if (o.create && o.delete) throw new TributaryError("BAD_REQUEST", "-c/--create and -D/--delete cannot be combined");
  const exists = existsSync(file);
  let text = "";
  if (exists && !o.create) {
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new TributaryError("INTERNAL", `cannot read ${file}: ${(err as Error).message}`, { file }, { cause: err });
    }
  }

  if (o.delete) {
    if (!exists) throw new TributaryError("NOT_FOUND", `${file} does not exist`);
    const result = deletePasswordLine(text, user);
    if (!result.deleted) throw new TributaryError("NOT_FOUND", `user ${user} is not in ${file}`);
    writeAtomically(file, result.text);
    process.stderr.write(`deleted user ${user} from ${file}\n`);
    return;
  }

  const password = await readPassword(o);
  if (password.length === 0) throw new TributaryError("BAD_REQUEST", "the password is empty");
  const before = text;
  text = setPasswordLine(text, user, await hashPassword(password));
  writeAtomically(file, text);
  const updated = before.split("\n").some((l) => l.startsWith(`${user}:`));
  process.stderr.write(`${updated ? "updated the password of" : "added"} user ${user} ${updated ? "in" : "to"} ${file}\n`);
  try {
    parsePasswordFile(text, file);
  } catch (err) {
    // Other lines a node would refuse (e.g. plain-text passwords from an old file): say so, the user's own line is fine.
    if (!isTributaryError(err)) throw err;
    for (const p of (err.context.problems as string[]) ?? []) process.stderr.write(`tributary: warning: ${p}\n`);
  }
}

export function registerPasswdCommand(program: Command): void {
  program
    .command("passwd <file> <user>")
    .description("Set a user's password in an MQTT password file (argon2id), like mosquitto_passwd.")
    .option("--password <password>", "the password (default: prompt on a terminal, else the first line of stdin)")
    .option("-c, --create", "start a new file with only this user (overwrites the file)")
    .option("-D, --delete", "delete the user instead")
    .addHelpText("after", "\nExamples:\n  tributary passwd /etc/tributary/passwd alice\n  printf '%s\\n' \"$PW\" | tributary passwd /etc/tributary/passwd bob\n  tributary passwd -D /etc/tributary/passwd bob")
    .action(async (file: string, user: string, o: PasswdOptions) => {
      await runPasswd(file, user, o);
    });
}
