import { TributaryError } from "../errors.ts";
import type { Authenticated, Authenticator, Credentials } from "./authenticator.ts";
import { createIdentity } from "./identity.ts";
import type { ParsedPasswordFile } from "./password-file.ts";
import { verifyNothing, verifyPassword } from "./password-hash.ts";

/**
 * MQTT user name + password against the password file (read through `file()` on each
 * call, so a reload applies to the next CONNECT). Identities it makes have no policy of
 * their own: the ACL file gives it by user name. The proof kept is the stored hash, so a
 * reload that removes the user or changes the password revokes connected identities.
 */
export class PasswordFileAuthenticator implements Authenticator {
  readonly #file: () => ParsedPasswordFile;

  constructor(file: () => ParsedPasswordFile) {
    this.#file = file;
  }

  async authenticate(credentials: Credentials): Promise<Authenticated> {
    if (credentials.kind !== "password") throw new TributaryError("UNAUTHORIZED", "a user name and password are needed", { reason: "missing" });
    const entry = this.#file().users.get(credentials.username);
    const ok = entry ? await verifyPassword(entry.hash, credentials.password) : await verifyNothing(credentials.password);
    if (!ok || !entry) throw new TributaryError("UNAUTHORIZED", "bad user name or password", { reason: "password" });
    const identity = createIdentity({ kind: "password", subject: entry.user, clientId: credentials.clientId, expiresAt: null });
    return { identity, policy: null, proof: entry.hash };
  }

  isCurrent(authenticated: Authenticated): boolean {
    const subject = authenticated.identity.subject;
    return subject !== null && this.#file().users.get(subject)?.hash === authenticated.proof;
  }
}
