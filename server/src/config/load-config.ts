/**
 * Loads the node configuration from up to three sources over the defaults, with the
 * precedence flags > env > file > defaults, field by field. Every value is validated; all
 * problems are gathered and thrown at once as one TributaryError("INVALID_CONFIG") whose
 * message lists them, each saying the field, what was expected, what was given and where
 * it came from:
 *
 *   port: expected an integer 0..65535, got "abc" (from env TRIBUTARY_PORT)
 *
 * Unknown keys in the file are errors (with a "did you mean" suggestion); unknown
 * TRIBUTARY_* env vars are warnings (the environment is shared with other tools).
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { TributaryError } from "../errors.ts";
import { DEFAULT_CONFIG, type TributaryConfig } from "./config.ts";
import { CONFIG_FIELDS, FIELDS_BY_PATH, OTHER_ENV_VARS, type FieldSpec } from "./config-schema.ts";
import { closest } from "./units.ts";

export interface ConfigSources {
  /** Path of a JSON config file (`--config`, or env TRIBUTARY_CONFIG). */
  configFile?: string;
  /** The environment to read TRIBUTARY_* vars from (pass `process.env`); none if omitted. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Raw flag values keyed by field path (`{ port: "0", "mqtt.port": "0" }`), as typed. */
  flags?: Readonly<Record<string, string | boolean | undefined>>;
}

export interface LoadedConfig {
  config: TributaryConfig;
  /** Non-fatal findings (unknown TRIBUTARY_* env vars), to print on stderr. */
  warnings: string[];
  /** Where each non-default field came from: path → "file x.json" | "env X" | "flag --x". */
  origins: Record<string, string>;
}

/** Loads, merges and validates; throws TributaryError("INVALID_CONFIG") listing every problem. */
export function loadConfig(sources: ConfigSources = {}): LoadedConfig {
  const problems: string[] = [];
  const warnings: string[] = [];
  const values = new Map<string, { value: unknown; origin: string }>();

  const take = (spec: FieldSpec, raw: unknown, origin: string) => {
    const parsed = spec.parse(raw);
    if (parsed.ok) values.set(spec.path, { value: parsed.value, origin });
    else problems.push(`${spec.path}: expected ${spec.expected}, got ${show(raw)} (from ${origin})`);
  };

  // 1. file
  const configFile = sources.configFile ?? nonEmpty(sources.env?.TRIBUTARY_CONFIG);
  if (configFile !== undefined) {
    const origin = `file ${configFile}`;
    const json = readJsonFile(configFile, problems);
    if (json !== undefined) walkFile(json, "", origin, take, problems);
  }

  // 2. env
  if (sources.env) {
    const known = new Set([...CONFIG_FIELDS.map((f) => f.env), ...Object.keys(OTHER_ENV_VARS)]);
    for (const spec of CONFIG_FIELDS) {
      const raw = nonEmpty(sources.env[spec.env]);
      if (raw !== undefined) take(spec, raw, `env ${spec.env}`);
    }
    for (const name of Object.keys(sources.env)) {
      if (!name.startsWith("TRIBUTARY_") || known.has(name)) continue;
      const suggestion = closest(name, [...known]);
      warnings.push(`unknown environment variable ${name} ignored${suggestion ? ` (did you mean ${suggestion}?)` : ""}`);
    }
  }

  // 3. flags
  for (const [path, raw] of Object.entries(sources.flags ?? {})) {
    if (raw === undefined) continue;
    const spec = FIELDS_BY_PATH.get(path);
    if (!spec) {
      problems.push(`unknown config field "${path}" given as a flag`);
      continue;
    }
    take(spec, raw, `flag ${spec.flag}`);
  }

  const config = structuredClone(DEFAULT_CONFIG);
  const origins: Record<string, string> = {};
  for (const [path, { value, origin }] of values) {
    setPath(config, path, value);
    origins[path] = origin;
  }
  checkConsistency(config, origins, problems);
  checkAuth(config, origins, problems);
  checkTls(config, origins, problems);

  if (problems.length > 0) {
    throw new TributaryError(
      "INVALID_CONFIG",
      `invalid configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${problems.map((p) => `  - ${p}`).join("\n")}`,
      { problems },
    );
  }
  return { config, warnings, origins };
}

function readJsonFile(path: string, problems: string[]): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push(code === "ENOENT" ? `config file ${path} does not exist` : `config file ${path} cannot be read (${code ?? String(err)})`);
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    problems.push(`config file ${path} is not valid JSON: ${(err as Error).message}`);
    return undefined;
  }
}

