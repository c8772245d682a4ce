/** Connection settings shared by the MQTT bridge source and sink. */
import type { IClientOptions } from "mqtt";
import type { FieldReader } from "./connect-config.ts";

export interface MqttBridgeOptions {
  broker: string;
  clientId: string;
  username: string | null;
  password: string | null;
  qos: 0 | 1 | 2;
  protocolVersion: 4 | 5;
}

export function mqttBridgeOptions(f: FieldReader, name: string): MqttBridgeOptions {
  const broker = f.string("broker");
  if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(broker)) f.fail("broker", `expected an MQTT URL like mqtt://host:1883, got "${broker}"`);
  const passwordEnv = f.string("passwordEnv", null);
  let password = f.string("password", null);
  if (passwordEnv !== null) {
    password = process.env[passwordEnv] ?? null;
    if (password === null) f.fail("passwordEnv", `the environment variable ${passwordEnv} is not set`);
  }
  return {
    broker,
    clientId: f.string("clientId", `tributary-connect-${name}`)!,
    username: f.string("username", null),
    password,
    qos: f.int("qos", 1, 0, 2) as 0 | 1 | 2,
    protocolVersion: f.int("protocolVersion", 5, 4, 5) as 4 | 5,
  };
}

/** MQTT.js options for a persistent session (clean: false) that reconnects by itself. */
export function mqttClientOptions(o: MqttBridgeOptions): IClientOptions {
  return {
    clientId: o.clientId,
    clean: false,
    protocolVersion: o.protocolVersion,
    ...(o.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0xffffffff } } : {}),
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    ...(o.username !== null ? { username: o.username } : {}),
    ...(o.password !== null ? { password: o.password } : {}),
  };
}

/** MQTT.js, loaded on use (only processes running an MQTT bridge load it). */
export async function loadMqtt(): Promise<typeof import("mqtt")> {
  const name = "mqtt";
  const mod = (await import(name)) as typeof import("mqtt") & { default?: typeof import("mqtt") };
  return mod.default ?? mod;
}
