/**
 * `tributary token create`: mints an HS256/384/512 JWT with Tributary's claims
 * (docs/security.md "Token claims") for the node's configured secret, and prints only the
 * token on stdout, so `TOKEN=$(tributary token create --sub alice --pub 'sensors/#')` works.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { InvalidArgumentError, type Command } from "commander";
import { SignJWT } from "jose";
import { buildClaims } from "../auth/jwt-claims.ts";
import { HMAC_ALGORITHMS, secretKeyFromFile } from "../auth/jwt-keys.ts";
import { loadConfig } from "../config/load-config.ts";
import { parseDuration } from "../config/units.ts";
import { TributaryError } from "../errors.ts";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function lifetimeArg(raw: string): number {
  const ms = parseDuration(raw);
  if (ms === undefined || ms < 1000) throw new InvalidArgumentError(`expected a lifetime of at least 1s like 15m, 1h, 7d; got "${raw}"`);
  return ms;
}

function algArg(raw: string): string {
  if (!(HMAC_ALGORITHMS as readonly string[]).includes(raw)) throw new InvalidArgumentError(`expected one of ${HMAC_ALGORITHMS.join(", ")}; got "${raw}"`);
  return raw;
}

interface TokenOptions {
  sub: string;
  pub?: string[];
  subscribe?: string[];
  group?: string[];
  presence?: boolean;
  admin?: boolean;
  exp: number;
  aud?: string;
  iss?: string;
  alg: string;
  secretFile?: string;
  config?: string;
}

/** The secret file and default aud/iss: --secret-file, else the node's configuration (--config, TRIBUTARY_CONFIG, TRIBUTARY_AUTH_JWT_*). */
function resolveSigning(o: TokenOptions): { secretFile: string; audience: string | null; issuer: string | null } {
  const { config } = loadConfig({ configFile: o.config, env: process.env });
  const secretFile = o.secretFile ?? config.auth.jwt.secretFile;
  if (secretFile === null) {
    throw new TributaryError("INVALID_CONFIG", "no secret to sign with: pass --secret-file <file>, or configure auth.jwt.secretFile (--config <file> or env TRIBUTARY_AUTH_JWT_SECRET_FILE)");
  }
  return { secretFile, audience: config.auth.jwt.audience, issuer: config.auth.jwt.issuer };
}

export async function createToken(o: TokenOptions): Promise<string> {
  const claims = buildClaims({ sub: o.sub, pub: o.pub, subscribe: o.subscribe, groups: o.group, presence: o.presence, admin: o.admin });
  const { secretFile, audience, issuer } = resolveSigning(o);
  let bytes: Buffer;
  try {
    bytes = await readFile(secretFile);
  } catch (err) {
    throw new TributaryError("INVALID_CONFIG", `secret file ${secretFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { file: secretFile }, { cause: err });
  }
  const { key } = secretKeyFromFile(bytes, secretFile);
  const nowSec = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: o.alg, typ: "JWT" }).setIssuedAt(nowSec).setExpirationTime(nowSec + Math.ceil(o.exp / 1000)).setJti(randomUUID());
  const aud = o.aud ?? audience;
  const iss = o.iss ?? issuer;
  if (aud !== null) jwt.setAudience(aud);
  if (iss !== null) jwt.setIssuer(iss);
  return jwt.sign(key);
}

export function registerTokenCommand(program: Command): void {
  const token = program.command("token").description("Mint access tokens (JWT) for the node's configured secret.");
  token
    .command("create")
    .description("Print a signed token (HS256 by default) on stdout; its claims are in docs/security.md.")
    .requiredOption("--sub <id>", "who the token is for (claim sub)")
    .option("--pub <pattern>", "MQTT topic pattern it may publish to (repeat for more)", collect)
    .option("--subscribe <pattern>", "MQTT topic pattern it may subscribe within (repeat for more)", collect)
    .option("--group <name>", "consumer group it may join: a name, prefix-*, or * (repeat for more)", collect)
    .option("--presence", "may be present on (and read presence of) topics it may read whole")
    .option("--admin", "admin: topic create/delete/config, group resets, cluster, reading internal topics")
    .option("--exp <duration>", "lifetime: 15m, 1h, 7d, ...", lifetimeArg, 3_600_000)
    .option("--aud <audience>", "claim aud (default: auth.jwt.audience)")
    .option("--iss <issuer>", "claim iss (default: auth.jwt.issuer)")
    .option("--alg <alg>", "HS256, HS384 or HS512", algArg, "HS256")
    .option("--secret-file <file>", "the secret (default: auth.jwt.secretFile of the configuration)")
    .option("--config <file>", "node JSON config file to read auth.jwt.* from (env TRIBUTARY_CONFIG)")
    .addHelpText("after", "\nExample:\n  tributary token create --sub dashboard-7 --subscribe 'sensor-data/#' --pub 'commands/+' --exp 1h --secret-file jwt.secret")
    .action(async (o: TokenOptions) => {
      process.stdout.write((await createToken(o)) + "\n");
    });
}
