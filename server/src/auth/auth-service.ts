/**
 * The entry point of the auth layer: built once per node from `config.auth`, it proves
 * identities (JWT, MQTT password file, anonymous) and owns the Authorizer every gateway
 * asks. Files (JWT keys, JWKS, password file, ACL file) are watched and reloaded; every
 * reload invalidates cached decisions and then emits `change` (see `on`).
 *
 * How a gateway calls it (docs/security.md "For gateway authors"):
 *
 *     const auth = await AuthService.open(config.auth, { logger });
 *     // connect
 *     const identity = await auth.authenticateMqtt({ username, password, clientId });   // MQTT CONNECT
 *     const identity = await auth.authenticateToken(hello.token, hello.clientId);         // WS hello
 *     const identity = await auth.authenticateHttp(req.getHeader("authorization"));       // HTTP request
 *     //   → rejects with TributaryError UNAUTHORIZED / TOKEN_EXPIRED (map with authFailure in auth-errors.ts)
 *     const ms = auth.msUntilExpiry(identity);   // close the connection then (TOKEN_EXPIRED)
 *     // every operation
 *     if (!auth.authorizer.canPublish(identity, topic)) → FORBIDDEN (PUBACK 0x87, WS error, HTTP 403)
 *     // on auth.on("change"): close connections whose auth.validate(identity) is an error,
 *     // and re-check live subscriptions with canSubscribe / canConsume.
 */
