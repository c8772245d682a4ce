/**
 * A real Tributary node (startNode, file engine, MQTT gateway on a free port) in a temp
 * dir, for the MQTT tests. `restart()` closes it and opens a new node on the same data
 * dir and the same ports (a gateway + engine restart).
 */
import { testNodeConfig } from "./node-config.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { DEFAULT_CONFIG, type TributaryConfig } from "../../server/src/config/config.ts";
import { logTopicFor } from "../../server/src/gateway/mqtt/topic-mapping.ts";
import { createLogger } from "../../server/src/logger.ts";
import { startNode, type TributaryNode } from "../../server/src/node.ts";
import { retryUntilOk, waitFor } from "./wait.ts";

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

/** `config.auth` fields for startMqttTestNode (nothing = open mode, as every MQTT test before auth). */
export type MqttTestAuth = Partial<Omit<TributaryConfig["auth"], "jwt">> & { jwt?: Partial<TributaryConfig["auth"]["jwt"]> };

export async function startMqttTestNode(
  mqttOverrides: Partial<TributaryConfig["mqtt"]> = {},
  topics: Partial<TributaryConfig["topics"]> = {},
  limits: Partial<TributaryConfig["limits"]> = {},
  auth: MqttTestAuth = {},
): Promise<MqttTestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), "tributary-mqtt-"));
  const config: TributaryConfig = {
    ...testNodeConfig(dataDir, { topics, limits, mqtt: { enabled: true, ...mqttOverrides } }),
    auth: { ...DEFAULT_CONFIG.auth, ...auth, jwt: { ...DEFAULT_CONFIG.auth.jwt, ...auth.jwt } },
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
      // the same ports again: retried while the closed listeners still hold them
      node = await retryUntilOk(() => startNode(pinned, { logger }), { timeoutMs: 5000, what: "the node to listen on its old ports again" });
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

/** Payload prefix of the markers `flushLog` appends; `collect` keeps them out of `messages`. */
const MARKER = "__marker__:";
const enc = new TextEncoder();
let markerSeq = 0;

export interface Collector {
  readonly client: MqttClient;
  /** Messages received, in arrival order (markers left out). */
  readonly messages: Received[];
  /** Markers (see `flushLog`) received. */
  readonly markers: Set<string>;
  /** Resolves once n messages arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  /** Resolves once `check()` holds, re-checked on every arrival; rejects at the deadline naming `what`. */
  until(check: () => boolean, timeoutMs: number, what: string): Promise<void>;
}

/** Collects messages from a client; `waitFor(n)` resolves once n arrived. */
export function collect(client: MqttClient): Collector {
  const messages: Received[] = [];
  const markers = new Set<string>();
  const waiters: Array<() => void> = [];
  client.on("message", (topic, payload, packet) => {
    const text = payload.toString();
    if (text.startsWith(MARKER)) markers.add(text);
    else messages.push({ topic, payload: text, qos: packet.qos, retain: packet.retain, properties: packet.properties as Record<string, unknown> | undefined });
    for (const w of waiters.splice(0)) w();
  });
  const until = async (check: () => boolean, timeoutMs: number, what: string): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(messages.map((m) => m.topic + "=" + m.payload))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
  return {
    client,
    messages,
    markers,
    until,
    async waitFor(n, timeoutMs = 5000) {
      await until(() => messages.length >= n, timeoutMs, `${n} messages (have ${messages.length})`);
      return messages;
    },
  };
}

/**
 * The positive marker behind every "nothing more arrives" assertion: appends one marker
 * record to each partition of the log topic of `markerTopic`, keyed `markerTopic` (an MQTT
 * topic the collectors' subscriptions match), and waits until the collectors received them
 * (each marker at every collector; `any`: each marker at one of them, as in a shared
 * subscription). A session reads each partition in log order, so once its markers are in,
 * it has been offered every record those partitions held before: whatever it was going to
 * get from them has arrived. Markers never show up in `Collector.messages`.
 */
export async function flushLog(node: MqttTestNode, markerTopic: string, collectors: Collector[], options: { any?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const logTopic = logTopicFor(markerTopic);
  if (logTopic === null) throw new Error(`no log topic for ${markerTopic}`);
  const broker = node.node.broker;
  const partitions = await broker.partitions(logTopic, false);
  const ids = Array.from({ length: partitions }, () => `${MARKER}${++markerSeq}`);
  await broker.produce(
    logTopic,
    ids.map((id, partition) => ({ key: enc.encode(markerTopic), value: enc.encode(id), partition })),
  );
  const timeoutMs = options.timeoutMs ?? 5000;
  const what = `markers on ${markerTopic} in all ${partitions} partitions`;
  if (options.any) await waitFor(() => ids.every((id) => collectors.some((c) => c.markers.has(id))), { timeoutMs, what });
  else await Promise.all(collectors.map((c) => c.until(() => ids.every((id) => c.markers.has(id)), timeoutMs, what)));
}

let barrierSeq = 0;

/**
 * A round trip on the client's connection (UNSUBSCRIBE of a filter it never had →
 * UNSUBACK). The gateway handles a connection's packets one after the other and answers in
 * order, so once the UNSUBACK is back, everything the gateway did for the packets sent
 * before (and sent to this client before) has happened and arrived.
 */
export async function roundTrip(client: MqttClient): Promise<void> {
  await client.unsubscribeAsync(`__barrier__/${++barrierSeq}`);
}

/** Open MQTT connections (TCP and WebSocket) as the gateway counts them (`tributary_connections`). */
export async function mqttConnections(node: MqttTestNode): Promise<number> {
  const gauge = await node.node.broker.metrics.connections.get();
  return gauge.values.filter((v) => v.labels.gateway === "mqtt" || v.labels.gateway === "mqtt-ws").reduce((n, v) => n + v.value, 0);
}

/**
 * Runs `cut` (which ends `count` connections from the client side, e.g. a socket destroy)
 * and waits until the gateway has handled those closes: sessions detached, wills published
 * or scheduled.
 */
export async function closeAndWait(node: MqttTestNode, cut: () => void | Promise<void>, count = 1): Promise<void> {
  const before = await mqttConnections(node);
  await cut();
  await waitFor(async () => (await mqttConnections(node)) <= before - count, { timeoutMs: 5000, what: `the gateway to see ${count} connection(s) close` });
}

export function endClient(client: MqttClient, force = false): Promise<void> {
  return new Promise((resolve) => client.end(force, {}, () => resolve()));
}
