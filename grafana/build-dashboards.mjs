#!/usr/bin/env node
/**
 * Writes grafana/dashboards/*.json from the panel lists below (one source for the five
 * dashboards, so their variables and layout stay alike): `node grafana/build-dashboards.mjs`.
 * test/grafana-prometheus.test.ts evaluates every query of the written files against a real
 * Prometheus scraping real nodes, and checks the files are what this script writes.
 *
 * Conventions: every query filters `instance=~"$instance"` (several nodes are never summed
 * by accident: a panel sums across the selected instances on purpose or shows them apart),
 * topic-labelled series also `topic=~"$topic"`; rates use `$__rate_interval`. Consumer
 * group and partition gauges are reported by every node of a Redis cluster (they read the
 * shared storage), so panels take `max` over instances for them, never `sum`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const DIR = join(dirname(fileURLToPath(import.meta.url)), "dashboards");
const I = 'instance=~"$instance"';
const T = 'topic=~"$topic"';
const R = "$__rate_interval";

/** A time series panel: `targets` as [expr, legend] pairs. */
function ts(title, unit, targets, description = "") {
  return { type: "timeseries", title, description, unit, targets };
}
function stat(title, unit, targets, description = "") {
  return { type: "stat", title, description, unit, targets };
}

const DASHBOARDS = [
  {
    uid: "tributary-overview",
    title: "Tributary / Overview",
    panels: [
      stat("Nodes up", "none", [[`sum(up{job="tributary", ${I}})`, "up"]], "Targets of the tributary scrape job that answered the last scrape."),
      stat("Nodes ready", "none", [[`sum(tributary_node_ready{${I}})`, "ready"]], "Nodes serving clients (GET /readyz 200)."),
      stat("Topics", "none", [[`max(tributary_topics{${I}})`, "topics"]]),
      stat("Connections", "none", [[`sum(tributary_connections{${I}})`, "connections"]]),
      ts("Records in / s by protocol", "ops", [[`sum by (protocol) (rate(tributary_records_in_total{${I}, ${T}}[${R}]))`, "{{protocol}}"]]),
      ts("Records out / s by protocol", "ops", [[`sum by (protocol) (rate(tributary_records_out_total{${I}, ${T}}[${R}]))`, "{{protocol}}"]], "Records handed to subscribers, counted once per subscriber."),
      ts("Publish → deliver latency p99", "s", [[`histogram_quantile(0.99, sum by (le, protocol) (rate(tributary_publish_deliver_latency_seconds_bucket{${I}}[${R}])))`, "{{protocol}}"]], "From the record's timestamp to its hand-over to the subscriber's connection (sampled)."),
      ts("Produce latency p99 by acks", "s", [[`histogram_quantile(0.99, sum by (le, acks) (rate(tributary_produce_duration_seconds_bucket{${I}}[${R}])))`, "acks={{acks}}"]]),
      ts("Connections by gateway", "none", [[`sum by (instance, gateway) (tributary_connections{${I}})`, "{{instance}} {{gateway}}"]]),
      ts("Consumer lag by group", "none", [[`sum by (group) (max by (group, topic, partition) (tributary_consumer_group_lag{${I}, ${T}}))`, "{{group}}"]], "End offset − committed offset, summed over the group's partitions."),
      ts("Produce errors / s by code", "ops", [[`sum by (code) (rate(tributary_produce_requests_total{${I}, code!="OK"}[${R}]))`, "{{code}}"]]),
      ts("Backpressure pauses and slow consumers dropped", "none", [
        [`sum by (gateway) (increase(tributary_backpressure_pauses_total{${I}}[5m]))`, "paused {{gateway}}"],
        [`sum by (gateway) (increase(tributary_slow_consumer_disconnects_total{${I}}[5m]))`, "dropped {{gateway}}"],
      ]),
    ],
  },
  {
    uid: "tributary-topics",
    title: "Tributary / Topics & partitions",
    panels: [
      ts("Records in / s by topic", "ops", [[`sum by (topic) (rate(tributary_records_in_total{${I}, ${T}}[${R}]))`, "{{topic}}"]]),
      ts("Bytes in / s by topic", "Bps", [[`sum by (topic) (rate(tributary_bytes_in_total{${I}, ${T}}[${R}]))`, "{{topic}}"]], "Key + value bytes."),
      ts("Records out / s by topic", "ops", [[`sum by (topic) (rate(tributary_records_out_total{${I}, ${T}}[${R}]))`, "{{topic}}"]]),
      ts("Bytes out / s by topic", "Bps", [[`sum by (topic) (rate(tributary_bytes_out_total{${I}, ${T}}[${R}]))`, "{{topic}}"]]),
      ts("End offset by partition", "none", [[`max by (topic, partition) (tributary_partition_end_offset{${I}, ${T}})`, "{{topic}}/{{partition}}"]]),
      ts("Records kept (end − earliest) by topic", "none", [[`sum by (topic) (max by (topic, partition) (tributary_partition_end_offset{${I}, ${T}} - tributary_partition_earliest_offset{${I}, ${T}}))`, "{{topic}}"]], "Offsets between earliest and end: records kept by retention (compaction leaves gaps)."),
      ts("Partition size", "bytes", [[`sum by (topic) (tributary_partition_bytes{${I}, ${T}})`, "{{topic}}"]], "Segment files (file engine)."),
      ts("Segments", "none", [[`sum by (topic) (tributary_partition_segments{${I}, ${T}})`, "{{topic}}"]], "Segment files (file engine)."),
      ts("Retention and compaction runs / 5 min", "none", [[`sum by (kind) (increase(tributary_log_maintenance_runs_total{${I}}[5m]))`, "{{kind}}"]]),
      ts("Topics", "none", [[`max(tributary_topics{${I}})`, "topics"]]),
    ],
  },
  {
    uid: "tributary-groups",
    title: "Tributary / Consumer groups (lag)",
    panels: [
      ts("Lag by group and topic", "none", [[`sum by (group, topic) (max by (group, topic, partition) (tributary_consumer_group_lag{${I}, ${T}}))`, "{{group}} {{topic}}"]], "End offset − committed offset (records), SDK groups and MQTT $share groups."),
      ts("Lag by partition", "none", [[`max by (group, topic, partition) (tributary_consumer_group_lag{${I}, ${T}})`, "{{group}} {{topic}}/{{partition}}"]]),
      ts("Committed offset by partition", "none", [[`max by (group, topic, partition) (tributary_consumer_group_committed_offset{${I}, ${T}})`, "{{group}} {{topic}}/{{partition}}"]]),
      ts("Consumed / s (committed offset growth)", "ops", [[`sum by (group, topic) (deriv(tributary_consumer_group_committed_offset{${I}, ${T}}[${R}]))`, "{{group}} {{topic}}"]]),
      ts("Members", "none", [[`max by (group) (tributary_consumer_group_members{${I}})`, "{{group}}"]]),
      ts("Generation", "none", [[`max by (group) (tributary_consumer_group_generation{${I}})`, "{{group}}"]], "Incremented by every rebalance round."),
      ts("Rebalances / 5 min", "none", [[`sum by (group) (increase(tributary_consumer_group_rebalances_total{${I}}[5m]))`, "{{group}}"]]),
      ts("Rebalance duration p99", "s", [[`histogram_quantile(0.99, sum by (le) (rate(tributary_consumer_group_rebalance_duration_seconds_bucket{${I}}[5m])))`, "p99"]]),
    ],
  },
  {
    uid: "tributary-mqtt",
    title: "Tributary / MQTT",
    panels: [
      ts("MQTT connections", "none", [[`sum by (instance, gateway) (tributary_connections{${I}, gateway=~"mqtt|mqtt-ws"})`, "{{instance}} {{gateway}}"]]),
      ts("Sessions by state", "none", [[`sum by (state) (tributary_mqtt_sessions{${I}})`, "{{state}}"]], "Disconnected = persistent sessions waiting for their client."),
      ts("Session lag by topic", "none", [[`max by (topic) (tributary_mqtt_session_lag{${I}, ${T}})`, "{{topic}}"]], "Records persistent sessions have not acknowledged, summed over sessions."),
      ts("$share groups", "none", [[`sum by (instance) (tributary_mqtt_shared_groups{${I}})`, "{{instance}}"]], "MQTT $share groups with members on each node (each is a consumer group)."),
      ts("MQTT records in / out per s", "ops", [
        [`sum by (topic) (rate(tributary_records_in_total{${I}, ${T}, protocol="mqtt"}[${R}]))`, "in {{topic}}"],
        [`sum by (topic) (rate(tributary_records_out_total{${I}, ${T}, protocol="mqtt"}[${R}]))`, "out {{topic}}"],
      ]),
      ts("MQTT publish → deliver latency p50 / p99", "s", [
        [`histogram_quantile(0.5, sum by (le) (rate(tributary_publish_deliver_latency_seconds_bucket{${I}, protocol="mqtt"}[${R}])))`, "p50"],
        [`histogram_quantile(0.99, sum by (le) (rate(tributary_publish_deliver_latency_seconds_bucket{${I}, protocol="mqtt"}[${R}])))`, "p99"],
      ]),
      ts("MQTT protocol errors / s by reason code", "ops", [[`sum by (code) (rate(tributary_protocol_errors_total{${I}, gateway=~"mqtt|mqtt-ws"}[${R}]))`, "{{code}}"]]),
      ts("Undeliverable records and dropped properties / 5 min", "none", [
        [`sum by (reason) (increase(tributary_mqtt_undeliverable_records_total{${I}}[5m]))`, "{{reason}}"],
        [`sum(increase(tributary_mqtt_dropped_properties_total{${I}}[5m]))`, "dropped properties"],
      ]),
    ],
  },
  {
    uid: "tributary-nodes",
    title: "Tributary / Nodes & storage",
    panels: [
      ts("Ready and storage healthy", "none", [
        [`tributary_node_ready{${I}}`, "ready {{instance}}"],
        [`tributary_storage_healthy{${I}}`, "storage {{instance}}"],
      ], "Ready: the node serves clients. Storage healthy: 0 after a failed fdatasync (the node answers /readyz 503 until restarted)."),
      ts("Resident memory", "bytes", [[`process_resident_memory_bytes{job="tributary", ${I}}`, "{{instance}}"]]),
      ts("CPU", "percentunit", [[`rate(process_cpu_seconds_total{job="tributary", ${I}}[${R}])`, "{{instance}}"]]),
      ts("Event-loop lag p99", "s", [[`nodejs_eventloop_lag_p99_seconds{job="tributary", ${I}}`, "{{instance}}"]]),
      ts("Open files vs limit", "percentunit", [[`process_open_fds{job="tributary", ${I}} / process_max_fds{job="tributary", ${I}}`, "{{instance}}"]]),
      ts("Heap used", "bytes", [[`nodejs_heap_size_used_bytes{job="tributary", ${I}}`, "{{instance}}"]]),
      ts("fsync duration p50 / p99 (file engine)", "s", [
        [`histogram_quantile(0.5, sum by (le, instance) (rate(tributary_fsync_duration_seconds_bucket{${I}}[${R}])))`, "p50 {{instance}}"],
        [`histogram_quantile(0.99, sum by (le, instance) (rate(tributary_fsync_duration_seconds_bucket{${I}}[${R}])))`, "p99 {{instance}}"],
      ]),
      ts("Group commit: waiters per fsync (file engine)", "none", [[`sum by (instance) (rate(tributary_group_commit_batch_size_sum{${I}}[${R}])) / sum by (instance) (rate(tributary_group_commit_batch_size_count{${I}}[${R}]))`, "{{instance}}"]]),
      ts("Redis command latency p99", "s", [[`histogram_quantile(0.99, sum by (le, component) (rate(tributary_redis_command_duration_seconds_bucket{${I}}[${R}])))`, "{{component}}"]]),
      ts("Redis command errors and reconnects / s", "ops", [
        [`sum by (component) (rate(tributary_redis_command_errors_total{${I}}[${R}]))`, "errors {{component}}"],
        [`sum by (component) (rate(tributary_redis_reconnects_total{${I}}[${R}]))`, "reconnects {{component}}"],
      ]),
      ts("Background errors / 5 min by task", "none", [[`sum by (task) (increase(tributary_background_errors_total{${I}}[5m]))`, "{{task}}"]]),
      ts("Auth failures and limit refusals / 5 min", "none", [
        [`sum by (reason) (increase(tributary_auth_failures_total{${I}}[5m]))`, "auth {{reason}}"],
        [`sum by (limit) (increase(tributary_limit_refusals_total{${I}}[5m]))`, "limit {{limit}}"],
      ]),
    ],
  },
];

