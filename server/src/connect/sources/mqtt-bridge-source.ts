/**
 * MQTT bridge source (`type: mqtt-source`): subscribes to `subscribe` filters on another MQTT
 * broker and produces every message to `topic`, keyed by its MQTT topic (so one device stays
 * ordered in one partition, like Tributary's own MQTT mapping), value = the payload bytes,
 * content type = the MQTT 5 Content Type (or `contentType`), user properties as headers.
 *
 * Position and delivery: the remote broker keeps the bridge's persistent session
 * (clean: false, fixed client id), and a QoS 1/2 message is acknowledged to it only after
 * the node acknowledged the record (acks=all). A crash in between makes the broker send it
 * again: at-least-once, in order per MQTT topic (messages are handled one at a time, in the
 * order the broker sends them). With QoS 0 the remote broker does not resend anything.
 */
import type { MqttClient } from "mqtt";
import type { FieldReader } from "../connect-config.ts";
import type { SourceConnector, SourceContext, SourceRecord } from "../connector.ts";
import { Stopped } from "../retry.ts";
import { loadMqtt, mqttBridgeOptions, mqttClientOptions, type MqttBridgeOptions } from "../mqtt-options.ts";

export interface MqttSourceOptions extends MqttBridgeOptions {
  subscribe: string[];
  contentType: string | null;
}

export function mqttSourceOptions(f: FieldReader, name: string): MqttSourceOptions {
  return { ...mqttBridgeOptions(f, name), subscribe: f.strings("subscribe"), contentType: f.string("contentType", null) };
}

export class MqttBridgeSource implements SourceConnector {
  readonly #options: MqttSourceOptions;

  constructor(options: MqttSourceOptions) {
    this.#options = options;
  }

  async run(ctx: SourceContext): Promise<void> {
    const mqtt = await loadMqtt();
    const o = this.#options;
    let chain: Promise<void> = Promise.resolve();
    const client: MqttClient = mqtt.connect(o.broker, {
      ...mqttClientOptions(o),
      // Acknowledge to the remote broker only once the node has the record.
      customHandleAcks: (topic, payload, packet, ack) => {
        const record: SourceRecord = {
          key: topic,
          value: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
          ...(packet.properties?.contentType ?? o.contentType ? { contentType: (packet.properties?.contentType ?? o.contentType)! } : {}),
          headers: userProperties(packet.properties?.userProperties),
        };
        chain = chain.then(() =>
          ctx.send([record], undefined).then(
            () => ack(0),
            (err: unknown) => {
              if (!(err instanceof Stopped)) ctx.failed(`produce of a message from ${topic}`, err);
              // Not acknowledged: the remote session sends it again after the reconnect.
              client.end(true);
            },
          ),
        );
      },
    });
    client.on("error", (err) => ctx.failed(`MQTT connection to ${o.broker}`, err));
    client.on("connect", (connack) => {
      if (connack.sessionPresent) return; // the broker kept our subscriptions
      client.subscribe(o.subscribe, { qos: o.qos }, (err, granted) => {
        if (err) ctx.failed(`subscribe to ${o.subscribe.join(", ")}`, err);
        for (const g of granted ?? []) if (g.qos === 128) ctx.failed(`subscribe to ${g.topic}`, new Error("refused by the broker (reason 0x80)"));
      });
    });
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await chain;
    await client.endAsync();
  }
}

function userProperties(props: Record<string, string | string[]> | undefined): Record<string, string> | undefined {
  if (!props) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(props)) out[k] = Array.isArray(v) ? v.join(",") : v;
  return out;
}
