import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isTributaryError, type TributaryError } from "../errors.ts";
import { CONFIG_FIELDS, OTHER_ENV_VARS } from "./config-schema.ts";
import { DEFAULT_CONFIG } from "./config.ts";
import { loadConfig, type ConfigSources } from "./load-config.ts";
import { parseByteSize, parseDuration } from "./units.ts";

const dir = mkdtempSync(join(tmpdir(), "tributary-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function configFile(content: unknown): string {
  const path = join(dir, `config-${fileCount++}.json`);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

function problemsOf(sources: ConfigSources): string[] {
  try {
    loadConfig(sources);
  } catch (err) {
    expect(isTributaryError(err, "INVALID_CONFIG")).toBe(true);
    return (err as TributaryError).context.problems as string[];
  }
  throw new Error("expected INVALID_CONFIG");
}

describe("loadConfig", () => {
  it("returns the defaults when no source is given", () => {
    expect(loadConfig().config).toEqual(DEFAULT_CONFIG);
  });

  it("does not mutate the shared defaults", () => {
    loadConfig({ flags: { port: "1234", "limits.maxRecordBytes": "10" } });
    expect(DEFAULT_CONFIG.port).toBe(8080);
    expect(DEFAULT_CONFIG.limits.maxRecordBytes).toBe(1024 * 1024);
  });

  it("applies flags over env over file over defaults, field by field", () => {
    const file = configFile({ port: 1111, host: "0.0.0.0", dataDir: "/from/file", mqtt: { port: 1884 } });
    const { config, origins } = loadConfig({
      configFile: file,
      env: { TRIBUTARY_PORT: "2222", TRIBUTARY_DATA_DIR: "/from/env" },
      flags: { port: "3333" },
    });
    expect(config.port).toBe(3333);
    expect(config.dataDir).toBe("/from/env");
    expect(config.host).toBe("0.0.0.0");
    expect(config.mqtt.port).toBe(1884);
    expect(config.mqtt.enabled).toBe(true); // default kept next to an overridden sibling
    expect(origins).toMatchObject({ port: "flag --port", dataDir: "env TRIBUTARY_DATA_DIR", host: `file ${file}` });
  });

  it("reads the config file path from TRIBUTARY_CONFIG when no --config is given", () => {
    const file = configFile({ port: 4444 });
    expect(loadConfig({ env: { TRIBUTARY_CONFIG: file } }).config.port).toBe(4444);
  });

  it("parses durations, sizes, booleans, null limits and fsync forms", () => {
    const { config } = loadConfig({
      env: {
        TRIBUTARY_DEFAULT_RETENTION_MS: "7d",
        TRIBUTARY_SEGMENT_BYTES: "16MiB",
        TRIBUTARY_AUTO_CREATE_TOPICS: "no",
        TRIBUTARY_DEFAULT_RETENTION_BYTES: "1GiB",
        TRIBUTARY_FSYNC: "250ms",
      },
      flags: { "mqtt.enabled": "false" },
    });
    expect(config.topics.defaultRetentionMs).toBe(7 * 86_400_000);
    expect(config.file.segmentBytes).toBe(16 * 1024 * 1024);
    expect(config.topics.autoCreate).toBe(false);
    expect(config.topics.defaultRetentionBytes).toBe(1024 ** 3);
    expect(config.file.fsync).toEqual({ intervalMs: 250 });
    expect(config.mqtt.enabled).toBe(false);

    expect(loadConfig({ env: { TRIBUTARY_DEFAULT_RETENTION_MS: "none" } }).config.topics.defaultRetentionMs).toBeNull();
    expect(loadConfig({ configFile: configFile({ topics: { defaultRetentionMs: null } }) }).config.topics.defaultRetentionMs).toBeNull();
    expect(loadConfig({ flags: { "file.fsync": "always" } }).config.file.fsync).toBe("always");
    expect(loadConfig({ configFile: configFile({ file: { fsync: { intervalMs: 50 } } }) }).config.file.fsync).toEqual({ intervalMs: 50 });
    expect(loadConfig({ configFile: configFile({ file: { fsync: 75 } }) }).config.file.fsync).toEqual({ intervalMs: 75 });
  });

  it("ignores empty env vars, like unset ones", () => {
    expect(loadConfig({ env: { TRIBUTARY_PORT: "" } }).config.port).toBe(DEFAULT_CONFIG.port);
  });

  it("says what to fix: field, expectation, value and source", () => {
    expect(problemsOf({ env: { TRIBUTARY_PORT: "abc" } })).toEqual([
      'port: expected an integer 0..65535, got "abc" (from env TRIBUTARY_PORT)',
    ]);
    const file = configFile({ port: 70000 });
    expect(problemsOf({ configFile: file })).toEqual([`port: expected an integer 0..65535, got 70000 (from file ${file})`]);
    expect(problemsOf({ flags: { "log.level": "loud" } })).toEqual([
      'log.level: expected one of "debug", "info", "warn", "error", got "loud" (from flag --log-level)',
    ]);
  });

  it("lists every problem at once in the error message", () => {
    let caught: unknown;
    try {
      loadConfig({
        env: { TRIBUTARY_PORT: "-1", TRIBUTARY_MQTT_PORT: "x" },
        flags: { "file.fsync": "sometimes", "topics.defaultPartitions": "0" },
      });
    } catch (err) {
      caught = err;
    }
    expect(isTributaryError(caught, "INVALID_CONFIG")).toBe(true);
    const message = (caught as Error).message;
    expect(message).toContain("4 problems");
    for (const needle of ["port: expected", "mqtt.port: expected", "file.fsync: expected", "topics.defaultPartitions: expected an integer 1..10000"]) {
      expect(message).toContain(needle);
    }
  });

  it("rejects unknown keys in the file with a did-you-mean suggestion", () => {
    const file = configFile({ prot: 1, limits: { maxRecordByte: 5 }, maxFrameBytes: 10, zzzzzzzz: true });
    const problems = problemsOf({ configFile: file });
    expect(problems).toContain(`unknown key "prot" at the top level (did you mean "port"?) (from file ${file})`);
    expect(problems).toContain(`unknown key "limits.maxRecordByte" at "limits" (did you mean "maxRecordBytes"?) (from file ${file})`);
    expect(problems).toContain(`unknown key "maxFrameBytes" at the top level (did you mean "limits.maxFrameBytes"?) (from file ${file})`);
    expect(problems).toContain(`unknown key "zzzzzzzz" at the top level (from file ${file})`);
  });

  it("rejects a group that is not an object and a file that is not JSON or missing", () => {
    const notObject = configFile({ limits: 5 });
    expect(problemsOf({ configFile: notObject })).toEqual([`limits: expected a JSON object, got 5 (from file ${notObject})`]);
    const notJson = configFile("{ port: 1 ");
    expect(problemsOf({ configFile: notJson })[0]).toMatch(new RegExp(`^config file .* is not valid JSON`));
    expect(problemsOf({ configFile: join(dir, "missing.json") })).toEqual([`config file ${join(dir, "missing.json")} does not exist`]);
  });

  it("warns about unknown TRIBUTARY_* env vars with a suggestion, and ignores other vars", () => {
    const { warnings } = loadConfig({ env: { TRIBUTARY_PROT: "1", PATH: "/bin", TRIBUTARY_URL: "http://x" } });
    expect(warnings).toEqual(["unknown environment variable TRIBUTARY_PROT ignored (did you mean TRIBUTARY_PORT?)"]);
  });

  it("checks fields against each other", () => {
    expect(problemsOf({ flags: { "limits.maxRecordBytes": "4MiB", "limits.maxFrameBytes": "1MiB" } })[0]).toMatch(
      /^limits\.maxRecordBytes \(4194304\) must not exceed limits\.maxFrameBytes \(1048576\)/,
    );
    expect(problemsOf({ flags: { port: "9000", "mqtt.port": "9000" } })[0]).toMatch(/^mqtt\.port: must differ from port \(both 9000\)/);
    expect(loadConfig({ flags: { port: "0", "mqtt.port": "0" } }).config.port).toBe(0);
    expect(loadConfig({ flags: { port: "9000", "mqtt.port": "9000", "mqtt.enabled": "false" } }).config.port).toBe(9000);
  });

  it("takes the redis engine and its URL from env or flags, and says what is missing or malformed", () => {
    const { config } = loadConfig({ env: { TRIBUTARY_ENGINE: "redis", TRIBUTARY_REDIS_URL: "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/main?replicas=1" } });
    expect(config.engine).toBe("redis");
    expect(config.redis.url).toBe("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/main?replicas=1");
    expect(loadConfig({ flags: { engine: "redis", "redis.url": "redis+cluster://a:7000,b:7001" } }).config.redis.url).toBe("redis+cluster://a:7000,b:7001");
    expect(problemsOf({ flags: { engine: "redis" } })).toEqual([expect.stringMatching(/^redis\.url: required when engine is "redis" \(flag --redis <url>, env TRIBUTARY_REDIS_URL/)]);
    expect(problemsOf({ flags: { engine: "redis", "redis.url": "http://localhost:6379" } })[0]).toMatch(/^redis\.url: expected a Redis URL: redis:\/\/host:port.*got "http:\/\/localhost:6379" \(from flag --redis-url\)/);
    expect(problemsOf({ flags: { engine: "redis", "redis.url": "redis+cluster://a:7000,,b" } })[0]).toMatch(/^redis\.url: expected a Redis URL/);
    expect(problemsOf({ env: { TRIBUTARY_REDIS_URL: "redis://127.0.0.1:6379" } })).toEqual([expect.stringMatching(/^redis\.url: given but engine is "file"; add --engine redis/)]);
    expect(problemsOf({ flags: { engine: "kafka" } })[0]).toBe('engine: expected one of "file", "redis", got "kafka" (from flag --engine)');
  });

  it("reads browser origin lists from a JSON array or a comma list, stored as browsers send Origin, and names what is wrong", () => {
    expect(DEFAULT_CONFIG.http.corsOrigins).toEqual([]);
    expect(DEFAULT_CONFIG.ws.allowedOrigins).toEqual([]);
    const file = configFile({ http: { corsOrigins: ["https://App.example.com:443/", "http://localhost:3000"] } });
    expect(loadConfig({ configFile: file }).config.http.corsOrigins).toEqual(["https://app.example.com", "http://localhost:3000"]);
    const { config } = loadConfig({ env: { TRIBUTARY_WS_ALLOWED_ORIGINS: " https://a.example.com , http://[::1]:8080," }, flags: { "http.corsOrigins": "*" } });
    expect(config.ws.allowedOrigins).toEqual(["https://a.example.com", "http://[::1]:8080"]);
    expect(config.http.corsOrigins).toEqual(["*"]);
    for (const bad of ["https://a.example.com/app", "ftp://a.example.com", "https://*.example.com", "null", "a.example.com"]) {
      expect(problemsOf({ flags: { "ws.allowedOrigins": bad } }), bad).toEqual([
        expect.stringMatching(/^ws\.allowedOrigins: expected a list of origins like "https:\/\/app\.example\.com".*\(from flag --ws-allowed-origins\)$/),
      ]);
    }
    expect(loadConfig({ configFile: configFile({ http: { corsOrigins: "https://a.example.com" } }) }).config.http.corsOrigins).toEqual(["https://a.example.com"]);
    expect(problemsOf({ configFile: configFile({ http: { corsOrigins: [42] } }) })[0]).toMatch(/^http\.corsOrigins: expected a list of origins/);
  });

  it("gives every field a distinct env var and flag following the naming rule", () => {
    const envs = new Set(CONFIG_FIELDS.map((f) => f.env));
    const flags = new Set(CONFIG_FIELDS.map((f) => f.flag));
    expect(envs.size).toBe(CONFIG_FIELDS.length);
    expect(flags.size).toBe(CONFIG_FIELDS.length);
    for (const f of CONFIG_FIELDS) expect(f.flag).toBe(`--${f.env.slice("TRIBUTARY_".length).toLowerCase().replaceAll("_", "-")}`);
  });

  it("has a schema entry for every field of the default config", () => {
    const leaves: string[] = [];
    const walk = (node: object, prefix: string) => {
      for (const [key, value] of Object.entries(node)) {
        const path = prefix ? `${prefix}.${key}` : key;
        if (path === "file.fsync" || value === null || typeof value !== "object" || Array.isArray(value)) leaves.push(path);
        else walk(value, path);
      }
    };
    walk(DEFAULT_CONFIG, "");
    expect(new Set(CONFIG_FIELDS.map((f) => f.path))).toEqual(new Set(leaves));
  });

  it("accepts every default value through its own parser", () => {
    for (const f of CONFIG_FIELDS) {
      const value = f.path.split(".").reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], DEFAULT_CONFIG);
      expect(f.parse(value), f.path).toEqual({ ok: true, value });
    }
  });

  it("is documented: docs/configuration.md names every field, env var and flag (auth.* in docs/security.md)", () => {
    const docs = readFileSync(new URL("../../../docs/configuration.md", import.meta.url), "utf8");
    const security = readFileSync(new URL("../../../docs/security.md", import.meta.url), "utf8");
    for (const f of CONFIG_FIELDS) {
      const home = f.path.startsWith("auth.") ? security : docs;
      expect(home, f.path).toContain(`\`${f.path}\``);
      expect(home, f.env).toContain(`\`${f.env}\``);
      expect(home, f.flag).toContain(`\`${f.flag}\``);
    }
    for (const name of Object.keys(OTHER_ENV_VARS)) expect(docs).toContain(`\`${name}\``);
  });
});

describe("loadConfig: auth", () => {
  const secret = configFile("0123456789abcdef0123456789abcdef");

  it("reads auth fields from the file, env and flags", () => {
    const acl = configFile("topic read public/#\n");
    const { config, warnings } = loadConfig({
      configFile: configFile({ auth: { jwt: { secretFile: secret, audience: "tributary" } } }),
      env: { TRIBUTARY_AUTH_ACL_FILE: acl, TRIBUTARY_AUTH_JWT_ISSUER: "https://auth.example" },
      flags: { "auth.allowAnonymous": "true" },
    });
    expect(config.auth).toEqual({
      jwt: { secretFile: secret, publicKeyFile: null, jwksFile: null, audience: "tributary", issuer: "https://auth.example" },
      passwordFile: null,
      aclFile: acl,
      allowAnonymous: true,
    });
    expect(warnings).toEqual([]);
  });

  it("says which auth file is missing and how to create it", () => {
    const missing = join(dir, "no-such-secret");
    expect(problemsOf({ flags: { "auth.jwt.secretFile": missing } })).toEqual([
      `auth.jwt.secretFile: file ${missing} does not exist (from flag --auth-jwt-secret-file); create one with: openssl rand -base64 48 > ${missing}`,
    ]);
    expect(problemsOf({ env: { TRIBUTARY_AUTH_PASSWORD_FILE: missing } })[0]).toContain("tributary passwd");
  });

  it("refuses settings that cannot work together", () => {
    expect(problemsOf({ flags: { "auth.jwt.audience": "x" } })).toEqual([
      "auth.jwt.audience: set (from flag --auth-jwt-audience) but no JWT key is configured; set auth.jwt.secretFile, auth.jwt.publicKeyFile or auth.jwt.jwksFile",
    ]);
    expect(problemsOf({ flags: { "auth.aclFile": secret } })).toEqual([expect.stringMatching(/^auth\.aclFile: set .* but no client could connect/)]);
    expect(problemsOf({ configFile: configFile({ auth: { passwordFile: "" } }) })).toEqual([expect.stringMatching(/^auth\.passwordFile: expected a file path, or null for none, got ""/)]);
    expect(problemsOf({ configFile: configFile({ auth: { jwt: { secretfile: secret } } }) })).toEqual([expect.stringContaining('unknown key "auth.jwt.secretfile" at "auth.jwt" (did you mean "secretFile"?)')]);
  });

  it("warns about nothing when auth is not used", () => {
    expect(loadConfig({ env: {} }).warnings).toEqual([]);
  });
});

describe("units", () => {
  it.each([
    ["1500", 1500],
    ["250ms", 250],
    ["30s", 30_000],
    ["30m", 1_800_000],
    ["12h", 43_200_000],
    ["7d", 604_800_000],
    ["1w", 604_800_000],
    ["1.5h", 5_400_000],
  ] as const)("parses duration %s", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "abc", "-5", "7 days", "1.5ms", "5y"])("rejects duration %j", (text) => expect(parseDuration(text)).toBeUndefined());

  it.each([
    ["512", 512],
    ["64KiB", 65_536],
    ["16mib", 16_777_216],
    ["1GB", 1e9],
    ["500kb", 500_000],
  ] as const)("parses size %s", (text, bytes) => expect(parseByteSize(text)).toBe(bytes));

  it.each(["", "1TB", "-1", "x"])("rejects size %j", (text) => expect(parseByteSize(text)).toBeUndefined());
});
