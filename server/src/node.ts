/**
 * A Tributary node: one log engine, one Broker, one uWebSockets.js app serving the HTTP
 * API, /metrics, the SDK WebSocket gateway, MQTT over WebSocket and the web console, plus
 * the MQTT-over-TCP listener. With `tls` configured the app is a uWS SSLApp (HTTPS, WSS)
 * and MQTTS listens too; `tls.require` drops the plain MQTT listener (docs/security.md#tls).
 *
 * Lifecycle:
 *   startNode(config) → checks the local-only rule (checkExposure: no auth configured →
 *   loopback only, unless auth.allowAnonymous) and opens the auth layer (every auth file
 *   read and parsed), opens the engine (recovery), mounts every gateway, listens on
 *   host:port (0 = a free port), registers in the cluster registry (a TTL heartbeat in
 *   Redis with the Redis engine), then reports ready (/readyz 200).
 *   node.close() → not ready (/readyz 503), "draining" in the registry → stops accepting
 *   connections → closes the gateways (clients are told goodbye, long-polls end) →
 *   deregisters → engine.close() (flush + fsync)
 *   → idempotent; a second call returns the same promise.
 */
import { randomUUID } from "node:crypto";
import { effectiveMaxConnections, openFileLimit } from "./config/fd-limit.ts";
import { ConnectionLimit } from "./gateway/connection-limit.ts";
import { AuthService, checkExposure } from "./auth/index.ts";
import { Broker } from "./broker/broker.ts";
import type { TributaryConfig } from "./config/config.ts";
import { TributaryError, toTributaryError } from "./errors.ts";
import type { Gateway, GatewayContext } from "./gateway/gateway-context.ts";
import { attachConsole } from "./gateway/http/console.ts";
import { registerGroupRoutes } from "./gateway/http/groups-routes.ts";
import { registerPresenceRoutes } from "./gateway/http/presence-routes.ts";
import { GroupCoordinator, PresenceRegistry, type GroupCoordinatorOptions, type PresenceRegistryOptions } from "./groups/index.ts";
import { attachHttpApi } from "./gateway/http/http-api.ts";
import { attachMetricsRoute } from "./gateway/http/metrics-route.ts";
import { attachWsGateway } from "./gateway/ws/ws-gateway.ts";
import { startMqttGateway } from "./gateway/mqtt/mqtt-gateway.ts";
import { TlsCertificates } from "./gateway/tls/tls-certificates.ts";
import { tlsConfigured } from "./gateway/tls/tls-material.ts";
import { createUwsApp } from "./gateway/tls/uws-app.ts";
import type { LogEngine } from "./log/log-engine.ts";
import { createLogger, type Logger } from "./logger.ts";
import { Metrics } from "./metrics/metrics.ts";
import { FileLogEngine } from "./log/file/file-log-engine.ts";
import { RedisLogEngine } from "./log/redis/redis-log-engine.ts";
import { ClusterGroupCoordinator } from "./cluster/cluster-group-coordinator.ts";
import type { NodeRegistry } from "./cluster/node-registry.ts";
import { advertisedUrls, openNodeRegistry } from "./cluster/open-node-registry.ts";
import { RedisErrorReporter } from "./redis/redis-error-reporter.ts";
import { parseRedisUrl } from "./redis/redis-url.ts";

export interface StartNodeOptions {
  /** Use this engine instead of opening one from `config` (the node then closes it too). */
  engine?: LogEngine;
  /** Default: JSON lines on stderr at `config.log.level`. */
  logger?: Logger;
  /** Default: a random id. */
  nodeId?: string;
  /** Default: a registry with Node's default process metrics. */
  metrics?: Metrics;
  /** Consumer-group coordinator settings (session timeout bounds, rebalance timeout); engine and partition counts come from the node. */
  groups?: Omit<GroupCoordinatorOptions, "engine" | "partitionCount">;
  /** Presence settings (e.g. `sessionTimeoutMs`, default 15 s). */
  presence?: Omit<PresenceRegistryOptions, "instrumentation">;
}

