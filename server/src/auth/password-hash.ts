/**
 * Password hashes of the MQTT password file.
 *
 * Written: argon2id in PHC form (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, the
 * OWASP-recommended parameters and @node-rs/argon2's defaults), by `tributary passwd`.
 *
 * Verified, so Mosquitto users can bring their files:
 * - `$argon2id$…` / `$argon2i$…` / `$argon2d$…` (PHC; also what newer Mosquitto writes);
 * - `$7$<iterations>$<salt b64>$<hash b64>`: Mosquitto 2.0's default (`mosquitto_passwd`),
 *   PBKDF2-HMAC-SHA512 with a 64-byte output, checked with node:crypto;
 * - `$6$<salt b64>$<hash b64>`: Mosquitto 1.x, one SHA-512 of password + salt. Weak
 *   (fast to brute-force): accepted with a warning at load so old files keep working.
 * Comparison is constant-time (timingSafeEqual, or argon2's own).
 */
import { hash as argon2Hash, verify as argon2Verify } from "@node-rs/argon2";
import { createHash, pbkdf2, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";

const pbkdf2Async = promisify(pbkdf2);

export type HashFormat = "argon2" | "pbkdf2-sha512" | "sha512";

const ARGON2 = /^\$argon2(id|i|d)\$/;
const PBKDF2 = /^\$7\$(\d{1,8})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;
const SHA512 = /^\$6\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

/** Most PBKDF2 iterations accepted from a file (Mosquitto writes 101; far more would make each CONNECT a denial of service). */
const MAX_PBKDF2_ITERATIONS = 1_000_000;

/** The format of a stored hash, or null when it is none this node verifies (plain text, crypt(3), bcrypt, ...). */
export function hashFormat(stored: string): HashFormat | null {
  if (ARGON2.test(stored)) return "argon2";
  const p = PBKDF2.exec(stored);
  if (p) return Number(p[1]) >= 1 && Number(p[1]) <= MAX_PBKDF2_ITERATIONS ? "pbkdf2-sha512" : null;
  if (SHA512.test(stored)) return "sha512";
  return null;
}

/** Hashes a new password with argon2id (random salt). */
export function hashPassword(password: string | Uint8Array): Promise<string> {
  return argon2Hash(password);
}

function toBytes(password: string | Uint8Array): Buffer {
  return typeof password === "string" ? Buffer.from(password, "utf8") : Buffer.from(password.buffer, password.byteOffset, password.byteLength);
}

/** Checks `password` against a stored hash; false for a wrong password or an unverifiable hash (never throws). */
export async function verifyPassword(stored: string, password: string | Uint8Array): Promise<boolean> {
  try {
    if (ARGON2.test(stored)) return await argon2Verify(stored, password);
    const p = PBKDF2.exec(stored);
    if (p) {
      const iterations = Number(p[1]);
      if (iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) return false;
      const expected = Buffer.from(p[3]!, "base64");
      const actual = await pbkdf2Async(toBytes(password), Buffer.from(p[2]!, "base64"), iterations, expected.length || 64, "sha512");
      return expected.length > 0 && timingSafeEqual(actual, expected);
    }
    const s = SHA512.exec(stored);
    if (s) {
      const expected = Buffer.from(s[2]!, "base64");
      const actual = createHash("sha512").update(toBytes(password)).update(Buffer.from(s[1]!, "base64")).digest();
      return expected.length === actual.length && timingSafeEqual(actual, expected);
    }
    return false;
  } catch {
    return false; // a malformed stored hash verifies nothing
  }
}

let dummy: Promise<string> | null = null;

/**
 * Spends about the time of one argon2 verification and resolves false: used for unknown
 * user names so a failed login takes as long whether or not the user exists.
 */
export async function verifyNothing(password: string | Uint8Array): Promise<false> {
  dummy ??= hashPassword("tributary: no such user");
  await verifyPassword(await dummy, password);
  return false;
}
