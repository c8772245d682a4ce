import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { ERROR_CODES } from "@tributary/client/codes";
import { GroupMetrics } from "./group-metrics.ts";
import { StorageMetrics } from "./storage-metrics.ts";
import { TrafficMetrics } from "./traffic-metrics.ts";
import { FastHistogram } from "./fast-histogram.ts";

const PRODUCE_DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** Gateways that label connection and delivery metrics (bounded label set). */
export type GatewayLabel = "http" | "ws" | "mqtt" | "mqtt-ws";

/**
 * Work a node does on its own, whose failures no request sees: the `task` label of
 * `tributary_background_errors_total` (bounded set; every value is exported from zero). The
 * group layer's values are its GROUP_BACKGROUND_TASKS (groups/instrumentation.ts).
 */
export const BACKGROUND_TASKS = [
  /** A Redis connection emitted `error` (connection lost, refused, failover): the log engine's, the registry's, the group coordinator's. */
  "redis-connection",
  /** The Redis engine's periodic retention pass (trim by time/bytes, idle producers). */
  "redis-retention",
  /** A log compaction pass (either engine's background cleaner) that failed: the partition stays as it was until the next pass. */
  "compaction",
  /** The Redis engine could not preload its Lua scripts (commands fall back to EVAL). */
  "redis-script-preload",
  /** SSUBSCRIBE / SUNSUBSCRIBE of a partition's append notifications. */
  "redis-partition-watch",
  /** The node's heartbeat into the Redis node registry. */
  "cluster-heartbeat",
  /** Node registry housekeeping: pruning expired ids, deregistering on close. */
  "cluster-registry",
  /** Renewing or releasing a consumer-group coordinator lease. */
  "group-lease",
  /** Node-to-node group messages: an unreadable inbox message, an answer that could not be sent. */
  "group-bus",
  /** An assign / revoke / removed for a member on another node that did not arrive. */
  "group-event",
  /** Group state: the store failed a load or save; the cluster's group index in Redis; dropping a lost group's state. */
  "group-state",
  /** A rebalance round or a re-bound member's resync failed (retried after a backoff). */
  "group-rebalance",
  /** A member channel threw when handed its assignment or removal, or could not take a revoke. */
  "group-channel",
  /** The session-timeout sweep, removing a timed-out member, or a membership listener failed. */
  "group-membership",
  /** Counting a topic's members for a presence event failed. */
  "presence-event",
  /** Deleting an ended MQTT session from the session store. */
  "mqtt-session-remove",
  /** A record of `__mqtt.sessions` read at start was malformed (not JSON, wrong shape or types, too large): skipped, logged as `mqtt.session.unreadable`. */
  "mqtt-session-load",
  /** A record of `__mqtt.retained` read at start was malformed (key not an MQTT topic name, bad headers, too large): skipped, logged as `mqtt.retained.unreadable`. */
  "mqtt-retained-load",
  /** Building the SDK browser bundle for the web console. */
  "console-bundle",
  /** A subscriber's delivery could not read the log for a moment (retried from the same position with a backoff). */
  "delivery-read",
  /** An MQTT \$share member could not leave its consumer group (its session timeout removes it). */
  "mqtt-group-leave",
  /** Acknowledging an MQTT PUBLISH after its append threw (a bug: the other acknowledgements still go out). */
  "mqtt-ingress",
  /** Leaving a topic's presence after an unsubscribe (the presence session timeout removes the client). */
  "presence-leave",
  /** A scrape-time read of consumer groups or partitions failed (storage unreachable): those series are left out of that scrape (logged as `metrics.collect_failed`). */
  "metrics-collect",
  /** An auth file (JWT keys, JWKS, password file, ACL file) changed but did not parse, or could not be watched: the previous content stays in force (logged as `auth.reload_failed`). */
  "auth-reload",
] as const;

export type BackgroundTask = (typeof BACKGROUND_TASKS)[number];

/**
 * Limits tied to IP address and identity (docs/security.md#limits), the `limit` label of
 * `tributary_limit_refusals_total`.
 */
