/**
 * Every configuration field, once: its path in TributaryConfig, its env var and flag, a
 * one-line doc, and a parser that says what it expects. load-config.ts, the `tributary
 * start` flags and docs/configuration.md are all driven by this table (a test checks the
 * docs list every field).
 *
 * Naming: field `limits.maxRecordBytes` ↔ env `TRIBUTARY_MAX_RECORD_BYTES` ↔ flag
 * `--max-record-bytes`. Values from env and flags are strings; from the JSON file, JSON.
 */
import { parseRedisUrl } from "../redis/redis-url.ts";
import { parseByteSize, parseDuration } from "./units.ts";

export type Parsed = { ok: true; value: unknown } | { ok: false };

export interface FieldSpec {
  /** Dotted path in TributaryConfig, e.g. "limits.maxRecordBytes". */
  path: string;
  /** Env var, e.g. "TRIBUTARY_MAX_RECORD_BYTES". */
  env: string;
  /** Long flag of `tributary start`, e.g. "--max-record-bytes". */
  flag: string;
  doc: string;
  /** What a valid value looks like, for error messages: "an integer 0..65535". */
  expected: string;
  parse(raw: unknown): Parsed;
}

const ok = (value: unknown): Parsed => ({ ok: true, value });
const bad: Parsed = { ok: false };

type Unit = "count" | "ms" | "bytes" | "seconds";