const GROUPS = new Set(CONFIG_FIELDS.filter((f) => f.path.includes(".")).map((f) => f.path.slice(0, f.path.lastIndexOf("."))));

function walkFile(
  node: unknown,
  prefix: string,
  origin: string,
  take: (spec: FieldSpec, raw: unknown, origin: string) => void,
  problems: string[],
): void {
  const where = prefix === "" ? "the top level" : `"${prefix}"`;
  if (node === null || typeof node !== "object" || Array.isArray(node)) {
    problems.push(`${prefix === "" ? "config file" : prefix}: expected a JSON object, got ${show(node)} (from ${origin})`);
    return;
  }
  for (const [key, value] of Object.entries(node)) {
    if (prefix === "" && key === "$schema") continue;
    const path = prefix === "" ? key : `${prefix}.${key}`;
    const spec = FIELDS_BY_PATH.get(path);
    if (spec) take(spec, value, origin);
    else if (GROUPS.has(path)) walkFile(value, path, origin, take, problems);
    else {
      const siblings = [...FIELDS_BY_PATH.keys(), ...GROUPS]
        .filter((p) => (prefix === "" ? !p.includes(".") : p.startsWith(`${prefix}.`) && !p.slice(prefix.length + 1).includes(".")))
        .map((p) => (prefix === "" ? p : p.slice(prefix.length + 1)));
      const suggestion = closest(key, siblings) ?? closestPath(path);
      const hint = suggestion ? ` (did you mean "${suggestion}"?)` : "";
      problems.push(`unknown key "${path}" at ${where}${hint} (from ${origin})`);
    }
  }
}

/** Suggests a full path for a key put at the wrong level: `maxRecordBytes` → `limits.maxRecordBytes`. */
function closestPath(path: string): string | undefined {
  const leaf = path.slice(path.lastIndexOf(".") + 1);
  const byLeaf = CONFIG_FIELDS.filter((f) => f.path.endsWith(`.${leaf}`) || f.path === leaf);
  if (byLeaf.length === 1) return byLeaf[0]!.path;
  return closest(path, [...FIELDS_BY_PATH.keys()]);
}

function checkConsistency(config: TributaryConfig, origins: Record<string, string>, problems: string[]): void {
  const from = (...paths: string[]) => {
    const given = paths.filter((p) => origins[p]).map((p) => `${p} from ${origins[p]}`);
    return given.length > 0 ? ` (${given.join(", ")})` : " (defaults)";
  };
  if (config.limits.maxRecordBytes > config.limits.maxFrameBytes) {
    problems.push(
      `limits.maxRecordBytes (${config.limits.maxRecordBytes}) must not exceed limits.maxFrameBytes (${config.limits.maxFrameBytes}): such a record could never be sent${from("limits.maxRecordBytes", "limits.maxFrameBytes")}`,
    );
  }
  if (config.limits.defaultCredit > config.limits.maxCredit) {
    problems.push(
      `limits.defaultCredit (${config.limits.defaultCredit}) must not exceed limits.maxCredit (${config.limits.maxCredit})${from("limits.defaultCredit", "limits.maxCredit")}`,
    );
  }
  if (config.engine === "redis" && config.redis.url === null) {
    problems.push(`redis.url: required when engine is "redis" (flag --redis <url>, env TRIBUTARY_REDIS_URL, e.g. redis://127.0.0.1:6379)${from("engine")}`);
  }
  if (config.engine === "file" && config.redis.url !== null) {
    problems.push(`redis.url: given but engine is "file"; add --engine redis (env TRIBUTARY_ENGINE=redis) to use it${from("engine", "redis.url")}`);
  }
  if (config.mqtt.enabled && config.port !== 0 && config.port === config.mqtt.port) {
    problems.push(`mqtt.port: must differ from port (both ${config.port}); use 0 for a free port${from("port", "mqtt.port")}`);
  }
}

/**
 * auth.*: the files exist and are readable, and the settings can work together. The file
 * contents are checked when the auth layer opens them (AuthService.open), with file:line
 * messages. The local-only rule (no auth configured → loopback only) is applied by
 * startNode (auth/exposure.ts checkExposure), so a refused host is refused however the
 * node is started.
 */