export const LIMIT_NAMES = [
  /** `limits.maxConnectionsPerIp`: WebSocket upgrade 429, MQTT CONNACK 0x97 / 0x03. */
  "connections_per_ip",
  /** `limits.maxConnectionsPerIdentity`: WebSocket error frame + close 1013, MQTT CONNACK 0x97 / 0x03. */
  "connections_per_identity",
  /** `limits.connectRatePerIp`. */
  "connect_rate_per_ip",
  /** `limits.httpRequestRatePerIp`: HTTP 429 QUEUE_FULL. */
  "http_request_rate_per_ip",
  /** The address failed authentication `limits.authFailuresBeforeBlock` times: refused for `limits.authBlockMs`. */
  "auth_blocked",
  /** `limits.publishRatePerIdentity`: WebSocket QUEUE_FULL, HTTP 429, MQTT 5 PUBACK 0x97. */
  "publish_rate_per_identity",
  /** `limits.publishBytesPerIdentity`. */
  "publish_bytes_per_identity",
] as const;

export type LimitName = (typeof LIMIT_NAMES)[number];

/** The `reason` label of `tributary_auth_failures_total`. */
export const AUTH_FAILURE_REASONS = ["missing", "bad_password", "bad_token", "expired"] as const;

export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

const GATEWAY_LABELS: readonly GatewayLabel[] = ["http", "ws", "mqtt", "mqtt-ws"];

/** Default of `metrics.maxTopicLabels`: topics that get their own `topic` label value. */
export const DEFAULT_MAX_TOPIC_LABELS = 50;

export interface MetricsOptions {
  /** Node's standard process metrics (`process_*`, `nodejs_*`) in this registry (default true). */
  defaultMetrics?: boolean;
  /**
   * false: the node serves no /metrics and does no per-message metric work (the traffic,
   * delivery-latency and storage tallies stay off); the counters that exist still count.
   * For measuring what metrics cost (`npm run bench -- ws` / `-- mqtt` compare both).
   */
  enabled?: boolean;
  /** Topics that get their own `topic` label; the others are summed under `topic="_other"` (default 50). */
  maxTopicLabels?: number;
}

