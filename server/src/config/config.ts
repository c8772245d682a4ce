/**
 * Node configuration: the one typed shape every layer reads. Loading (file + env +
 * flags) and validation live in load-config.ts; defaults here.
 */
export interface TributaryConfig {
  /** Where the file engine keeps topics, segments and group offsets. */
  dataDir: string;
  /** Address both listeners bind. Default loopback (like Mosquitto 2): use 0.0.0.0 to expose. */
  host: string;
  /** HTTP + WebSocket (SDK, MQTT over WS at /mqtt, console) port; 0 = pick a free one. */
  port: number;
  /** "file" (embedded, one node) or "redis" (Redis Streams; several nodes share one Redis). */
  engine: "file" | "redis";
  redis: {
    /**
     * Where the Redis engine's data lives (docs/cluster.md): `redis://host:port`,
     * `redis+cluster://h1:p1,h2:p2`, `redis+sentinel://h1:p1,h2:p2/<name>`; query
     * parameters `prefix`, `replicas`, `waitTimeoutMs`. Required when engine is "redis".
     */
    url: string | null;
  };
  cluster: {
    /** A node whose heartbeat is older than this drops out of the registry (redis engine). */
    nodeTtlMs: number;
    /** Host other nodes and clients reach this node at (in /cluster); null = `host`, or the machine's hostname when `host` is a wildcard. */
    advertisedHost: string | null;
  };
  file: {
    /** fsync for acks 0/1 writes: "always", "never", or every N ms. acks=all always fsyncs. */
    fsync: "always" | "never" | { intervalMs: number };
    segmentBytes: number;
    segmentMs: number;
  };
  topics: {
    /** Create unknown topics on first publish/subscribe (MQTT relies on it). */
    autoCreate: boolean;
    defaultPartitions: number;
    defaultRetentionMs: number | null;
    defaultRetentionBytes: number | null;
  };
  limits: {
    /** Largest record (key + value + headers), bytes. */
    maxRecordBytes: number;
    /** Largest WebSocket frame or HTTP body, bytes. */
    maxFrameBytes: number;
    maxConnections: number;
    maxSubscriptionsPerConnection: number;
    /** Most topics on the node (internal topics included). */
    maxTopics: number;
    /** Most partitions one topic may have. */
    maxPartitionsPerTopic: number;
    /** Most partitions over all topics of the node (each holds open files). */
    maxPartitions: number;
    /** File engine: most segment files kept open at once (an LRU closes the least recently used; partitions are not file descriptors). */
    maxOpenSegmentFiles: number;
    /** Flow-control window a subscription starts with (messages in flight). */
    defaultCredit: number;
    maxCredit: number;
    /** A socket whose send buffer passes this many bytes is paused... */
    maxBufferedBytes: number;
    /** ...and dropped with SLOW_CONSUMER if it stays over it this long. */
    slowConsumerGraceMs: number;
    /** Bounded queue of publishes waiting for the log, per connection. */
    maxPendingPublishes: number;
    /** WebSocket + MQTT connections from one IP address (IPv6: one /64); 0 = no limit (docs/security.md#limits). */
    maxConnectionsPerIp: number;
    /** WebSocket + MQTT connections of one authenticated (non-anonymous) identity; 0 = no limit. */
    maxConnectionsPerIdentity: number;
    /** New connections per second from one IP address (token bucket); 0 = no limit. */
    connectRatePerIp: number;
    /** Bucket size of connectRatePerIp; 0 = the rate. */
    connectBurstPerIp: number;
    /** HTTP API requests per second from one IP address (token bucket; /healthz, /readyz and /metrics not counted); 0 = no limit. */
    httpRequestRatePerIp: number;
    /** Bucket size of httpRequestRatePerIp; 0 = the rate. */
    httpRequestBurstPerIp: number;
    /** Failed authentications from one IP address before it is refused for authBlockMs (earlier refusals are delayed); 0 = off. */
    authFailuresBeforeBlock: number;
    /** How long a blocked IP address is refused, and how long failures are remembered. */
    authBlockMs: number;
    /** Messages per second per identity over all its connections; 0 = no limit. */
    publishRatePerIdentity: number;
    /** Payload bytes per second per identity; 0 = no limit. */
    publishBytesPerIdentity: number;
  };
  http: {
    /**
     * Origins (`https://app.example.com`, "*" for any) whose pages may call the HTTP API
     * cross-origin: preflights are answered and responses carry Access-Control-Allow-Origin
     * for them only. Empty (default): no cross-origin access.
     */
    corsOrigins: string[];
  };
  ws: {
    /**
     * Browser origins allowed to open the /ws and /mqtt WebSockets besides the node's own
     * (an `Origin` whose host:port is the request's `Host`); clients sending no `Origin`
     * (not browsers) are always allowed. Others get HTTP 403 before the upgrade.
     */
    allowedOrigins: string[];
  };
  mqtt: {
    enabled: boolean;
    /** MQTT over TCP port; 0 = pick a free one. */
    port: number;
    /** MQTTS (MQTT over TLS) port, used when `tls` is configured; 0 = pick a free one. */
    tlsPort: number;
    maxPacketBytes: number;
    /** Receive Maximum the broker grants clients and uses towards them. */
    receiveMaximum: number;
    /** Most retained messages the node keeps (topics with one); 0 = no limit. A retained PUBLISH past it is refused (docs/mqtt.md, "Retained messages"). */
    maxRetainedMessages: number;
    /** Most bytes (topic + payload) of all retained messages together; 0 = no limit. */
    maxRetainedBytes: number;
    /** Longest keep-alive a client may ask for, seconds (0 = no limit). */
    maxKeepAlive: number;
    /** Cap on MQTT 5 session expiry interval, seconds. */
    maxSessionExpiry: number;
    /** Session expiry for MQTT 3.1.1 persistent sessions (clean session = false), seconds. */
    v3SessionExpiry: number;
  };
  log: { level: "debug" | "info" | "warn" | "error" };
  /** Prometheus metrics at GET /metrics (docs/monitoring.md). */
  metrics: {
    /** Serve /metrics and count traffic per topic, delivery latency and storage timings; false = none of that per-message work. */
    enabled: boolean;
    /** Topics that get their own `topic` label value; later ones are summed as `_other` (bounded cardinality). */
    maxTopicLabels: number;
  };
  /**
   * TLS for every listener (docs/security.md#tls): with `certFile` and `keyFile` set, the
   * HTTP/WebSocket port serves HTTPS/WSS (uWS SSLApp) and MQTTS listens on
   * `mqtt.tlsPort`. PEM files, reloaded on SIGHUP and when they change.
   */
  tls: {
    /** PEM server certificate (leaf first; may be followed by its intermediates). */
    certFile: string | null;
    /** PEM private key of the certificate (may be encrypted: see passphraseFile). */
    keyFile: string | null;
    /** PEM intermediate CA certificates sent after the leaf (the chain); not used to verify clients. */
    caFile: string | null;
    /** File holding the passphrase of an encrypted keyFile (trailing newline ignored). */
    passphraseFile: string | null;
    /** Refuse plain listeners: no MQTT over plain TCP (HTTP is already HTTPS with TLS). */
    require: boolean;
  };
  /**
   * Identities and permissions (docs/security.md). Nothing set = "open" mode: every client
   * is anonymous with full access, as before authentication existed, and the node binds
   * only loopback unless `allowAnonymous` (auth/exposure.ts). Validated here, enforced by
   * every gateway through the node's AuthService.
   */
  auth: {
    jwt: {
      /** File holding the HMAC secret (HS256/384/512), at least 32 bytes; trailing newline ignored. */
      secretFile: string | null;
      /** PEM file with one or more public keys or certificates (RS*, PS*, ES*, EdDSA). */
      publicKeyFile: string | null;
      /** JWKS file (`{"keys": [...]}`), public keys selected by `kid`; reloaded on change. */
      jwksFile: string | null;
      /** Required `aud` of tokens; null = not checked. */
      audience: string | null;
      /** Required `iss` of tokens; null = not checked. */
      issuer: string | null;
    };
    /** MQTT password file, Mosquitto's `user:hash` format (argon2id; Mosquitto's $7$/$6$ read). */
    passwordFile: string | null;
    /** Mosquitto `acl_file` for password-file users and anonymous clients. */
    aclFile: string | null;
    /** Accept clients without credentials when authentication is configured, or on non-loopback listeners when it is not. */
    allowAnonymous: boolean;
  };
}

