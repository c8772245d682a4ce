/**
 * Per-connector instruments of the connect process, on its own `/metrics` (prom-client,
 * `tributary_connect_` prefix; one label value per configured connector, so cardinality is
 * the config's size).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const CONNECTOR_STATES = ["starting", "running", "paused", "failed", "stopped"] as const;
export type ConnectorState = (typeof CONNECTOR_STATES)[number];

export class ConnectMetrics {
  readonly registry = new Registry();
  /** Records taken from the source: consumed from the topics (sinks) or read from the outside (sources). */
  readonly recordsIn: Counter<"connector">;
  /** Records written: into the target (sinks) or acknowledged by the node (sources). */
  readonly recordsOut: Counter<"connector">;
  /** Failed attempts: `target` (unreachable, retried), `records` (counted toward the DLQ), `source`, `node`, `commit`. */
  readonly failures: Counter<"connector" | "kind">;
  readonly dlqRecords: Counter<"connector">;
  /** Sinks: the group's total lag (end − committed over its partitions). */
  readonly lag: Gauge<"connector">;
  readonly state: Gauge<"connector" | "state">;
  readonly batchSeconds: Histogram<"connector">;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "tributary_connect_process_" });
    this.recordsIn = new Counter({ name: "tributary_connect_records_in_total", help: "Records taken in by the connector (consumed from topics, or read from the source system).", labelNames: ["connector"], registers });
    this.recordsOut = new Counter({ name: "tributary_connect_records_out_total", help: "Records written by the connector (into the target, or acknowledged by the node).", labelNames: ["connector"], registers });
    this.failures = new Counter({ name: "tributary_connect_failures_total", help: "Failed attempts by kind (target, records, source, node, commit).", labelNames: ["connector", "kind"], registers });
    this.dlqRecords = new Counter({ name: "tributary_connect_dlq_records_total", help: "Records sent to the connector's dead-letter topic.", labelNames: ["connector"], registers });
    this.lag = new Gauge({ name: "tributary_connect_lag", help: "Sink connectors: records in their topics not yet committed by the connector's group.", labelNames: ["connector"], registers });
    this.state = new Gauge({ name: "tributary_connect_state", help: "1 for the connector's current state.", labelNames: ["connector", "state"], registers });
    this.batchSeconds = new Histogram({ name: "tributary_connect_batch_seconds", help: "Time to write one batch (sinks) or produce one batch (sources).", labelNames: ["connector"], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers });
  }

  setState(connector: string, state: ConnectorState): void {
    for (const s of CONNECTOR_STATES) this.state.set({ connector, state: s }, s === state ? 1 : 0);
  }
}
