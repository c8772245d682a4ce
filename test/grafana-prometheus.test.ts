/**
 * The monitoring kit against a real Prometheus (Debian's `prometheus`, installed by .ci/run):
 * it scrapes a file-engine node with MQTT and two nodes on one Redis while a scripted
 * workload runs (SDK over WebSocket, MQTT, HTTP acks=all, a persistent MQTT session, a
 * $share group, a consumer group that falls behind). Then every panel query and variable of
 * every dashboard in grafana/dashboards and every rule of grafana/alerts.yml is evaluated
 * through Prometheus's HTTP API: each has data, and the values are the workload's (lag =
 * end − committed, records in = what was sent). promtool checks the rules (and unit-tests
 * them on synthetic series: grafana/alerts.test.yml) and each node's exposition.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboards as generatedDashboards } from "../grafana/build-dashboards.mjs";
import { startRedisNode } from "./helpers/cluster-nodes.ts";
import { LAGGING_GROUP, REDIS_TOPIC, SHARE_GROUP, WORKLOAD_TOPIC, runWorkload, type Workload } from "./helpers/monitoring-workload.ts";
import { startMqttTestNode, type MqttTestNode } from "./helpers/mqtt-node.ts";
import { promtool, startPrometheus, type PrometheusServer } from "./helpers/prometheus.ts";
import { startRedis, type RedisServer } from "./helpers/redis-harness.ts";
import { waitFor } from "./helpers/wait.ts";

const GRAFANA = join(import.meta.dirname, "..", "grafana");
const DASHBOARD_DIR = join(GRAFANA, "dashboards");
const ALERTS = join(GRAFANA, "alerts.yml");

interface Panel {
  title: string;
  targets?: Array<{ expr: string }>;
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: { query: string } }> };
}

function readDashboards(): Array<{ file: string; dashboard: Dashboard }> {
  return readdirSync(DASHBOARD_DIR)
    .filter((f) => f.endsWith(".json"))
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(DASHBOARD_DIR, file), "utf8")) as Dashboard }));
}

/** Grafana's variables as "All" and its rate interval (the test's whole run fits in 1 m). */
function grafanaToPromQL(expr: string): string {
  return expr.replaceAll("$__rate_interval", "1m").replaceAll("$instance", ".*").replaceAll("$topic", ".*");
}

/** The rule's expression without its threshold comparisons (what must have data while nothing fires). */
function withoutThresholds(expr: string): string {
  return expr.replace(/\s*(>|<|==|!=|>=|<=)\s*[0-9.]+(?=\s|\)|$)/g, "");
}

const finite = (s: { value: [number, string] }) => Number.isFinite(Number(s.value[1]));

/**
 * Polls `expr` until it has a finite value (a rate() or deriv() over a series the workload
 * created needs a second scrape of it), up to `timeoutMs`; returns the last result.
 */
async function eventually(prom: PrometheusServer, expr: string, timeoutMs = 15_000): Promise<{ ok: boolean; result: unknown }> {
  let result: Awaited<ReturnType<PrometheusServer["query"]>> = [];
  try {
    await waitFor(async () => (result = await prom.query(expr)).some(finite), { timeoutMs, intervalMs: 250, what: expr });
    return { ok: true, result };
  } catch (err) {
    if (!String(err).includes("timed out")) throw err; // a bad expression or a dead Prometheus fails the test as it is
    return { ok: false, result };
  }
}