function integer(min: number, max: number, unit: Unit = "count"): Pick<FieldSpec, "expected" | "parse"> {
  const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`;
  const expected =
    unit === "ms"
      ? `a duration ${range} ms (a number of ms, or 250ms/30s/5m/12h/7d)`
      : unit === "bytes"
        ? `a size ${range} bytes (a number of bytes, or 64KiB/16MiB/1GiB/500KB)`
        : unit === "seconds"
          ? `an integer ${range} (seconds)`
          : `an integer ${range}`;
  return {
    expected,
    parse(raw) {
      let n: number | undefined;
      if (typeof raw === "number") n = raw;
      else if (typeof raw === "string") {
        n = unit === "ms" ? parseDuration(raw) : unit === "bytes" ? parseByteSize(raw) : /^\s*\d+\s*$/.test(raw) ? Number(raw) : undefined;
      }
      return n !== undefined && Number.isSafeInteger(n) && n >= min && n <= max ? ok(n) : bad;
    },
  };
}

const NULL_WORDS = new Set(["", "none", "null", "unlimited", "forever", "off"]);

function nullable(inner: Pick<FieldSpec, "expected" | "parse">): Pick<FieldSpec, "expected" | "parse"> {
  return {
    expected: `${inner.expected}, or null/"none" for no limit`,
    parse(raw) {
      if (raw === null || (typeof raw === "string" && NULL_WORDS.has(raw.trim().toLowerCase()))) return ok(null);
      return inner.parse(raw);
    },
  };
}

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off"]);

const boolean: Pick<FieldSpec, "expected" | "parse"> = {
  expected: "a boolean (true/false, 1/0, yes/no, on/off)",
  parse(raw) {
    if (typeof raw === "boolean") return ok(raw);
    if (typeof raw === "string") {
      const word = raw.trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return ok(true);
      if (FALSE_WORDS.has(word)) return ok(false);
    }
    return bad;
  },
};

function oneOf(values: readonly string[]): Pick<FieldSpec, "expected" | "parse"> {
  return {
    expected: `one of ${values.map((v) => `"${v}"`).join(", ")}`,
    parse: (raw) => (typeof raw === "string" && values.includes(raw) ? ok(raw) : bad),
  };
}

const nonEmptyString: Pick<FieldSpec, "expected" | "parse"> = {
  expected: "a non-empty string",
  parse: (raw) => (typeof raw === "string" && raw.trim() !== "" ? ok(raw) : bad),
};

const fsyncInterval = integer(1, 3_600_000, "ms");
const fsync: Pick<FieldSpec, "expected" | "parse"> = {
  expected: `"always", "never", or an interval 1..3600000 ms (1000, "1s", or {"intervalMs": 1000})`,
  parse(raw) {
    if (raw === "always" || raw === "never") return ok(raw);
    if (raw !== null && typeof raw === "object" && !Array.isArray(raw)) {
      const keys = Object.keys(raw);
      if (keys.length !== 1 || keys[0] !== "intervalMs") return bad;
      raw = (raw as { intervalMs: unknown }).intervalMs;
    }
    const interval = fsyncInterval.parse(raw);
    return interval.ok ? ok({ intervalMs: interval.value }) : bad;
  },
};

const MAX = Number.MAX_SAFE_INTEGER;

const optionalHost: Pick<FieldSpec, "expected" | "parse"> = {
  expected: "a host name or address (no scheme, no port), or null for the default",
  parse(raw) {
    if (raw === null) return ok(null);
    return typeof raw === "string" && /^[^\s/:]+$|^\[?[0-9a-fA-F:]+\]?$/.test(raw.trim()) ? ok(raw.trim().replace(/^\[|\]$/g, "")) : bad;
  },
};

const redisUrl: Pick<FieldSpec, "expected" | "parse"> = {
  expected: "a Redis URL: redis://host:port, rediss://host:port, redis+cluster://h1:p1,h2:p2 or redis+sentinel://h1:p1,h2:p2/<name>",
  parse(raw) {
    if (raw === null) return ok(null);
    if (typeof raw !== "string") return bad;
    try {
      parseRedisUrl(raw);
      return ok(raw.trim());
    } catch {
      return bad;
    }
  },
};

/**
 * A list of browser origins (`scheme://host[:port]`, http or https), or "*" for any: a JSON
 * array in the file, comma-separated in env and flags. Each is stored as `URL.origin`
 * (lower-case host, no default port), which is how browsers send `Origin`.
 */
const originList: Pick<FieldSpec, "expected" | "parse"> = {
  expected: 'a list of origins like "https://app.example.com" or "http://localhost:3000" (a JSON array, or comma-separated), or "*" for any',
  parse(raw) {
    const items = typeof raw === "string" ? raw.split(",").map((s) => s.trim()).filter((s) => s !== "") : raw;
    if (!Array.isArray(items)) return bad;
    const origins: string[] = [];
    for (const item of items) {
      const origin = typeof item === "string" ? normalizeOrigin(item.trim()) : null;
      if (origin === null) return bad;
      if (!origins.includes(origin)) origins.push(origin);
    }
    return ok(origins);
  },
};

/** `URL.origin` of `scheme://host[:port]` (http/https, nothing after the host but an optional "/"), "*" as is, else null. */
export function normalizeOrigin(raw: string): string | null {
  if (raw === "*") return raw;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (url.username || url.password || url.search || url.hash || url.pathname !== "/" || url.host.includes("*")) return null;
  return url.origin;
}

const optionalFile: Pick<FieldSpec, "expected" | "parse"> = {
  expected: "a file path, or null for none",
  parse(raw) {
    if (raw === null) return ok(null);
    return typeof raw === "string" && raw.trim() !== "" && !raw.includes("\u0000") ? ok(raw.trim()) : bad;
  },
};

const optionalString: Pick<FieldSpec, "expected" | "parse"> = {
  expected: "a non-empty string, or null for not checked",
  parse(raw) {
    if (raw === null) return ok(null);
    return typeof raw === "string" && raw.trim() !== "" ? ok(raw.trim()) : bad;
  },
};

function field(path: string, name: string, doc: string, kind: Pick<FieldSpec, "expected" | "parse">): FieldSpec {
  return { path, env: `TRIBUTARY_${name}`, flag: `--${name.toLowerCase().replaceAll("_", "-")}`, doc, ...kind };
}

export const CONFIG_FIELDS: readonly FieldSpec[] = [
  field("dataDir", "DATA_DIR", "Directory of the file engine (topics, segments, group offsets).", nonEmptyString),
  field("host", "HOST", "Address both listeners bind; 0.0.0.0 to expose beyond loopback.", nonEmptyString),
  field("port", "PORT", "HTTP + WebSocket port (API, SDK, MQTT over WS at /mqtt, console); 0 = a free port.", integer(0, 65535)),
  field("engine", "ENGINE", 'Log engine: "file" (embedded, one node) or "redis" (several nodes on one Redis; needs redis.url).', oneOf(["file", "redis"])),
  field("redis.url", "REDIS_URL", "Redis of the redis engine (short flag --redis): redis://host:port, redis+cluster://h1:p1,h2:p2 or redis+sentinel://h1:p1,h2:p2/<name> (query: prefix, replicas, waitTimeoutMs).", redisUrl),
  field("cluster.nodeTtlMs", "NODE_TTL_MS", "A node silent for this long drops out of the cluster registry (heartbeat every third of it).", integer(300, 3_600_000, "ms")),
  field("cluster.advertisedHost", "ADVERTISED_HOST", "Host clients and other nodes reach this node at, as listed by /cluster; default host (hostname when host is 0.0.0.0/::).", optionalHost),
  field("file.fsync", "FSYNC", "fsync policy for acks 0/1 writes; acks=all always fsyncs before replying.", fsync),
  field("file.segmentBytes", "SEGMENT_BYTES", "Roll a partition's active segment at this size.", integer(1024, 1024 ** 4, "bytes")),
  field("file.segmentMs", "SEGMENT_MS", "Roll a partition's active segment at this age.", integer(1000, MAX, "ms")),
  field("topics.autoCreate", "AUTO_CREATE_TOPICS", "Create unknown topics on first publish/subscribe (MQTT relies on it).", boolean),
  field("topics.defaultPartitions", "DEFAULT_PARTITIONS", "Partitions of auto-created topics and of topics created without a count.", integer(1, 10_000)),
  field("topics.defaultRetentionMs", "DEFAULT_RETENTION_MS", "Time retention of new topics.", nullable(integer(1, MAX, "ms"))),
  field("topics.defaultRetentionBytes", "DEFAULT_RETENTION_BYTES", "Size retention (per partition) of new topics.", nullable(integer(1, MAX, "bytes"))),
  field("limits.maxRecordBytes", "MAX_RECORD_BYTES", "Largest record (key + value + headers).", integer(1, 1024 ** 3, "bytes")),
  field("limits.maxFrameBytes", "MAX_FRAME_BYTES", "Largest WebSocket frame or HTTP request body (413 FRAME_TOO_LARGE above).", integer(1024, 1024 ** 3, "bytes")),
  field("limits.maxConnections", "MAX_CONNECTIONS", "Most concurrent WebSocket + MQTT connections.", integer(1, MAX)),
  field("limits.maxSubscriptionsPerConnection", "MAX_SUBSCRIPTIONS_PER_CONNECTION", "Most subscriptions one connection may hold.", integer(1, MAX)),
  field("limits.maxTopics", "MAX_TOPICS", "Most topics on the node, internal ones included (creating more fails with POLICY_VIOLATION).", integer(1, MAX)),
  field("limits.maxPartitionsPerTopic", "MAX_PARTITIONS_PER_TOPIC", "Most partitions one topic may have.", integer(1, 10_000)),
  field("limits.maxPartitions", "MAX_PARTITIONS", "Most partitions over all topics of the node (each keeps files open).", integer(1, MAX)),
  field("limits.maxOpenSegmentFiles", "MAX_OPEN_SEGMENT_FILES", "File engine: most segment files open at once; the least recently used are closed (and reopened on use) past it.", integer(16, MAX)),
  field("limits.defaultCredit", "DEFAULT_CREDIT", "Flow-control window (messages in flight) a subscription starts with.", integer(1, MAX)),
  field("limits.maxCredit", "MAX_CREDIT", "Largest flow-control window a client may grant.", integer(1, MAX)),
  field("limits.maxBufferedBytes", "MAX_BUFFERED_BYTES", "A socket whose send buffer passes this is paused.", integer(1024, MAX, "bytes")),
  field("limits.slowConsumerGraceMs", "SLOW_CONSUMER_GRACE_MS", "...and dropped with SLOW_CONSUMER if it stays over it this long.", integer(0, MAX, "ms")),
  field("limits.maxPendingPublishes", "MAX_PENDING_PUBLISHES", "Publishes waiting for the log, per connection (QUEUE_FULL above).", integer(1, MAX)),
  // Limits tied to IP and identity (docs/security.md#limits); 0 = off.
  field("limits.maxConnectionsPerIp", "MAX_CONNECTIONS_PER_IP", "Most WebSocket + MQTT connections from one IP address (IPv6: one /64); 0 = no limit.", integer(0, MAX)),
  field("limits.maxConnectionsPerIdentity", "MAX_CONNECTIONS_PER_IDENTITY", "Most WebSocket + MQTT connections of one authenticated identity (token sub, password-file user); 0 = no limit.", integer(0, MAX)),
  field("limits.connectRatePerIp", "CONNECT_RATE_PER_IP", "New WebSocket + MQTT connections per second from one IP address (token bucket); 0 = no limit.", integer(0, MAX)),
  field("limits.connectBurstPerIp", "CONNECT_BURST_PER_IP", "Connections one IP address may open at once before connectRatePerIp applies; 0 = the rate (one second's worth).", integer(0, MAX)),
  field("limits.httpRequestRatePerIp", "HTTP_REQUEST_RATE_PER_IP", "HTTP API requests per second from one IP address (token bucket; 429 QUEUE_FULL with Retry-After above; /healthz, /readyz and /metrics not counted); 0 = no limit.", integer(0, MAX)),
  field("limits.httpRequestBurstPerIp", "HTTP_REQUEST_BURST_PER_IP", "HTTP requests one IP address may send at once before httpRequestRatePerIp applies; 0 = the rate (one second's worth).", integer(0, MAX)),
  field("limits.authFailuresBeforeBlock", "AUTH_FAILURES_BEFORE_BLOCK", "Failed authentications from one IP address (within authBlockMs of each other) after which it is refused for authBlockMs; before that each refusal is delayed more; 0 = off.", integer(0, MAX)),
  field("limits.authBlockMs", "AUTH_BLOCK_MS", "How long an IP address that reached authFailuresBeforeBlock is refused, and how long its failures are remembered.", integer(1000, MAX, "ms")),
  field("limits.publishRatePerIdentity", "PUBLISH_RATE_PER_IDENTITY", "Messages per second one identity may publish over all its connections (token bucket, burst one second's worth); 0 = no limit.", integer(0, MAX)),
  field("limits.publishBytesPerIdentity", "PUBLISH_BYTES_PER_IDENTITY", "Payload bytes per second one identity may publish (token bucket, burst one second's worth or one largest record); 0 = no limit.", integer(0, MAX, "bytes")),
  field("http.corsOrigins", "CORS_ORIGINS", "Web pages on these origins may call the HTTP API (CORS); default none: no cross-origin access.", originList),
  field("ws.allowedOrigins", "WS_ALLOWED_ORIGINS", "Browser origins besides the node's own allowed to open /ws and /mqtt WebSockets (others get 403).", originList),
  field("mqtt.enabled", "MQTT_ENABLED", "Serve MQTT over TCP.", boolean),
  field("mqtt.port", "MQTT_PORT", "MQTT over TCP port; 0 = a free port.", integer(0, 65535)),
  field("mqtt.tlsPort", "MQTT_TLS_PORT", "MQTTS (MQTT over TLS) port, used when tls.certFile is set; 0 = a free port.", integer(0, 65535)),
  field("mqtt.maxPacketBytes", "MQTT_MAX_PACKET_BYTES", "Largest MQTT packet accepted.", integer(64, 256 * 1024 ** 2, "bytes")),
  field("mqtt.receiveMaximum", "MQTT_RECEIVE_MAXIMUM", "MQTT 5 Receive Maximum granted to clients and used towards them.", integer(1, 65535)),
  field("mqtt.maxRetainedMessages", "MQTT_MAX_RETAINED_MESSAGES", "Most retained messages kept; a retained PUBLISH past it is refused (MQTT 5 QoS 1/2: 0x97) or stored without retaining; 0 = no limit.", integer(0, MAX)),
  field("mqtt.maxRetainedBytes", "MQTT_MAX_RETAINED_BYTES", "Most bytes (topic + payload) of all retained messages together, refused past it as maxRetainedMessages; 0 = no limit.", integer(0, MAX, "bytes")),
  field("mqtt.maxKeepAlive", "MQTT_MAX_KEEP_ALIVE", "Longest keep-alive a client may ask for, seconds; 0 = no limit.", integer(0, 65535, "seconds")),
  field("mqtt.maxSessionExpiry", "MQTT_MAX_SESSION_EXPIRY", "Cap on MQTT 5 session expiry interval, seconds.", integer(0, 4_294_967_295, "seconds")),
  field("mqtt.v3SessionExpiry", "MQTT_V3_SESSION_EXPIRY", "Session expiry of MQTT 3.1.1 persistent sessions, seconds.", integer(0, 4_294_967_295, "seconds")),
  field("log.level", "LOG_LEVEL", "Log level (JSON lines on stderr).", oneOf(["debug", "info", "warn", "error"])),
  field("metrics.enabled", "METRICS_ENABLED", "Serve Prometheus metrics at GET /metrics (false: no /metrics and no per-message metric work).", boolean),
  field("metrics.maxTopicLabels", "METRICS_MAX_TOPIC_LABELS", "Topics that get their own topic label in /metrics; later topics are summed as _other.", integer(0, 10_000)),
  // tls.*: docs/security.md#tls. Files checked here (exist, readable); PEM content and key/cert match when the node opens them.
  field("tls.certFile", "TLS_CERT_FILE", "PEM server certificate: HTTPS/WSS on port, MQTTS on mqtt.tlsPort (needs tls.keyFile).", optionalFile),
  field("tls.keyFile", "TLS_KEY_FILE", "PEM private key of tls.certFile.", optionalFile),
  field("tls.caFile", "TLS_CA_FILE", "PEM intermediate CA certificates sent after the server certificate (the chain).", optionalFile),
  field("tls.passphraseFile", "TLS_PASSPHRASE_FILE", "File with the passphrase of an encrypted tls.keyFile.", optionalFile),
  field("tls.require", "TLS_REQUIRE", "Refuse plain listeners: no MQTT over plain TCP (needs tls.certFile).", boolean),
  // auth.*: docs/security.md. Validated here, opened by the node (AuthService) and enforced by the gateways.
  field("auth.jwt.secretFile", "AUTH_JWT_SECRET_FILE", "File with the HMAC secret for HS256/384/512 tokens (>= 32 bytes; openssl rand -base64 48 > file).", optionalFile),
  field("auth.jwt.publicKeyFile", "AUTH_JWT_PUBLIC_KEY_FILE", "PEM file with the public key(s) of RS/PS/ES/EdDSA tokens.", optionalFile),
  field("auth.jwt.jwksFile", "AUTH_JWT_JWKS_FILE", "JWKS file ({\"keys\": [...]}) of token public keys, reloaded on change.", optionalFile),
  field("auth.jwt.audience", "AUTH_JWT_AUDIENCE", "Required aud claim of tokens.", optionalString),
  field("auth.jwt.issuer", "AUTH_JWT_ISSUER", "Required iss claim of tokens.", optionalString),
  field("auth.passwordFile", "AUTH_PASSWORD_FILE", "MQTT password file, user:hash lines (tributary passwd; Mosquitto's files work).", optionalFile),
  field("auth.aclFile", "AUTH_ACL_FILE", "Mosquitto acl_file for password-file users and anonymous clients.", optionalFile),
  field("auth.allowAnonymous", "ALLOW_ANONYMOUS", "Accept clients without credentials (with auth configured), or listen beyond loopback with no auth configured.", boolean),
];

/** Env vars the `tributary` command reads that are not config fields. */
export const OTHER_ENV_VARS: Readonly<Record<string, string>> = {
  TRIBUTARY_CONFIG: "Path of the JSON config file (like --config).",
  TRIBUTARY_URL: "Server URL of the client commands (topics, produce, consume); default http://127.0.0.1:8080.",
};

export const FIELDS_BY_PATH: ReadonlyMap<string, FieldSpec> = new Map(CONFIG_FIELDS.map((f) => [f.path, f]));