export interface TributaryNode {
  readonly nodeId: string;
  /** The HTTP/WebSocket port actually bound (resolved when config.port is 0). */
  readonly httpPort: number;
  /** The MQTT TCP port actually bound; 0 when MQTT is disabled or not mounted, or with `tls.require`. */
  readonly mqttPort: number;
  /** The MQTTS port actually bound; 0 without TLS or MQTT. */
  readonly mqttsPort: number;
  /** `http://<host>:<httpPort>`, or `https://…` with TLS (IPv6 hosts bracketed). */
  readonly url: string;
  /** The TLS certificate in force (null without TLS); `tls.reload()` re-reads its files (SIGHUP). */
  readonly tls: TlsCertificates | null;
  readonly config: TributaryConfig;
  readonly broker: Broker;
  readonly engine: LogEngine;
  /** Consumer groups (docs/consumer-groups.md). */
  readonly groups: GroupCoordinator;
  /** Who is subscribed where. */
  readonly presence: PresenceRegistry;
  /** Cluster membership (server/src/cluster/): the live nodes; with the file engine, this one. */
  readonly cluster: NodeRegistry;
  /** Identities and permissions (docs/security.md); `auth.reload()` re-reads its files (SIGHUP). */
  readonly auth: AuthService;
  /** Graceful shutdown: see the module comment. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the log engine configured in `config`: the file engine in `dataDir`, or the Redis engine
 * at `redis.url` (its background failures logged to `log` and counted in `metrics`).
 */
export async function openEngine(config: TributaryConfig, log: Logger, metrics?: Metrics): Promise<LogEngine> {
  switch (config.engine) {
    case "file":
      return FileLogEngine.open({
        dataDir: config.dataDir,
        fsync: config.file.fsync,
        segmentBytes: config.file.segmentBytes,
        segmentMs: config.file.segmentMs,
        maxOpenSegmentFiles: config.limits.maxOpenSegmentFiles,
        maxBatchBytes: Math.max(8 << 20, 2 * config.limits.maxFrameBytes),
        onWarning: (message, context) =>
          log.warn(context.task === "compaction" ? "log.compaction_failed" : context.task === "fsync" ? "log.fsync_failed" : "log.recovery", { message, ...context }),
        onBackgroundError: (task) => metrics?.backgroundErrors.inc({ task }),
      });
    case "redis":
      if (!config.redis.url) throw new TributaryError("INVALID_CONFIG", 'redis.url: required when engine is "redis" (--redis <url>, env TRIBUTARY_REDIS_URL)');
      return RedisLogEngine.connect({ maxBatchBytes: Math.max(8 << 20, 2 * config.limits.maxFrameBytes), ...parseRedisUrl(config.redis.url), reporter: new RedisErrorReporter(log, metrics) });
    default:
      throw new TributaryError("INVALID_CONFIG", `engine: unknown log engine "${String(config.engine)}"`);
  }
}

export async function startNode(config: TributaryConfig, options: StartNodeOptions = {}): Promise<TributaryNode> {
  const log = options.logger ?? createLogger(config.log.level);
  const nodeId = options.nodeId ?? randomUUID();
  const metrics = options.metrics ?? new Metrics({ enabled: config.metrics.enabled, maxTopicLabels: config.metrics.maxTopicLabels });
  // Mosquitto 2's local-only mode: with no authentication configured, loopback only unless allowAnonymous.
  const exposure = checkExposure(config.auth, [config.host]);
  if (!exposure.ok) {
    await options.engine?.close().catch((closeErr: unknown) => log.warn("node.engine_close_failed", { error: String(closeErr) })); // the refusal below is what matters
    throw new TributaryError("INVALID_CONFIG", exposure.problem, { host: config.host });
  }
  if (exposure.warning) log.warn("auth.anonymous_exposed", { host: config.host, warning: exposure.warning });
  // TLS files read and checked (PEM, key matches certificate) before anything listens: INVALID_CONFIG saying what to fix.
  let certs: TlsCertificates | null = null;
  try {
    if (tlsConfigured(config.tls)) certs = await TlsCertificates.open(config.tls, log);
  } catch (err) {
    await options.engine?.close().catch((closeErr: unknown) => log.warn("node.engine_close_failed", { error: String(closeErr) })); // the TLS error below is what matters
    throw err;
  }
  let auth: AuthService;
  try {
    auth = await AuthService.open(config.auth, { logger: log });
  } catch (err) {
    certs?.close();
    await options.engine?.close().catch((closeErr: unknown) => log.warn("node.engine_close_failed", { error: String(closeErr) })); // the auth error below is what matters
    throw err;
  }
  // A watched file (or SIGHUP's reload) whose new content does not parse: logged by AuthService (auth.reload_failed), counted here.
  auth.on("change", (change) => {
    if (change.error) metrics.backgroundErrors.inc({ task: "auth-reload" });
  });
  log.info("auth.mode", { mode: auth.mode, allowAnonymous: config.auth.allowAnonymous });
  let engine: LogEngine;
  try {
    engine = options.engine ?? (await openEngine(config, log, metrics));
  } catch (err) {
    auth.close();
    certs?.close();
    throw err;
  }
  // Redis connections, leases, heartbeats and node messages: failures nobody awaits are logged and counted.
  const redisErrors = new RedisErrorReporter(log, metrics);
  const broker = new Broker(engine, {
    autoCreateTopics: config.topics.autoCreate,
    topicDefaults: {
      partitions: config.topics.defaultPartitions,
      retentionMs: config.topics.defaultRetentionMs,
      retentionBytes: config.topics.defaultRetentionBytes,
    },
    maxRecordBytes: config.limits.maxRecordBytes,
    quotas: { maxTopics: config.limits.maxTopics, maxPartitionsPerTopic: config.limits.maxPartitionsPerTopic, maxPartitions: config.limits.maxPartitions },
    metrics,
  });
  const groupOptions: GroupCoordinatorOptions = {
    ...options.groups,
    engine,
    partitionCount: (topic) => broker.partitions(topic),
    onError: (err, group, task) => log.warn("group.error", { group, task, code: toTributaryError(err).code, message: toTributaryError(err).message }),
  };
  // Redis engine: groups are shared by every node on the Redis, one coordinator per group (server/src/cluster/).
  let groups: GroupCoordinator;
  try {
    groups =
      engine.kind === "redis" && config.redis.url
        ? await ClusterGroupCoordinator.connect({ ...groupOptions, redisUrl: config.redis.url, nodeId, leaseTtlMs: config.cluster.nodeTtlMs, reporter: redisErrors })
        : new GroupCoordinator(groupOptions);
  } catch (err) {
    auth.close();
    certs?.close();
    await engine.close().catch((closeErr: unknown) => log.warn("node.engine_close_failed", { error: String(closeErr) })); // the start error below is what matters
    throw err;
  }
  // A member given a partition whose committed position is of an older epoch (history rewritten): reset by its policy.
  groups.instrumentation.on("group.stale_epoch", (e) => log.warn("group.stale_epoch", e.payload));
  // Background failures of groups and presence (logged by onError above): counted by task.
  groups.instrumentation.on("group.error", (e) => metrics.backgroundErrors.inc({ task: e.payload.task }));
  const presence = new PresenceRegistry({ ...options.presence, instrumentation: groups.instrumentation });
  const fdLimit = openFileLimit();
  const { max: maxConnections, lowered } = effectiveMaxConnections(config.limits.maxConnections, fdLimit);
  if (lowered) {
    log.warn("node.max_connections_lowered", { configured: config.limits.maxConnections, openFileLimit: fdLimit, maxConnections, hint: "raise the open-file limit (ulimit -n) to allow more" });
  }
  log.info("node.limits", { openFileLimit: fdLimit, maxConnections });
  const ctx: GatewayContext = { broker, config, nodeId, log, groups, presence, connections: new ConnectionLimit(maxConnections), auth };

  let ready = false;
  metrics.gaugeFromCallback("tributary_node_ready", "1 while the node serves clients (GET /readyz 200), 0 while it starts or stops or its storage failed (file engine: a failed fsync).", () =>
    ready && broker.storageHealth()?.ok !== false ? 1 : 0,
  );
  // With TLS, a new certificate gets a new uWS app taking over the listen socket (gateway/tls/uws-app.ts).
  const uwsApp = createUwsApp(certs, log, metrics);
  const app = uwsApp.app;
  const gateways: Array<{ name: string; gateway: Gateway }> = [];
  let mqttPort = 0;
  let mqttsPort = 0;
  let registry: NodeRegistry | undefined;
  const startedAt = Date.now();

  try {
    // --- HTTP API (topics, records, /healthz, /readyz) and /metrics -------------------
    const httpApi = attachHttpApi(app, ctx, {
      isReady: () => ready,
      checkStorage: () => (registry ? registry.checkStorage() : Promise.reject(new TributaryError("UNAVAILABLE", "the node is starting"))),
      clusterStatus: () => (registry ? registry.status() : Promise.reject(new TributaryError("UNAVAILABLE", "the node is starting"))),
    });
    gateways.push({ name: "http", gateway: httpApi });
    attachMetricsRoute(app, ctx);
    // --- consumer groups admin and presence (docs/consumer-groups.md) ------------------
    registerGroupRoutes(app, ctx, groups);
    registerPresenceRoutes(app, ctx, presence);

    // --- WebSocket SDK gateway (server/src/gateway/ws/) ---------------------------------
    gateways.push({ name: "ws", gateway: attachWsGateway(app, ctx) });

    // --- MQTT gateway: TCP listener + MQTT over WebSocket at /mqtt (server/src/gateway/mqtt/)
    // startMqttGateway(app: uWS.TemplatedApp, ctx: GatewayContext): Promise<Gateway & { port: number }>
    // Mount only when config.mqtt.enabled; set mqttPort from the result:
    // With TLS: MQTTS too (mqtt.tlsPort), and no plain TCP listener when tls.require.
    if (config.mqtt.enabled) {
      const mqtt = await startMqttGateway(app, ctx, { tls: certs ?? undefined, requireTls: certs !== null && config.tls.require });
      gateways.push({ name: "mqtt", gateway: mqtt });
      mqttPort = mqtt.port;
      mqttsPort = mqtt.tlsPort;
    }

    // --- Web console (server/src/gateway/http/console.ts) ------------------------------
    // attachConsole(app: uWS.TemplatedApp, ctx: GatewayContext): void
    attachConsole(app, ctx);

    // Last: every request no route above matched gets 404 NOT_FOUND.
    httpApi.mountNotFound();

    const boundPort = uwsApp.listen(config.host, config.port);

    // --- cluster registry: heartbeat in Redis (redis engine) or just this node (server/src/cluster/)
    registry = await openNodeRegistry(config, engine, {
      nodeId,
      engine: engine.kind,
      startedAt,
      urls: advertisedUrls(config, boundPort, mqttPort),
      connections: () => connectionCounts(gateways),
    }, redisErrors);
    await registry.start();
  } catch (err) {
    uwsApp.stopListening();
    await registry?.close();
    await closeAll(gateways, log);
    groups.close();
    presence.close();
    auth.close();
    certs?.close();
    await engine.close().catch((closeErr: unknown) => log.warn("node.engine_close_failed", { error: String(closeErr) })); // the start error below is what matters
    throw err instanceof TributaryError ? err : new TributaryError("INTERNAL", `the node failed to start: ${toTributaryError(err).message}`, {}, { cause: err });
  }

  const httpPort = uwsApp.port;
  const hostForUrl = config.host.includes(":") ? `[${config.host}]` : config.host;
  ready = true;
  log.info("node.started", { nodeId, host: config.host, httpPort, mqttPort, mqttsPort, tls: certs !== null, engine: engine.kind });

  let closing: Promise<void> | undefined;
  return {
    nodeId,
    httpPort,
    get mqttPort() {
      return mqttPort;
    },
    get mqttsPort() {
      return mqttsPort;
    },
    url: `${certs ? "https" : "http"}://${hostForUrl}:${httpPort}`,
    tls: certs,
    config,
    broker,
    engine,
    groups,
    presence,
    cluster: registry!,
    auth,
    close() {
      closing ??= (async () => {
        ready = false;
        log.info("node.stopping", { nodeId });
        // Each step that talks to shared storage (Redis) gets a deadline: with the storage
        // unreachable, what it could not write is abandoned and logged, and the node still
        // stops in seconds. Nothing acknowledged depends on them (Redis acked it already).
        // The file engine's close is never cut short: it fsyncs acknowledged records.
        const shared = engine.kind !== "file";
        const step = (name: string, run: () => Promise<void> | void, budgetMs: number) => stopStep(log, name, run, shared ? budgetMs : null);
        // Best effort: a registry we cannot mark draining expires the node after its TTL.
        await step("registry.drain", () => registry?.drain(), 1000);
        uwsApp.stopListening();
        await step("gateways", () => closeAll(gateways, log), 1500);
        await step("registry.close", () => registry?.close(), 500);
        await step("groups", async () => {
          groups.close();
          if (groups instanceof ClusterGroupCoordinator) await groups.closed();
        }, 1000);
        presence.close();
        auth.close();
        certs?.close();
        await step("engine", () => engine.close(), 1000);
        log.info("node.stopped", { nodeId });
      })();
      return closing;
    },
  };
}

/** Open client connections by kind (ws, mqtt, mqtt-ws) over every gateway, for the cluster registry. */
function connectionCounts(gateways: Array<{ gateway: Gateway }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { gateway } of gateways) Object.assign(counts, gateway.connectionCounts?.());
  return counts;
}