function checkAuth(config: TributaryConfig, origins: Record<string, string>, problems: string[]): void {
  const { auth } = config;
  const from = (path: string) => (origins[path] ? ` (from ${origins[path]})` : "");
  const files: [string, string | null, string][] = [
    ["auth.jwt.secretFile", auth.jwt.secretFile, "create one with: openssl rand -base64 48 > <file>"],
    ["auth.jwt.publicKeyFile", auth.jwt.publicKeyFile, "export it with: openssl pkey -in private.pem -pubout > <file>"],
    ["auth.jwt.jwksFile", auth.jwt.jwksFile, 'it holds {"keys": [...]} (docs/security.md)'],
    ["auth.passwordFile", auth.passwordFile, "create it with: tributary passwd <file> <user>"],
    ["auth.aclFile", auth.aclFile, "write one in Mosquitto's acl_file format (docs/security.md)"],
  ];
  for (const [path, file, hint] of files) {
    if (file === null) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const what = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable by this user" : `cannot be read (${code ?? String(err)})`;
      problems.push(`${path}: file ${file} ${what}${from(path)}; ${hint.replace("<file>", file)}`);
    }
  }
  const jwtKey = auth.jwt.secretFile !== null || auth.jwt.publicKeyFile !== null || auth.jwt.jwksFile !== null;
  for (const path of ["auth.jwt.audience", "auth.jwt.issuer"] as const) {
    const value = path === "auth.jwt.audience" ? auth.jwt.audience : auth.jwt.issuer;
    if (value !== null && !jwtKey) {
      problems.push(`${path}: set${from(path)} but no JWT key is configured; set auth.jwt.secretFile, auth.jwt.publicKeyFile or auth.jwt.jwksFile`);
    }
  }
  if (auth.aclFile !== null && !jwtKey && auth.passwordFile === null && !auth.allowAnonymous) {
    problems.push(`auth.aclFile: set${from("auth.aclFile")} but no client could connect: set auth.passwordFile (MQTT users), a JWT key, or auth.allowAnonymous for its anonymous section`);
  }
}

/**
 * tls.*: the files exist and are readable, and the settings go together. The PEM content
 * (a certificate, a private key that matches it, the passphrase) is checked when the node
 * opens them (gateway/tls/tls-material.ts), with messages saying what to fix.
 */
function checkTls(config: TributaryConfig, origins: Record<string, string>, problems: string[]): void {
  const { tls } = config;
  const from = (path: string) => (origins[path] ? ` (from ${origins[path]})` : "");
  const files: [string, string | null, string][] = [
    ["tls.certFile", tls.certFile, "the server certificate in PEM (docs/security.md#tls shows how to make one with openssl)"],
    ["tls.keyFile", tls.keyFile, "the certificate's private key in PEM"],
    ["tls.caFile", tls.caFile, "the intermediate CA certificates in PEM"],
    ["tls.passphraseFile", tls.passphraseFile, "the key's passphrase on one line"],
  ];
  for (const [path, file, what] of files) {
    if (file === null) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const how = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable by this user" : `cannot be read (${code ?? String(err)})`;
      problems.push(`${path}: file ${file} ${how}${from(path)}; it should hold ${what}`);
    }
  }
  if (tls.certFile !== null && tls.keyFile === null) problems.push(`tls.keyFile: required with tls.certFile${from("tls.certFile")}; set it to the certificate's private key (PEM)`);
  if (tls.keyFile !== null && tls.certFile === null) problems.push(`tls.certFile: required with tls.keyFile${from("tls.keyFile")}; set it to the server certificate (PEM)`);
  if (tls.certFile === null && tls.keyFile === null) {
    for (const path of ["tls.caFile", "tls.passphraseFile", "tls.require"] as const) {
      if (origins[path] && !(path === "tls.require" && !tls.require)) problems.push(`${path}: set${from(path)} but TLS is not configured; set tls.certFile and tls.keyFile`);
    }
    return;
  }
  if (config.mqtt.enabled && config.mqtt.tlsPort !== 0) {
    if (config.mqtt.tlsPort === config.port) problems.push(`mqtt.tlsPort: must differ from port (both ${config.port}); use 0 for a free port${from("mqtt.tlsPort")}`);
    else if (!tls.require && config.mqtt.tlsPort === config.mqtt.port) problems.push(`mqtt.tlsPort: must differ from mqtt.port (both ${config.mqtt.port}); use 0 for a free port${from("mqtt.tlsPort")}`);
  }
}

function setPath(target: object, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = target as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) node = node[part] as Record<string, unknown>;
  node[parts.at(-1)!] = value;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}

function show(raw: unknown): string {
  if (raw === undefined) return "nothing";
  const text = JSON.stringify(raw) ?? String(raw);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
