/**
 * MQTT bridge sink (`type: mqtt-sink`): publishes records to another MQTT broker, the MQTT
 * topic being the record's key (the reverse of the source: keys are MQTT topics), or
 * `defaultTopic` for records without a key. QoS 1/2 publishes count as written once the
 * broker acknowledged them; at-least-once. A record without a key and no `defaultTopic` is
 * refused (DLQ).
 */
import type { MqttClient } from "mqtt";
import type { FieldReader } from "../connect-config.ts";
import { SinkError, type SinkConnector, type SinkRecord } from "../connector.ts";
import { loadMqtt, mqttBridgeOptions, mqttClientOptions, type MqttBridgeOptions } from "../mqtt-options.ts";
import type { Logger } from "../../logger.ts";

export interface MqttSinkOptions extends MqttBridgeOptions {
  defaultTopic: string | null;
  retain: boolean;
}

export function mqttSinkOptions(f: FieldReader, name: string): MqttSinkOptions {
  return { ...mqttBridgeOptions(f, name), defaultTopic: f.string("defaultTopic", null), retain: f.bool("retain", false) };
}

export class MqttBridgeSink implements SinkConnector {
  readonly #options: MqttSinkOptions;
  readonly #logger: Logger;
  readonly #name: string;
  #client: MqttClient | undefined;

  constructor(name: string, options: MqttSinkOptions, logger: Logger) {
    this.#name = name;
    this.#options = options;
    this.#logger = logger;
  }

  async start(): Promise<void> {
    const mqtt = await loadMqtt();
    this.#client = await mqtt.connectAsync(this.#options.broker, mqttClientOptions(this.#options));
    this.#client.on("error", (err) => this.#logger.warn("connect.mqtt_sink.connection_error", { connector: this.#name, error: err.message }));
  }

  async stop(): Promise<void> {
    await this.#client?.endAsync();
    this.#client = undefined;
  }

  async write(records: SinkRecord[]): Promise<void> {
    const client = this.#client;
    if (!client?.connected) throw new SinkError("target", `not connected to ${this.#options.broker}`);
    for (const r of records) {
      if (r.key === null && this.#options.defaultTopic === null) throw new SinkError("records", `${r.topic}/${r.partition}@${r.offset} has no key to use as MQTT topic and no defaultTopic is set`, false);
    }
    try {
      await Promise.all(
        records.map((r) =>
          client.publishAsync(r.key ?? this.#options.defaultTopic!, r.value === null ? Buffer.alloc(0) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength), {
            qos: this.#options.qos,
            retain: this.#options.retain,
            ...(this.#options.protocolVersion === 5 && r.contentType ? { properties: { contentType: r.contentType } } : {}),
          }),
        ),
      );
    } catch (err) {
      throw new SinkError("target", `publish to ${this.#options.broker}: ${(err as Error).message}`, true, { cause: err });
    }
  }
}
