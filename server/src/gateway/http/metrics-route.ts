import type uWS from "uWebSockets.js";
import type { GatewayContext } from "../gateway-context.ts";

/** Serves the node's Prometheus metrics at GET /metrics. */
export function attachMetricsRoute(app: uWS.TemplatedApp, ctx: GatewayContext): void {
  const metrics = ctx.broker.metrics;
  metrics.gaugeFromCallback("tributary_topics", "Topics in the log.", async () => (await ctx.broker.listTopics()).length);
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
