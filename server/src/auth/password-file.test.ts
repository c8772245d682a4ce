import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isTributaryError, type TributaryError } from "../errors.ts";
import { PasswordFileAuthenticator } from "./password-file-authenticator.ts";
import { deletePasswordLine, parsePasswordFile, setPasswordLine } from "./password-file.ts";
import { hashFormat, hashPassword, verifyPassword } from "./password-hash.ts";

/** Written by Debian's mosquitto_passwd 2.0.11 (`-b pw alice s3cret`, default sha512-pbkdf2; `-H sha512` for carol). */
const MOSQUITTO_7 = "$7$101$x3KI6kJ6h4qUFVio$3YzPZkFR/lPwcLq2d4vLqmjqCBx1n25Emfv1opkvbYEyx/Mz9KSLvdKFU8S1lg7h9zSbAKoj0fX0sHarL4tcPA==";
const MOSQUITTO_6 = "$6$lBGBKxesTNhOdcL/$a6lGmhVT2YA86ix058fGAgouZf0LZFD4t9/2HOR/I5QkVJBnllC6XHNCINGaV/+Pd/I0IeSM81J1guq8Opa2PQ==";
const MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd";

const dir = mkdtempSync(join(tmpdir(), "tributary-passwd-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("password hashes", () => {
  it("hashes with argon2id and verifies only the right password", async () => {
    const hash = await hashPassword("correct horse");
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(hashFormat(hash)).toBe("argon2");
    expect(await verifyPassword(hash, "correct horse")).toBe(true);
    expect(await verifyPassword(hash, "correct horse ")).toBe(false);
    expect(await verifyPassword(hash, new TextEncoder().encode("correct horse"))).toBe(true);
  });

  it("verifies Mosquitto 2's $7$ (PBKDF2-SHA512) and 1.x's $6$ hashes", async () => {
    expect(hashFormat(MOSQUITTO_7)).toBe("pbkdf2-sha512");
    expect(await verifyPassword(MOSQUITTO_7, "s3cret")).toBe(true);
    expect(await verifyPassword(MOSQUITTO_7, "s3cret!")).toBe(false);
    expect(hashFormat(MOSQUITTO_6)).toBe("sha512");
    expect(await verifyPassword(MOSQUITTO_6, "x")).toBe(true);
    expect(await verifyPassword(MOSQUITTO_6, "y")).toBe(false);
  });

  it("never verifies plain text, unknown formats or malformed hashes", async () => {
    for (const stored of ["s3cret", "$2b$10$abcdefghijklmnopqrstuv", "$7$101$!!$!!", "$argon2id$garbage", "$7$99999999$x3KI6kJ6h4qUFVio$AAAA"]) {
      expect(await verifyPassword(stored, "s3cret"), stored).toBe(false);
    }
    expect(hashFormat("s3cret")).toBeNull();
  });

  it("verifies files written by Debian's mosquitto_passwd, both formats", async () => {
    // .ci/run installs the mosquitto package: without it this fails, it never skips.
    expect(existsSync(MOSQUITTO_PASSWD), `${MOSQUITTO_PASSWD} (Debian package mosquitto)`).toBe(true);
    const file = join(dir, "mosquitto.passwd");
    execFileSync(MOSQUITTO_PASSWD, ["-c", "-b", file, "dave", "pä ss:wörd"]);
    execFileSync(MOSQUITTO_PASSWD, ["-H", "sha512", "-b", file, "erin", "hunter2"]);
    const parsed = parsePasswordFile(readFileSync(file, "utf8"), file);
    const auth = new PasswordFileAuthenticator(() => parsed);
    const ok = await auth.authenticate({ kind: "password", username: "dave", password: new TextEncoder().encode("pä ss:wörd"), clientId: "c" });
    expect(ok.identity).toMatchObject({ kind: "password", subject: "dave", clientId: "c", expiresAt: null });
    await expect(auth.authenticate({ kind: "password", username: "erin", password: "hunter2", clientId: null })).resolves.toBeDefined();
    await expect(auth.authenticate({ kind: "password", username: "erin", password: "hunter3", clientId: null })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    expect(parsed.warnings).toEqual([expect.stringContaining('user "erin" has a weak $6$')]);
  });
});

describe("password file", () => {
  it("parses user:hash lines, skipping blanks and comments", () => {
    const parsed = parsePasswordFile(`# users\n\nalice:${MOSQUITTO_7}\r\nbob:${MOSQUITTO_6}\n`, "pw");
    expect([...parsed.users.keys()]).toEqual(["alice", "bob"]);
    expect(parsed.users.get("alice")).toMatchObject({ format: "pbkdf2-sha512", line: 3 });
  });

  it("names the file and line of every bad line", () => {
    let err: TributaryError | undefined;
    try {
      parsePasswordFile(`alice:plaintext\nnocolon\n:${MOSQUITTO_7}\nbob:${MOSQUITTO_7}\nbob:${MOSQUITTO_7}\n`, "/etc/pw");
    } catch (e) {
      err = e as TributaryError;
    }
    expect(isTributaryError(err, "INVALID_CONFIG")).toBe(true);
    expect(err!.context.problems).toEqual([
      expect.stringMatching(/^\/etc\/pw:1: the password of user "alice" is not a hash .*tributary passwd \/etc\/pw alice/),
      expect.stringMatching(/^\/etc\/pw:2: expected "user:hash"$/),
      expect.stringMatching(/^\/etc\/pw:3: expected "user:hash" \(the user name is empty\)/),
      expect.stringMatching(/^\/etc\/pw:5: user "bob" is already defined on line 4/),
    ]);
  });

  it("sets and deletes one user's line, keeping the others and comments", () => {
    let text = setPasswordLine("", "alice", "$argon2id$a");
    text = setPasswordLine(`# keep me\n${text}`, "bob", "$argon2id$b");
    text = setPasswordLine(text, "alice", "$argon2id$a2");
    expect(text).toBe("# keep me\nalice:$argon2id$a2\nbob:$argon2id$b\n");
    expect(deletePasswordLine(text, "alice")).toEqual({ text: "# keep me\nbob:$argon2id$b\n", deleted: true });
    expect(deletePasswordLine(text, "carol").deleted).toBe(false);
  });
});

describe("PasswordFileAuthenticator", () => {
  it("refuses an unknown user and a wrong password with the same error", async () => {
    const parsed = parsePasswordFile(`alice:${await hashPassword("right")}\n`, "pw");
    const auth = new PasswordFileAuthenticator(() => parsed);
    const wrong = await auth.authenticate({ kind: "password", username: "alice", password: "wrong", clientId: null }).catch((e: unknown) => e as TributaryError);
    const unknown = await auth.authenticate({ kind: "password", username: "mallory", password: "right", clientId: null }).catch((e: unknown) => e as TributaryError);
    expect(wrong).toMatchObject({ code: "UNAUTHORIZED", message: "bad user name or password" });
    expect(unknown).toMatchObject({ code: "UNAUTHORIZED", message: "bad user name or password" });
  });

  it("revokes an identity when the user is removed or the password changes", async () => {
    let parsed = parsePasswordFile(`alice:${await hashPassword("right")}\n`, "pw");
    const auth = new PasswordFileAuthenticator(() => parsed);
    const alice = await auth.authenticate({ kind: "password", username: "alice", password: "right", clientId: null });
    expect(auth.isCurrent(alice)).toBe(true);
    parsed = parsePasswordFile(`alice:${await hashPassword("right")}\n`, "pw"); // same password, new salt: a change
    expect(auth.isCurrent(alice)).toBe(false);
    parsed = parsePasswordFile("", "pw");
    expect(auth.isCurrent(alice)).toBe(false);
  });
});