/** Closes gateways in reverse mount order; one failing does not stop the others. */
/**
 * Runs one shutdown step; with `budgetMs`, stops waiting for it after that long and logs
 * what was abandoned (`node.stop_abandoned`). Failures are logged; the shutdown goes on.
 */
async function stopStep(log: Logger, name: string, run: () => Promise<void> | void, budgetMs: number | null): Promise<void> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const work = Promise.resolve().then(run);
    if (budgetMs === null) await work;
    else {
      const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), budgetMs)));
      if ((await Promise.race([work, late])) === "late") {
        log.warn("node.stop_abandoned", { step: name, afterMs: budgetMs, reason: "storage did not answer in time; what this step had left to write is not written" });
        work.catch((err: unknown) => log.warn("node.stop_failed", { step: name, error: String(err) })); // still logged if it fails later
      }
    }
  } catch (err) {
    log.warn("node.stop_failed", { step: name, error: toTributaryError(err).message });
  } finally {
    if (timer) clearTimeout(timer);
    log.debug("node.stop_step", { step: name, ms: Date.now() - started });
  }
}

async function closeAll(gateways: Array<{ name: string; gateway: Gateway }>, log: Logger): Promise<void> {
  for (const { name, gateway } of gateways.reverse()) {
    try {
      await gateway.close();
    } catch (err) {
      log.warn("gateway.close_failed", { gateway: name, message: toTributaryError(err).message });
    }
  }
  gateways.length = 0;
}
