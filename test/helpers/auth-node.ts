/**
 * A node with authentication configured, for the auth tests: an HS secret, an RS256 key
 * in a JWKS file (rotatable), an optional ACL file, and token minting with `jose`.
 */
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CONFIG, type TributaryConfig } from "../../server/src/config/config.ts";
import { createLogger } from "../../server/src/logger.ts";
import { startNode, type TributaryNode } from "../../server/src/node.ts";

export const SECRET = "0123456789abcdef0123456789abcdef-auth-tests";

export interface AuthTestNode {
  node: TributaryNode;
  dir: string;
  wsUrl: string;
  httpUrl: string;
  rsa: { privateKey: CryptoKey; publicPem: string };
  jwksFile: string;
  aclFile: string | null;
  /** HS256 token for the secret; `expSeconds` from now (negative: already expired). */
  hs(claims: Record<string, unknown>, expSeconds?: number): Promise<string>;
  /** RS256 token with `kid` "k1" (the JWKS key). */
  rs(claims: Record<string, unknown>, expSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

export async function startAuthNode(options: { acl?: string; allowAnonymous?: boolean; presence?: { sessionTimeoutMs: number } } = {}): Promise<AuthTestNode> {
  const dir = mkdtempSync(join(tmpdir(), "tributary-auth-"));
  const secretFile = join(dir, "jwt.secret");
  writeFileSync(secretFile, SECRET);
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const jwksFile = join(dir, "jwks.json");
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  let aclFile: string | null = null;
  if (options.acl !== undefined) {
    aclFile = join(dir, "acl");
    writeFileSync(aclFile, options.acl);
  }
  const config: TributaryConfig = {
    ...DEFAULT_CONFIG,
    dataDir: join(dir, "data"),
    host: "127.0.0.1",
    port: 0,
    file: { ...DEFAULT_CONFIG.file, fsync: "never" },
    mqtt: { ...DEFAULT_CONFIG.mqtt, enabled: false, port: 0 },
    log: { level: "error" },
    auth: {
      jwt: { secretFile, publicKeyFile: null, jwksFile, audience: null, issuer: null },
      passwordFile: null,
      aclFile,
      allowAnonymous: options.allowAnonymous ?? false,
    },
  };
  const node = await startNode(config, { logger: createLogger("error"), ...(options.presence ? { presence: options.presence } : {}) });
  const sign = async (alg: "HS256" | "RS256", claims: Record<string, unknown>, expSeconds = 3600) => {
    const jwt = new SignJWT(claims).setProtectedHeader(alg === "RS256" ? { alg, kid: "k1" } : { alg }).setIssuedAt();
    jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds);
    return alg === "RS256" ? jwt.sign(privateKey) : jwt.sign(new TextEncoder().encode(SECRET));
  };
  return {
    node,
    dir,
    wsUrl: `ws://127.0.0.1:${node.httpPort}/ws`,
    httpUrl: `http://127.0.0.1:${node.httpPort}`,
    rsa: { privateKey, publicPem: await exportSPKI(publicKey) },
    jwksFile,
    aclFile,
    hs: (claims, exp) => sign("HS256", claims, exp),
    rs: (claims, exp) => sign("RS256", claims, exp),
    async close() {
      await node.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