export const DEFAULT_CONFIG: TributaryConfig = {
  dataDir: "./data",
  host: "127.0.0.1",
  port: 8080,
  engine: "file",
  redis: { url: null },
  cluster: { nodeTtlMs: 10_000, advertisedHost: null },
  file: { fsync: { intervalMs: 1000 }, segmentBytes: 64 * 1024 * 1024, segmentMs: 7 * 24 * 3600 * 1000 },
  topics: { autoCreate: true, defaultPartitions: 1, defaultRetentionMs: 7 * 24 * 3600 * 1000, defaultRetentionBytes: null },
  limits: {
    maxRecordBytes: 1024 * 1024,
    maxFrameBytes: 2 * 1024 * 1024,
    maxConnections: 100_000,
    maxSubscriptionsPerConnection: 100,
    maxTopics: 10_000,
    maxPartitionsPerTopic: 1000,
    maxPartitions: 10_000,
    maxOpenSegmentFiles: 512,
    defaultCredit: 1000,
    maxCredit: 100_000,
    maxBufferedBytes: 4 * 1024 * 1024,
    slowConsumerGraceMs: 5000,
    maxPendingPublishes: 1000,
    maxConnectionsPerIp: 0,
    maxConnectionsPerIdentity: 0,
    connectRatePerIp: 0,
    connectBurstPerIp: 0,
    httpRequestRatePerIp: 0,
    httpRequestBurstPerIp: 0,
    authFailuresBeforeBlock: 0,
    authBlockMs: 60_000,
    publishRatePerIdentity: 0,
    publishBytesPerIdentity: 0,
  },
  http: { corsOrigins: [] },
  ws: { allowedOrigins: [] },
  mqtt: {
    enabled: true,
    port: 1883,
    tlsPort: 8883,
    maxPacketBytes: 1024 * 1024,
    receiveMaximum: 100,
    maxRetainedMessages: 1_000_000,
    maxRetainedBytes: 256 * 1024 ** 2,
    maxKeepAlive: 0,
    maxSessionExpiry: 7 * 24 * 3600,
    v3SessionExpiry: 24 * 3600,
  },
  log: { level: "info" },
  metrics: { enabled: true, maxTopicLabels: 50 },
  tls: { certFile: null, keyFile: null, caFile: null, passphraseFile: null, require: false },
  auth: {
    jwt: { secretFile: null, publicKeyFile: null, jwksFile: null, audience: null, issuer: null },
    passwordFile: null,
    aclFile: null,
    allowAnonymous: false,
  },
};
