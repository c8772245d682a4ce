/**
 * The scripted workload behind the monitoring test and the README's dashboard pictures
 * (scripts/render-dashboards.ts): on a file-engine node, SDK publishes over WebSocket,
 * MQTT publishes, an acks=all HTTP batch, an SDK subscriber, an MQTT persistent session and
 * an MQTT `$share` group reading everything, and a consumer group ("billing") that falls
 * behind: it processes `processed` records, commits, and stalls. On the Redis nodes: SDK
 * publishes on one node, a subscriber and a consumer group on the other.
 */
import mqtt, { type MqttClient } from "mqtt";
import { connect, type TributaryClient } from "@tributary/client";
import { waitFor } from "./wait.ts";

export const WORKLOAD_TOPIC = "orders";
export const REDIS_TOPIC = "telemetry";
export const LAGGING_GROUP = "billing";
export const SHARE_GROUP = "workers";

export interface WorkloadPlan {
  /** Records per round: SDK publishes (acks 1), MQTT QoS 1 publishes, records of one HTTP acks=all request. */
  ws: number;
  mqtt: number;
  http: number;
  /** Rounds, and the pause between two (a pacing for pictures; 0 in tests). */
  rounds: number;
  pauseMs: number;
  /** Records the lagging group processes before it stalls and commits. */
  processed: number;
  /** Records per round the Redis nodes get (0 = no Redis part). */
  redis: number;
}

export interface Workload {
  /** What was sent to WORKLOAD_TOPIC on the file node, by protocol. */
  sent: { ws: number; mqtt: number; http: number };
  /** Records the lagging group processed (and committed). */
  processed: number;
  close(): Promise<void>;
}

export async function runWorkload(fileNode: { httpPort: number; mqttPort: number }, redisNodes: Array<{ httpPort: number }>, plan: WorkloadPlan): Promise<Workload> {
  const clients: TributaryClient[] = [];
  const mqttClients: MqttClient[] = [];
  const sdk = (port: number) => {
    const c = connect(`ws://127.0.0.1:${port}`);
    clients.push(c);
    return c;
  };
  const producer = sdk(fileNode.httpPort);
  const reader = sdk(fileNode.httpPort);
  let read = 0;
  reader.subscribe(WORKLOAD_TOPIC, () => void read++, { from: "earliest" });

  // MQTT: a persistent session and a $share member read the topic; a device publishes.
  const base = `mqtt://127.0.0.1:${fileNode.mqttPort}`;
  const session = await mqtt.connectAsync(base, { clientId: "monitoring-session", clean: false });
  mqttClients.push(session);
  await session.subscribeAsync(`${WORKLOAD_TOPIC}/#`, { qos: 1 });
  const share = await mqtt.connectAsync(base, { clientId: "monitoring-share", protocolVersion: 5 });
  mqttClients.push(share);
  let shared = 0;
  share.on("message", () => void shared++);
  await share.subscribeAsync(`$share/${SHARE_GROUP}/${WORKLOAD_TOPIC}/#`, { qos: 1 });
  const device = await mqtt.connectAsync(base, { clientId: "monitoring-device" });
  mqttClients.push(device);

  // Redis nodes: publish on the first, read (plainly and as a group) on the last.
  let redisRead = 0;
  const redisProducer = redisNodes.length > 0 ? sdk(redisNodes[0]!.httpPort) : null;
  if (redisNodes.length > 0) {
    const redisReader = sdk(redisNodes[redisNodes.length - 1]!.httpPort);
    redisReader.subscribe(REDIS_TOPIC, () => void redisRead++, { from: "earliest" });
    redisReader.subscribe(REDIS_TOPIC, () => undefined, { group: "telemetry-archive", reset: "earliest" });
  }

  const sent = { ws: 0, mqtt: 0, http: 0 };
  let redisSent = 0;
  for (let round = 0; round < plan.rounds; round++) {
    for (let i = 0; i < plan.ws; i++) await producer.publish(WORKLOAD_TOPIC, { order: sent.ws++, round }, { key: `customer-${i % 7}` });
    for (let i = 0; i < plan.mqtt; i++) await device.publishAsync(`${WORKLOAD_TOPIC}/device-${i % 5}/temp`, String(20 + (i % 10)), { qos: 1 }).then(() => sent.mqtt++);
    if (plan.http > 0) {
      const res = await fetch(`http://127.0.0.1:${fileNode.httpPort}/topics/${WORKLOAD_TOPIC}/records`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ acks: "all", records: Array.from({ length: plan.http }, (_, i) => ({ key: `invoice-${i}`, value: { invoice: i, round } })) }),
      });
      if (!res.ok) throw new Error(`HTTP produce failed: ${res.status} ${await res.text()}`);
      sent.http += plan.http;
    }
    for (let i = 0; i < plan.redis; i++) await redisProducer!.publish(REDIS_TOPIC, { reading: redisSent++ });
    if (plan.pauseMs > 0 && round < plan.rounds - 1) await new Promise((r) => setTimeout(r, plan.pauseMs)); // pacing of the picture run, not a synchronisation
  }
  const total = sent.ws + sent.mqtt + sent.http;
  await waitFor(() => read === total && shared === total && redisRead === redisSent, { timeoutMs: 15_000, what: `the subscribers to read everything (${read}/${total}, share ${shared}/${total}, redis ${redisRead}/${redisSent})` });

  // The lagging group: processes `processed` records, stalls on the next, commits what it processed.
  const lagging = sdk(fileNode.httpPort);
  let handled = 0;
  let release: () => void = () => undefined;
  const stalled = new Promise<void>((resolve) => (release = resolve));
  const sub = lagging.subscribe(
    WORKLOAD_TOPIC,
    async () => {
      handled++;
      if (handled > plan.processed) await stalled;
    },
    { group: LAGGING_GROUP, autoCommit: false, reset: "earliest" },
  );
  await waitFor(() => handled > plan.processed, { timeoutMs: 10_000, what: `group ${LAGGING_GROUP} to reach record ${plan.processed + 1}` });
  await sub.commit();

  return {
    sent,
    processed: plan.processed,
    async close() {
      release();
      await Promise.all(mqttClients.map((c) => c.endAsync()));
      for (const c of clients) c.close();
    },
  };
}