import type { TributaryConfig } from "../config/config.ts";
import { TributaryError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { parseAcl, type AclRules } from "./acl-file.ts";
import { aclPolicy } from "./acl-policy.ts";
import type { Authenticated, Authenticator } from "./authenticator.ts";
import type { Authorizer } from "./authorizer.ts";
import type { DecisionCacheLimits } from "./decision-cache.ts";
import { createIdentity, type Identity } from "./identity.ts";
import { JwtAuthenticator } from "./jwt-authenticator.ts";
import { JwtKeyring, keysFromJwks, publicKeysFromPem, secretKeyFromFile, type VerificationKey } from "./jwt-keys.ts";
import { PasswordFileAuthenticator } from "./password-file-authenticator.ts";
import { parsePasswordFile, type ParsedPasswordFile } from "./password-file.ts";
import { PolicyAuthorizer } from "./policy-authorizer.ts";
import { DENY_ALL_POLICY, OPEN_POLICY, PUBSUB_POLICY, type Policy } from "./policy.ts";
import { WatchedFile, type FileReload } from "./watched-file.ts";

/** `config.auth` (server/src/config/config.ts): one definition, documented there. */
export type AuthConfig = TributaryConfig["auth"];

export interface AuthServiceOptions {
  logger?: Logger;
  /** Watch the files and reload on change (default true); reload() works either way. */
  watch?: boolean;
  /** Clock, ms since the epoch (tests). */
  now?: () => number;
  /** Bounds of the per-identity decision caches. */
  cache?: DecisionCacheLimits;
}

/**
 * "open": nothing configured (no JWT key, password file or ACL file): every client is
 * anonymous with every permission, admin included, as before authentication existed; the
 * node must then bind only loopback unless allowAnonymous (see exposure.ts).
 * "enforced": clients prove who they are; anonymous ones only with allowAnonymous.
 */
export type AuthMode = "open" | "enforced";

export type AuthFileKind = "jwt-secret" | "jwt-public-key" | "jwks" | "password-file" | "acl-file";

/** Emitted after a watched file was reloaded (cached decisions already invalidated) or failed to reload (previous content kept). */
export interface AuthChange {
  readonly file: AuthFileKind;
  readonly path: string;
  /** Set when the new content was refused; the previous content stays in force. */
  readonly error: TributaryError | null;
}

interface IdentityRecord {
  readonly authenticator: Authenticator | null;
  readonly authenticated: Authenticated | null;
}

const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

export class AuthService {
  readonly mode: AuthMode;
  readonly authorizer: Authorizer;
  readonly #config: AuthConfig;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #policyAuthorizer: PolicyAuthorizer;
  readonly #records = new WeakMap<Identity, IdentityRecord>();
  readonly #listeners = new Set<(change: AuthChange) => void>();
  readonly #files: { reload(): Promise<FileReload<unknown>>; close(): void }[] = [];
  #jwtKeyFiles: WatchedFile<VerificationKey[]>[] = [];
  #keyring: JwtKeyring = new JwtKeyring([]);
  #passwords: WatchedFile<ParsedPasswordFile> | null = null;
  #acl: WatchedFile<AclRules> | null = null;
  #jwt: JwtAuthenticator | null = null;
  #password: PasswordFileAuthenticator | null = null;

  private constructor(config: AuthConfig, options: AuthServiceOptions) {
    this.#config = config;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    const { jwt } = config;
    const enforced = jwt.secretFile !== null || jwt.publicKeyFile !== null || jwt.jwksFile !== null || config.passwordFile !== null || config.aclFile !== null;
    this.mode = enforced ? "enforced" : "open";
    this.#policyAuthorizer = new PolicyAuthorizer((identity) => this.#policyOf(identity), { now: this.#now, cache: options.cache });
    this.authorizer = this.#policyAuthorizer;
  }

  /** Reads every configured file; rejects with TributaryError("INVALID_CONFIG") naming the file and line when one is missing or invalid. */
  static async open(config: AuthConfig, options: AuthServiceOptions = {}): Promise<AuthService> {
    const service = new AuthService(config, options);
    try {
      await service.#openFiles(options.watch ?? true);
    } catch (err) {
      service.close();
      throw err;
    }
    return service;
  }

  async #openFiles(watch: boolean): Promise<void> {
    const { jwt } = this.#config;
    const keyFile = async (kind: AuthFileKind, path: string | null, parse: (bytes: Buffer, path: string) => VerificationKey[]) => {
      if (path === null) return;
      const file = await WatchedFile.open(path, parse, { watch, onReload: (r) => this.#reloaded(kind, r, () => this.#rebuildKeyring()) });
      this.#files.push(file);
      this.#jwtKeyFiles.push(file);
    };
    await keyFile("jwt-secret", jwt.secretFile, (bytes, path) => [secretKeyFromFile(bytes, path)]);
    await keyFile("jwt-public-key", jwt.publicKeyFile, (bytes, path) => publicKeysFromPem(bytes.toString("utf8"), path));
    await keyFile("jwks", jwt.jwksFile, (bytes, path) => keysFromJwks(bytes.toString("utf8"), path));
    this.#rebuildKeyring();
    if (this.#jwtKeyFiles.length > 0) {
      this.#jwt = new JwtAuthenticator(() => this.#keyring, { audience: jwt.audience, issuer: jwt.issuer, now: this.#now });
    }
    if (this.#config.passwordFile !== null) {
      this.#passwords = await WatchedFile.open(this.#config.passwordFile, (bytes, path) => parsePasswordFile(bytes.toString("utf8"), path), {
        watch,
        onReload: (r) => this.#reloaded("password-file", r, () => this.#warn(r.value?.warnings)),
      });
      this.#files.push(this.#passwords);
      this.#warn(this.#passwords.value.warnings);
      const passwords = this.#passwords;
      this.#password = new PasswordFileAuthenticator(() => passwords.value);
    }
    if (this.#config.aclFile !== null) {
      this.#acl = await WatchedFile.open(this.#config.aclFile, (bytes, path) => parseAcl(bytes.toString("utf8"), path), {
        watch,
        onReload: (r) => this.#reloaded("acl-file", r, () => this.#warn(r.value?.warnings)),
      });
      this.#files.push(this.#acl);
      this.#warn(this.#acl.value.warnings);
    }
  }

  /**
   * WebSocket `hello` token or any bearer token. In "open" mode the token is not checked
   * (there is no key to check it with) and the client is anonymous with every permission.
   * No token: the anonymous identity, if allowed.
   */
  async authenticateToken(token: string | null | undefined, clientId: string | null = null): Promise<Identity> {
    if (this.mode === "open") return this.#anonymous(clientId);
    if (token === null || token === undefined || token === "") return this.anonymous(clientId);
    if (this.#jwt === null) throw new TributaryError("UNAUTHORIZED", "tokens are not accepted: this node has no JWT key configured", { reason: "no_jwt" });
    return this.#remember(this.#jwt, await this.#jwt.authenticate({ kind: "token", token, clientId }));
  }

  /**
   * MQTT CONNECT. The password is a JWT (when a JWT key is configured and it has the shape
   * `eyJ….….…`; the user name is then not checked) or a password-file password. No user
   * name and no password: anonymous, if allowed.
   */
  async authenticateMqtt(c: { username?: string | null; password?: string | Uint8Array | null; clientId: string }): Promise<Identity> {
    if (this.mode === "open") return this.#anonymous(c.clientId);
    const hasUser = c.username !== undefined && c.username !== null;
    const password = c.password ?? null;
    if (!hasUser && password === null) return this.anonymous(c.clientId);
    if (password !== null && this.#jwt !== null) {
      const text = typeof password === "string" ? password : Buffer.from(password).toString("latin1");
      if (JWT_SHAPE.test(text)) return this.#remember(this.#jwt, await this.#jwt.authenticate({ kind: "token", token: text, clientId: c.clientId }));
    }
    if (this.#password === null) {
      throw new TributaryError("UNAUTHORIZED", this.#jwt ? "the password is not a JWT, and this node has no password file" : "this node has no password file", { reason: "password" });
    }
    if (!hasUser || password === null) throw new TributaryError("UNAUTHORIZED", "a user name and a password are both needed", { reason: "missing" });
    return this.#remember(this.#password, await this.#password.authenticate({ kind: "password", username: c.username!, password, clientId: c.clientId }));
  }

  /** HTTP `Authorization` header: `Bearer <jwt>`; absent = anonymous, if allowed. */
  authenticateHttp(authorization: string | null | undefined): Promise<Identity> {
    if (authorization === null || authorization === undefined || authorization === "") return this.authenticateToken(null);
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!m) return Promise.reject(new TributaryError("UNAUTHORIZED", 'the Authorization header must be "Bearer <token>"', { reason: "malformed" }));
    return this.authenticateToken(m[1]!);
  }

  /** The identity of a client that sent no credentials; throws UNAUTHORIZED when anonymous access is off. */
  anonymous(clientId: string | null = null): Identity {
    if (this.mode === "enforced" && !this.#config.allowAnonymous) {
      throw new TributaryError("UNAUTHORIZED", "credentials are required (this node does not allow anonymous clients)", { reason: "missing" });
    }
    return this.#anonymous(clientId);
  }

  /**
   * Is `identity` still valid? null if so; else the error to close its connection with:
   * TOKEN_EXPIRED once `expiresAt` passed, UNAUTHORIZED when a reload revoked it (user
   * removed or password changed in the password file, signing key removed from the key
   * files) or when this service did not make it.
   */
  validate(identity: Identity): TributaryError | null {
    const record = this.#records.get(identity);
    if (record === undefined) return new TributaryError("UNAUTHORIZED", "unknown identity", { reason: "unknown" });
    if (identity.expiresAt !== null && this.#now() >= identity.expiresAt) {
      return new TributaryError("TOKEN_EXPIRED", `token expired at ${new Date(identity.expiresAt).toISOString()}`, { reason: "expired" });
    }
    if (record.authenticator !== null && record.authenticated !== null && !record.authenticator.isCurrent(record.authenticated)) {
      const what = identity.kind === "jwt" ? "the key that signed the token is no longer trusted" : "the password file no longer has this user and password";
      return new TributaryError("UNAUTHORIZED", `credentials revoked: ${what}`, { reason: "revoked" });
    }
    return null;
  }

  /** Milliseconds until `identity` expires (0 if it has), or null if it never does: when to close its connection. */
  msUntilExpiry(identity: Identity): number | null {
    return identity.expiresAt === null ? null : Math.max(0, identity.expiresAt - this.#now());
  }

  /** Listens for file reloads (after cached decisions were invalidated). Returns the unsubscribe function. */
  on(event: "change", listener: (change: AuthChange) => void): () => void {
    if (event !== "change") throw new TypeError(`unknown event ${String(event)}`);
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads every file now (SIGHUP); resolves with what changed or failed. */
  async reload(): Promise<FileReload<unknown>[]> {
    return Promise.all(this.#files.map((f) => f.reload()));
  }

  /** Stops watching the files. Identities keep working with the last loaded content. */
  close(): void {
    for (const f of this.#files) f.close();
  }

  #anonymous(clientId: string | null): Identity {
    const identity = createIdentity({ kind: "anonymous", subject: null, clientId, expiresAt: null });
    this.#records.set(identity, { authenticator: null, authenticated: null });
    return identity;
  }

  #remember(authenticator: Authenticator, authenticated: Authenticated): Identity {
    this.#records.set(authenticated.identity, { authenticator, authenticated });
    return authenticated.identity;
  }

  #policyOf(identity: Identity): Policy {
    const record = this.#records.get(identity);
    if (record === undefined || this.validate(identity) !== null) return DENY_ALL_POLICY;
    if (record.authenticated?.policy) return record.authenticated.policy;
    if (this.mode === "open") return OPEN_POLICY;
    const acl = this.#acl?.value;
    if (acl === undefined) return PUBSUB_POLICY;
    return aclPolicy(acl, identity.kind === "anonymous" ? null : identity.subject, identity.clientId);
  }

  #rebuildKeyring(): void {
    this.#keyring = new JwtKeyring(this.#jwtKeyFiles.flatMap((f) => f.value));
  }

  #reloaded(file: AuthFileKind, reload: FileReload<unknown>, apply: () => void): void {
    if (reload.error) {
      this.#logger?.error("auth.reload_failed", { file, path: reload.path, code: reload.error.code, error: reload.error.message });
    } else {
      apply();
      this.#policyAuthorizer.invalidate();
      this.#logger?.info("auth.reloaded", { file, path: reload.path });
    }
    const change: AuthChange = { file, path: reload.path, error: reload.error ?? null };
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (err) {
        this.#logger?.error("auth.change_listener_failed", { file, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  #warn(warnings: readonly string[] | undefined): void {
    for (const w of warnings ?? []) this.#logger?.warn("auth.file_warning", { warning: w });
  }
}
