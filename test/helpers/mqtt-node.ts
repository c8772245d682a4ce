/**
 * A real Tributary node (startNode, file engine, MQTT gateway on a free port) in a temp
 * dir, for the MQTT tests. `restart()` closes it and opens a new node on the same data
 * dir and the same ports (a gateway + engine restart).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { DEFAULT_CONFIG, type TributaryConfig } from "../../server/src/config/config.ts";
import { createLogger } from "../../server/src/logger.ts";
import { startNode, type TributaryNode } from "../../server/src/node.ts";

export interface MqttTestNode {
  readonly node: TributaryNode;
  /** mqtt://127.0.0.1:<port> */
  readonly tcpUrl: string;
  /** ws://127.0.0.1:<port>/mqtt */
  readonly wsUrl: string;
  /** ws://127.0.0.1:<httpPort> — the SDK base URL. */
  readonly sdkUrl: string;
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly dataDir: string;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startMqttTestNode(
  mqttOverrides: Partial<TributaryConfig["mqtt"]> = {},
  topics: Partial<TributaryConfig["topics"]> = {},
  limits: Partial<TributaryConfig["limits"]> = {},
): Promise<MqttTestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-mqtt-"));
  const config: TributaryConfig = {
    ...DEFAULT_CONFIG,
    dataDir,
    host: "127.0.0.1",
    port: 0,
    file: { ...DEFAULT_CONFIG.file, fsync: "never" },
    topics: { ...DEFAULT_CONFIG.topics, ...topics },
    limits: { ...DEFAULT_CONFIG.limits, ...limits },
    mqtt: { ...DEFAULT_CONFIG.mqtt, enabled: true, port: 0, ...mqttOverrides },
    log: { level: "error" },
  };
  const logger = createLogger((process.env.MQTT_TEST_LOG as "debug" | undefined) ?? "error");
  let node: TributaryNode | undefined = await startNode(config, { logger });
  const pinned: TributaryConfig = { ...config, port: node.httpPort, mqtt: { ...config.mqtt, port: node.mqttPort } };
  const httpPort = node.httpPort;
  const mqttPort = node.mqttPort;
  return {
    get node() {
      if (!node) throw new Error("node is stopped");
      return node;
    },
    tcpUrl: `mqtt://127.0.0.1:${mqttPort}`,
    wsUrl: `ws://127.0.0.1:${httpPort}/mqtt`,
    sdkUrl: `ws://127.0.0.1:${httpPort}`,
    mqttPort,
    httpPort,
    dataDir,
    async restart() {
      await node?.close();
      node = undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          node = await startNode(pinned, { logger });
          return;
        } catch (err) {
          if (attempt > 100) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
    async close() {
      await node?.close();
      node = undefined;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Connects an MQTT.js client and waits for CONNACK. `before` runs before any packet is
 * read (attach `collect` there when the session may deliver right after CONNACK).
 */
export async function connectClient(url: string, options: IClientOptions = {}, before?: (client: MqttClient) => void): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  before?.(client);
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
    client.once("close", () => reject(new Error("closed before CONNACK")));
  });
  return client;
}

export interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  properties?: Record<string, unknown>;
}

/** Collects messages from a client; `waitFor(n)` resolves once n arrived. */
export function collect(client: MqttClient): { messages: Received[]; waitFor(n: number, timeoutMs?: number): Promise<Received[]> } {
  const messages: Received[] = [];
  const waiters: Array<() => void> = [];
  client.on("message", (topic, payload, packet) => {
    messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, properties: packet.properties as Record<string, unknown> | undefined });
    for (const w of waiters.splice(0)) w();
  });
  return {
    messages,
    async waitFor(n, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${n} messages, got ${messages.length}: ${JSON.stringify(messages.map((m) => m.topic + "=" + m.payload))}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return messages;
    },
  };
}

export function endClient(client: MqttClient, force = false): Promise<void> {
  return new Promise((resolve) => client.end(force, {}, () => resolve()));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
