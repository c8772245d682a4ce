import type uWS from "uWebSockets.js";
import { RC } from "../mqtt/reason-codes.ts";
import type { GatewayContext } from "../gateway-context.ts";

/**
 * Serves the node's Prometheus metrics at GET /metrics (docs/monitoring.md), and connects
 * the scrape-time metrics to the node's parts: topics, consumer groups and their rebalances.
 * With `metrics.enabled` false nothing is mounted (GET /metrics is 404).
 */
export function attachMetricsRoute(app: uWS.TemplatedApp, ctx: GatewayContext): void {
  const metrics = ctx.broker.metrics;
  if (!metrics.enabled) return;
  metrics.gaugeFromCallback("tributary_topics", "Topics in the log.", async () => (await ctx.broker.listTopics()).length);
  metrics.onCollectError = (err, what) => {
    metrics.backgroundErrors.inc({ task: "metrics-collect" });
    ctx.log.warn("metrics.collect_failed", { what, message: err instanceof Error ? err.message : String(err) });
  };
  if (ctx.groups) {
    metrics.groups.setSource(ctx.groups);
    ctx.groups.instrumentation.on("group.rebalance", (e) => metrics.groups.rebalanced(e.payload.group, e.payload.durationMs));
  }
  // MQTT error reason codes exported from zero (the WebSocket error codes are, in Metrics).
  if (ctx.config.mqtt.enabled) {
    for (const code of Object.values(RC)) {
      if (code < 0x80) continue;
      for (const gateway of ["mqtt", "mqtt-ws"]) metrics.protocolErrors.labels({ gateway, code: `0x${code.toString(16).padStart(2, "0")}` }).inc(0);
    }
  }
  app.get("/metrics", (res) => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    metrics.expose().then(
      (text) => {
        if (aborted) return;
        res.cork(() => res.writeStatus("200 OK").writeHeader("Content-Type", metrics.contentType).end(text));
      },
      (err: unknown) => {
        if (aborted) return;
        const message = err instanceof Error ? err.message : String(err);
        ctx.log.warn("metrics.scrape_failed", { message });
        res.cork(() =>
          res
            .writeStatus("500 Internal Server Error")
            .writeHeader("Content-Type", "application/json")
            .end(JSON.stringify({ error: { code: "INTERNAL", message } })),
        );
      },
    );
  });
}
