/** The built-in connectors: `type` → a factory that reads (and validates) the connector's fields. */
import { createLogger, type Logger } from "../logger.ts";
import type { ConnectorConfig } from "./connect-config.ts";
import type { SinkConnector, SourceConnector } from "./connector.ts";
import { MqttBridgeSink, mqttSinkOptions } from "./sinks/mqtt-bridge-sink.ts";
import { NdjsonFileSink, ndjsonSinkOptions } from "./sinks/ndjson-file-sink.ts";
import { PostgresSink, postgresSinkOptions } from "./sinks/postgres-sink.ts";
import { WebhookSink, webhookSinkOptions } from "./sinks/webhook-sink.ts";
import { MqttBridgeSource, mqttSourceOptions } from "./sources/mqtt-bridge-source.ts";
import { NdjsonFileSource, ndjsonSourceOptions } from "./sources/ndjson-file-source.ts";

export type CreatedConnector = { kind: "sink"; sink: SinkConnector } | { kind: "source"; source: SourceConnector };

let logger: Logger = createLogger("info");

/** The logger connectors log with (the process's). */
export function setConnectorLogger(l: Logger): void {
  logger = l;
}

/** Builds the connector of `config` (no I/O); throws INVALID_CONFIG for a bad or unknown field. */
export function createConnector(config: ConnectorConfig): CreatedConnector {
  const f = config.fields;
  let created: CreatedConnector;
  switch (config.type) {
    case "postgres-sink":
      created = { kind: "sink", sink: new PostgresSink(config.name, postgresSinkOptions(f, config.sink!.topics), logger) };
      break;
    case "webhook-sink":
      created = { kind: "sink", sink: new WebhookSink(config.name, webhookSinkOptions(f)) };
      break;
    case "ndjson-sink":
      created = { kind: "sink", sink: new NdjsonFileSink(ndjsonSinkOptions(f)) };
      break;
    case "mqtt-sink":
      created = { kind: "sink", sink: new MqttBridgeSink(config.name, mqttSinkOptions(f, config.name), logger) };
      break;
    case "ndjson-source":
      created = { kind: "source", source: new NdjsonFileSource(ndjsonSourceOptions(f)) };
      break;
    case "mqtt-source":
      created = { kind: "source", source: new MqttBridgeSource(mqttSourceOptions(f, config.name)) };
      break;
  }
  f.checkUnknown();
  return created;
}