const VARIABLES = [
  { name: "datasource", type: "datasource", query: "prometheus", label: "Prometheus" },
  {
    name: "instance",
    label: "Instance",
    type: "query",
    datasource: { type: "prometheus", uid: "${datasource}" },
    query: { query: 'label_values(up{job="tributary"}, instance)', refId: "instance" },
    definition: 'label_values(up{job="tributary"}, instance)',
    refresh: 2,
    multi: true,
    includeAll: true,
    allValue: ".*",
    current: { selected: true, text: ["All"], value: ["$__all"] },
    sort: 1,
  },
  {
    name: "topic",
    label: "Topic",
    type: "query",
    datasource: { type: "prometheus", uid: "${datasource}" },
    query: { query: 'label_values(tributary_partition_end_offset{instance=~"$instance"}, topic)', refId: "topic" },
    definition: 'label_values(tributary_partition_end_offset{instance=~"$instance"}, topic)',
    refresh: 2,
    multi: true,
    includeAll: true,
    allValue: ".*",
    current: { selected: true, text: ["All"], value: ["$__all"] },
    sort: 1,
  },
];

const LINKS = [{ title: "Tributary dashboards", type: "dashboards", tags: ["tributary"], asDropdown: true, includeVars: true, keepTime: true }];

function build(d) {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const panels = d.panels.map((p, i) => {
    const w = p.type === "stat" ? 6 : 12;
    const h = p.type === "stat" ? 4 : 8;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const gridPos = { h, w, x, y };
    x += w;
    rowHeight = Math.max(rowHeight, h);
    return {
      id: i + 1,
      type: p.type,
      title: p.title,
      ...(p.description ? { description: p.description } : {}),
      datasource: { type: "prometheus", uid: "${datasource}" },
      gridPos,
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      options: p.type === "stat" ? { reduceOptions: { calcs: ["lastNotNull"] }, colorMode: "value" } : { legend: { displayMode: "list", placement: "bottom" }, tooltip: { mode: "multi" } },
      targets: p.targets.map(([expr, legendFormat], k) => ({ refId: String.fromCharCode(65 + k), expr, legendFormat })),
    };
  });
  return {
    uid: d.uid,
    title: d.title,
    tags: ["tributary"],
    schemaVersion: 39,
    version: 1,
    editable: true,
    time: { from: "now-1h", to: "now" },
    refresh: "10s",
    links: LINKS,
    templating: { list: VARIABLES },
    panels,
  };
}

/** The dashboards as written to grafana/dashboards/<uid>.json. */
export function dashboards() {
  return DASHBOARDS.map((d) => ({ file: `${d.uid}.json`, json: `${JSON.stringify(build(d), null, 2)}\n` }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  mkdirSync(DIR, { recursive: true });
  for (const { file, json } of dashboards()) {
    writeFileSync(join(DIR, file), json);
    process.stdout.write(`wrote grafana/dashboards/${file}\n`);
  }
}