/**
 * The node's Prometheus instruments, `tributary_` prefix, one registry per node (tests
 * run several nodes in one process). Labels are bounded: gateway, protocol, acks, error
 * code, consumer group, and `topic` only for the first `maxTopicLabels` topics seen (the
 * rest as `_other`); never client ids (docs/monitoring.md).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly enabled: boolean;
  /** Records and bytes in and out by protocol and topic, publish→deliver latency, backpressure pauses. */
  readonly traffic: TrafficMetrics;
  /** Consumer groups (lag, committed offsets, members, generations, rebalances) and MQTT sessions. */
  readonly groups: GroupMetrics;
  /** Partitions (offsets, bytes, segments), fsync and group commit, Redis commands. */
  readonly storage: StorageMetrics;

  /**
   * Successful produce requests and their records, by acks level: the produce path bumps
   * these plain numbers (a prom-client `inc` hashes its labels on every call); the counters
   * below catch up at scrape time.
   */
  readonly produceTally = new Map<string, { requests: number; records: number }>();
  readonly #tallied = new Map<string, { requests: number; records: number }>();

  /** The tally of one acks level ("0", "1", "all"), created on first use. */
  tallyFor(acks: string): { requests: number; records: number } {
    let tally = this.produceTally.get(acks);
    if (!tally) this.produceTally.set(acks, (tally = { requests: 0, records: 0 }));
    return tally;
  }

  /** Folds what the tallies gained since the last scrape into the two counters. */
  #foldTallies(): void {
    for (const [acks, tally] of this.produceTally) {
      let seen = this.#tallied.get(acks);
      if (!seen) this.#tallied.set(acks, (seen = { requests: 0, records: 0 }));
      if (tally.records > seen.records) this.producedRecords.inc({ acks }, tally.records - seen.records);
      if (tally.requests > seen.requests) this.produceRequests.inc({ code: "OK" }, tally.requests - seen.requests);
      seen.records = tally.records;
      seen.requests = tally.requests;
    }
  }

  readonly producedRecords: Counter<"acks"> = new Counter({
    name: "tributary_produced_records_total",
    help: "Records appended to the log through the produce path.",
    labelNames: ["acks"] as const,
    registers: [this.registry],
    collect: () => this.#foldTallies(),
  });

  readonly produceRequests: Counter<"code"> = new Counter({
    name: "tributary_produce_requests_total",
    help: "Produce requests (one publish or one HTTP batch), by outcome code (OK on success).",
    labelNames: ["code"] as const,
    registers: [this.registry],
    collect: () => this.#foldTallies(),
  });

  readonly produceDuration: Histogram<"acks"> = new Histogram({
    name: "tributary_produce_duration_seconds",
    help: "Time from produce request to ack, by acks level.",
    labelNames: ["acks"] as const,
    buckets: PRODUCE_DURATION_BUCKETS,
    registers: [this.registry],
    collect: (): void => this.produceDurationFast.fold(),
  });

  /** Where the produce path observes `produceDuration` (one observation per request: see fast-histogram.ts). */
  readonly produceDurationFast: FastHistogram<"acks"> = new FastHistogram(this.produceDuration, PRODUCE_DURATION_BUCKETS);

  readonly duplicatePublishes = new Counter({
    name: "tributary_duplicate_publishes_total",
    help: "Publishes recognised as retries by (producerId, sequence) and not written again.",
    registers: [this.registry],
  });

  readonly connections = new Gauge({
    name: "tributary_connections",
    help: "Open client connections, by gateway.",
    labelNames: ["gateway"] as const,
    registers: [this.registry],
  });

  readonly #deliverySources: Array<{ gateway: GatewayLabel; read: () => number; last: number }> = [];

  readonly deliveredMessages: Counter<"gateway"> = new Counter({
    name: "tributary_delivered_messages_total",
    help: "Messages sent to subscribers, by gateway.",
    labelNames: ["gateway"] as const,
    registers: [this.registry],
    // Hot paths count into plain numbers (addDeliverySource); folded in at scrape time.
    collect: () => {
      for (const source of this.#deliverySources) {
        const now = source.read();
        if (now > source.last) this.deliveredMessages.inc({ gateway: source.gateway }, now - source.last);
        source.last = now;
      }
    },
  });

  readonly protocolErrors = new Counter({
    name: "tributary_protocol_errors_total",
    help: "Error replies and error closes sent to clients, by gateway and code (error code for ws, MQTT reason code 0xNN for mqtt).",
    labelNames: ["gateway", "code"] as const,
    registers: [this.registry],
  });

  readonly slowConsumerDisconnects = new Counter({
    name: "tributary_slow_consumer_disconnects_total",
    help: "Connections dropped because they could not keep up.",
    labelNames: ["gateway"] as const,
    registers: [this.registry],
  });

  readonly mqttDroppedProperties = new Counter({
    name: "tributary_mqtt_dropped_properties_total",
    help: "MQTT 5 properties (user properties, content type, response topic) left out of a delivery because MQTT cannot carry them (not UTF-8, U+0000 or other characters MQTT forbids, over 65,535 bytes); the record is delivered without them.",
    registers: [this.registry],
  });

  readonly mqttUndeliverableRecords: Counter<"reason"> = zeroed(
    new Counter({
      name: "tributary_mqtt_undeliverable_records_total",
      help: `Records skipped for one MQTT subscriber because they cannot be sent to it, by reason: ${MQTT_UNDELIVERABLE_REASONS.join(", ")}. The subscriber's position moves past them (never retried).`,
      labelNames: ["reason"] as const,
      registers: [this.registry],
    }),
    "reason",
    MQTT_UNDELIVERABLE_REASONS,
  );

  readonly mqttRetainedOverLimit: Counter<"outcome"> = zeroed(
    new Counter({
      name: "tributary_mqtt_retained_over_limit_total",
      help: "Retained PUBLISH past mqtt.maxRetainedMessages / mqtt.maxRetainedBytes, by outcome: refused (MQTT 5 QoS 1/2, PUBACK/PUBREC 0x97, nothing stored), not-retained (QoS 0 and MQTT 3.1.1: stored as a normal message).",
      labelNames: ["outcome"] as const,
      registers: [this.registry],
    }),
    "outcome",
    ["refused", "not-retained"],
  );

  readonly #subscriptionSources: Array<{ gateway: GatewayLabel; read: () => number }> = [];

  readonly subscriptions: Gauge<"gateway"> = new Gauge({
    name: "tributary_subscriptions",
    help: "Active subscriptions, by gateway.",
    labelNames: ["gateway"] as const,
    registers: [this.registry],
    collect: () => {
      for (const source of this.#subscriptionSources) this.subscriptions.set({ gateway: source.gateway }, source.read());
    },
  });

  readonly backgroundErrors = new Counter({
    name: "tributary_background_errors_total",
    help: `Failures of work the node does on its own (no request to fail), by task: ${BACKGROUND_TASKS.join(", ")}. Each is also logged.`,
    labelNames: ["task"] as const,
    registers: [this.registry],
  });

  readonly limitRefusals = new Counter({
    name: "tributary_limit_refusals_total",
    help: `Connections, authentications and publishes refused by a limit tied to IP address or identity, by limit (${LIMIT_NAMES.join(", ")}) and gateway.`,
    labelNames: ["limit", "gateway"] as const,
    registers: [this.registry],
  });

  readonly authFailures = new Counter({
    name: "tributary_auth_failures_total",
    help: `Failed authentications (refused credentials or tokens), by gateway and reason (${AUTH_FAILURE_REASONS.join(", ")}).`,
    labelNames: ["gateway", "reason"] as const,
    registers: [this.registry],
  });

  constructor(options: MetricsOptions = {}) {
    this.enabled = options.enabled ?? true;
    // Every labelled error counter exported from zero for its known label values, so rate() and alerts work before the first failure.
    for (const task of BACKGROUND_TASKS) this.backgroundErrors.labels({ task }).inc(0);
    for (const code of Object.keys(ERROR_CODES)) {
      this.produceRequests.labels({ code }).inc(0);
      this.protocolErrors.labels({ gateway: "ws", code }).inc(0);
    }
    this.produceRequests.labels({ code: "OK" }).inc(0);
    for (const acks of ["0", "1", "all"]) this.produceDuration.zero({ acks });
    for (const gateway of GATEWAY_LABELS) {
      for (const limit of LIMIT_NAMES) this.limitRefusals.labels({ limit, gateway }).inc(0);
      for (const reason of AUTH_FAILURE_REASONS) this.authFailures.labels({ gateway, reason }).inc(0);
      if (gateway !== "http") this.slowConsumerDisconnects.labels({ gateway }).inc(0);
    }
    const maxTopicLabels = options.maxTopicLabels ?? DEFAULT_MAX_TOPIC_LABELS;
    this.traffic = new TrafficMetrics(this.registry, { enabled: this.enabled, maxTopicLabels });
    const onCollectError = (err: unknown, what: string) => this.onCollectError(err, what);
    this.groups = new GroupMetrics(this.registry, this.traffic.topics, onCollectError);
    this.storage = new StorageMetrics(this.registry, this.traffic.topics, { enabled: this.enabled, onCollectError });
    if ((options.defaultMetrics ?? true) && this.enabled) {
      // Node's standard process metrics under their usual names (stock Node.js dashboards match).
      // Event-loop delay sampled every 500 ms, not prom-client's 10 ms: the 10 ms sampling timer
      // cost a quarter of the WebSocket N=1 throughput (ws bench: metrics on/off 75% at 10 ms,
      // 103% at 500 ms); a 15 s scrape still sees ~30 samples for nodejs_eventloop_lag_p99_seconds.
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 500 });
      // prom-client's `*_total` gauges (active handles/requests/resources) carry a counter's suffix:
      // dropped (promtool check metrics refuses them); the same counts are in `nodejs_active_handles{type}` etc.
      for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.registry.removeSingleMetric(name);
    }
  }

  /**
   * A scrape-time read (consumer groups, partitions) failed, typically the storage being
   * unreachable: its series are left out of that scrape, the failure is counted under
   * `task="metrics-collect"`; the node logs it too (metrics-route.ts sets this).
   */
  onCollectError: (err: unknown, what: string) => void = () => this.backgroundErrors.inc({ task: "metrics-collect" });

  /** Counts deliveries of a gateway from a plain, ever-growing number (no cost per message). */
  addDeliverySource(gateway: GatewayLabel, read: () => number): void {
    this.#deliverySources.push({ gateway, read, last: 0 });
  }

  /** Reports a gateway's active subscriptions, counted at scrape time. */
  addSubscriptionSource(gateway: GatewayLabel, read: () => number): void {
    this.#subscriptionSources.push({ gateway, read });
  }

  /** Adds a gauge computed at scrape time (e.g. topics from the engine). */
  gaugeFromCallback(name: string, help: string, collect: () => Promise<number> | number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      async collect() {
        this.set(await collect());
      },
    });
  }

  /** Prometheus text exposition of every instrument. */
  expose(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * Why a record was not delivered to one MQTT subscriber (the `reason` label of
 * `tributary_mqtt_undeliverable_records_total`).
 */
export const MQTT_UNDELIVERABLE_REASONS = [
  /** The PUBLISH would exceed the Maximum Packet Size the client set at CONNECT. */
  "too-large",
  /** The PUBLISH could not be encoded at all (a field MQTT cannot represent). */
  "unencodable",
] as const;

export type MqttUndeliverableReason = (typeof MQTT_UNDELIVERABLE_REASONS)[number];

/** `counter` with every value of its one label exported from zero (rate() and alerts work before the first event). */
function zeroed<L extends string>(counter: Counter<L>, label: L, values: readonly string[]): Counter<L> {
  for (const value of values) counter.labels({ [label]: value } as Record<L, string>).inc(0);
  return counter;
}