describe("grafana dashboards and alert rules on a real prometheus", () => {
  let fileNode: MqttTestNode;
  let redis: RedisServer;
  let redisNodes: Array<Awaited<ReturnType<typeof startRedisNode>>> = [];
  let prom: PrometheusServer;
  let workload: Workload;
  let fileInstance: string;

  beforeAll(async () => {
    fileNode = await startMqttTestNode();
    redis = await startRedis();
    redisNodes = [await startRedisNode(redis.url), await startRedisNode(redis.url)];
    fileInstance = `127.0.0.1:${fileNode.httpPort}`;
    prom = await startPrometheus({ targets: [fileInstance, ...redisNodes.map((n) => `127.0.0.1:${n.httpPort}`)], ruleFiles: [ALERTS] });
    await prom.waitForTargetsUp();
    workload = await runWorkload(fileNode, redisNodes, { ws: 30, mqtt: 20, http: 5, rounds: 1, pauseMs: 0, processed: 12, redis: 10 });
    // Prometheus has the workload's end state once the lagging group's lag is scraped.
    const expectedLag = workload.sent.ws + workload.sent.mqtt + workload.sent.http - workload.processed;
    await waitFor(async () => (await prom.query(`sum(tributary_consumer_group_lag{group="${LAGGING_GROUP}", instance="${fileInstance}"})`)).some((s) => Number(s.value[1]) === expectedLag), {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: `prometheus to scrape group ${LAGGING_GROUP}'s lag of ${expectedLag}`,
    });
  }, 60_000);

  afterAll(async () => {
    await workload?.close();
    await prom?.stop();
    for (const n of redisNodes) await n.close();
    await fileNode?.close();
    await redis?.stop();
  });

  it("lag-equals-end-minus-committed-and-records-in-equal-what-the-workload-sent", async () => {
    const total = workload.sent.ws + workload.sent.mqtt + workload.sent.http;
    const at = `instance="${fileInstance}"`;
    const [lag] = await prom.query(`tributary_consumer_group_lag{group="${LAGGING_GROUP}", topic="${WORKLOAD_TOPIC}", ${at}}`);
    const [end] = await prom.query(`tributary_partition_end_offset{topic="${WORKLOAD_TOPIC}", partition="${lag!.metric.partition}", ${at}}`);
    const [committed] = await prom.query(`tributary_consumer_group_committed_offset{group="${LAGGING_GROUP}", topic="${WORKLOAD_TOPIC}", partition="${lag!.metric.partition}", ${at}}`);
    expect(Number(end!.value[1])).toBe(total);
    expect(Number(committed!.value[1])).toBe(workload.processed);
    expect(Number(lag!.value[1])).toBe(Number(end!.value[1]) - Number(committed!.value[1]));

    const recordsIn = await prom.query(`sum by (protocol) (tributary_records_in_total{topic="${WORKLOAD_TOPIC}", ${at}})`);
    const byProtocol = Object.fromEntries(recordsIn.map((s) => [s.metric.protocol, Number(s.value[1])]));
    expect(byProtocol).toEqual({ ws: workload.sent.ws, mqtt: workload.sent.mqtt, http: workload.sent.http });
    // The SDK subscriber and the lagging group got everything / the processed prefix + the stalled one over WebSocket.
    const [wsOut] = await prom.query(`sum(tributary_records_out_total{topic="${WORKLOAD_TOPIC}", protocol="ws", ${at}})`);
    expect(Number(wsOut!.value[1])).toBeGreaterThanOrEqual(total + workload.processed + 1);
    // The $share group consumed everything (its lag reaches 0); the MQTT session is reported without its client id.
    await waitFor(async () => (await prom.query(`sum(tributary_consumer_group_lag{group="${SHARE_GROUP}", ${at}})`)).some((s) => Number(s.value[1]) === 0), { timeoutMs: 10_000, intervalMs: 200, what: "the $share group's lag to reach 0" });
    expect((await prom.query(`tributary_mqtt_session_lag{topic="${WORKLOAD_TOPIC}", ${at}}`)).length).toBe(1);
    const value = async (expr: string) => Number((await prom.query(expr))[0]?.value[1]);
    expect(await value(`tributary_mqtt_sessions{state="connected", ${at}}`)).toBe(3); // the session, the $share member, the device
    expect(await value(`tributary_mqtt_shared_groups{${at}}`)).toBe(1);
    // The persistent session and the $share member each received every record over MQTT.
    expect(await value(`sum(tributary_records_out_total{topic="${WORKLOAD_TOPIC}", protocol="mqtt", ${at}})`)).toBeGreaterThanOrEqual(2 * total);
    expect(await prom.query(`{__name__=~"tributary_.*", group=~"mqtt.session.*"}`)).toEqual([]);
    // The Redis nodes: records in on the producing node, delivered on the other, Redis commands timed.
    const [redisIn] = await prom.query(`sum(tributary_records_in_total{topic="${REDIS_TOPIC}", protocol="ws"})`);
    expect(Number(redisIn!.value[1])).toBe(10);
    expect((await prom.query(`tributary_redis_command_duration_seconds_count{component="log-engine"} > 0`)).length).toBe(2);
  });

  it("every-panel-query-of-every-dashboard-returns-data", { timeout: 45_000 }, async () => {
    const found = readDashboards();
    expect(found.map((d) => d.dashboard.title).sort()).toEqual(["Tributary / Consumer groups (lag)", "Tributary / MQTT", "Tributary / Nodes & storage", "Tributary / Overview", "Tributary / Topics & partitions"]);
    const empty: string[] = [];
    let queries = 0;
    for (const { file, dashboard } of found) {
      const variables = dashboard.templating.list.map((v) => v.name);
      expect(variables, file).toEqual(expect.arrayContaining(["instance", "topic"]));
      for (const panel of dashboard.panels) {
        expect(panel.targets?.length, `${file} "${panel.title}" has queries`).toBeGreaterThan(0);
        for (const target of panel.targets ?? []) {
          queries++;
          const { ok, result } = await eventually(prom, grafanaToPromQL(target.expr));
          if (!ok) empty.push(`${file} "${panel.title}": ${target.expr} → ${JSON.stringify(result).slice(0, 200)}`);
        }
      }
    }
    expect(queries).toBeGreaterThan(40);
    expect(empty).toEqual([]);
  });

  it("every-dashboard-variable-has-values", async () => {
    for (const { file, dashboard } of readDashboards()) {
      for (const variable of dashboard.templating.list.filter((v) => v.type === "query")) {
        const m = /^label_values\((.+), (\w+)\)$/.exec(variable.query!.query);
        expect(m, `${file} $${variable.name}`).not.toBeNull();
        const values = await prom.api<string[]>(`label/${m![2]}/values?match[]=${encodeURIComponent(grafanaToPromQL(m![1]!))}`);
        if (variable.name === "instance") expect(values.length, `${file} $instance`).toBe(3);
        if (variable.name === "topic") expect(values, `${file} $topic`).toEqual(expect.arrayContaining([WORKLOAD_TOPIC, REDIS_TOPIC]));
      }
    }
  });

  it("every-alert-rule-evaluates-in-prometheus-and-its-expression-has-data", { timeout: 30_000 }, async () => {
    expect(promtool(["check", "rules", ALERTS]).status).toBe(0);
    // Each alert fires on synthetic series that should fire it, and not on others (grafana/alerts.test.yml).
    const unit = promtool(["test", "rules", join(GRAFANA, "alerts.test.yml")]);
    expect(unit.output).toContain("SUCCESS");
    expect(unit.status).toBe(0);
    type Rule = { name: string; query: string; health: string; lastError?: string; lastEvaluation: string };
    let rules: Rule[] = [];
    await waitFor(
      async () => {
        const data = await prom.api<{ groups: Array<{ rules: Rule[] }> }>("rules?type=alert");
        rules = data.groups.flatMap((g) => g.rules);
        return rules.length > 0 && rules.every((r) => !r.lastEvaluation.startsWith("0001"));
      },
      { timeoutMs: 10_000, intervalMs: 200, what: "every alert rule evaluated once" },
    );
    expect(rules.map((r) => r.name).sort()).toEqual(["TributaryBackgroundErrors", "TributaryConsumerLagGrowing", "TributaryFsyncSlow", "TributaryNodeUnready", "TributarySlowConsumerDisconnects"]);
    for (const rule of rules) {
      expect({ rule: rule.name, health: rule.health, error: rule.lastError ?? "" }).toEqual({ rule: rule.name, health: "ok", error: "" });
      const parts = withoutThresholds(rule.query).split(/\s+(?:and|or)\s+/);
      for (const part of parts) expect((await eventually(prom, part)).ok, `${rule.name}: ${part}`).toBe(true);
    }
    // Nothing is wrong with these nodes: no lag, readiness, fsync or slow-consumer alert fires
    // (pending counts as firing-to-be). TributaryBackgroundErrors may: a lease renewal or a
    // heartbeat can time out on a loaded machine, which is what it is for.
    const alerts = await prom.api<{ alerts: Array<{ labels: Record<string, string> }> }>("alerts");
    expect(alerts.alerts.filter((a) => a.labels.alertname !== "TributaryBackgroundErrors").map((a) => a.labels)).toEqual([]);
  });

  it("every-node-exposition-passes-promtool-check-metrics", async () => {
    for (const port of [fileNode.httpPort, ...redisNodes.map((n) => n.httpPort)]) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toMatch(/^process_cpu_seconds_total /m);
      expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds /m);
      expect(text).not.toMatch(/tributary_process_|tributary_nodejs_|^nodejs_active_\w+_total/m);
      const checked = promtool(["check", "metrics"], text);
      expect(checked.output).toBe("");
      expect(checked.status).toBe(0);
    }
  });

  it("dashboard-files-are-what-build-dashboards-writes", () => {
    const written = new Map(readDashboards().map(({ file }) => [file, readFileSync(join(DASHBOARD_DIR, file), "utf8")]));
    for (const { file, json } of generatedDashboards()) expect(written.get(file), `${file}: run node grafana/build-dashboards.mjs`).toBe(json);
    expect(written.size).toBe(generatedDashboards().length);
  });
});
