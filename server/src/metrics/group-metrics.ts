import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { isTributaryError } from "../errors.ts";
import { OTHER_TOPIC, type TopicLabels } from "./traffic-metrics.ts";

/** What the group metrics read at scrape time (the node's GroupCoordinator). */
export interface GroupSource {
  listGroups(): Promise<Array<{ group: string; generation: number; members: number }>>;
  describeGroup(group: string): Promise<{
    generation: number;
    members: unknown[];
    partitions: Array<{ topic: string; partition: number; committedOffset: number | null; endOffset: number; lag: number | null }>;
  }>;
}

/** What the MQTT gateway reports: its sessions and its `$share` groups on this node. */
export interface MqttSessionSource {
  sessions(): Iterable<{ connection: unknown }>;
  sharedGroups(): number;
}

/** Groups holding MQTT persistent sessions' positions (`mqtt.session.<clientId>`): summed, never labelled by client id. */
const MQTT_SESSION_GROUP_PREFIX = "mqtt.session.";

interface GroupSnapshot {
  groups: Array<{ group: string; generation: number; members: number; partitions: Array<{ topic: string; partition: number; committed: number; lag: number }> }>;
  /** Lag of MQTT persistent sessions, per topic label. */
  sessionLag: Map<string, number>;
}

/**
 * Consumer groups (SDK groups and MQTT `$share` groups alike) and MQTT sessions, computed
 * at scrape time from the coordinator: lag (end offset − committed offset, per partition
 * with a commit), committed offset, members, generation; rebalances and their duration
 * come from the coordinator's `group.rebalance` events. No per-message work.
 */
export class GroupMetrics {
  readonly #topics: TopicLabels;
  #source: GroupSource | null = null;
  #mqtt: MqttSessionSource | null = null;
  #snapshot: { at: number; value: Promise<GroupSnapshot> } | null = null;

  readonly lag: Gauge<"group" | "topic" | "partition">;
  readonly committedOffset: Gauge<"group" | "topic" | "partition">;
  readonly members: Gauge<"group">;
  readonly generation: Gauge<"group">;
  readonly rebalances: Counter<"group">;
  readonly rebalanceDuration: Histogram;
  readonly mqttSessions: Gauge<"state">;
  readonly mqttSharedGroups: Gauge;
  readonly mqttSessionLag: Gauge<"topic">;

  readonly #onCollectError: (err: unknown, what: string) => void;

  /** `onCollectError`: the groups could not be read for a scrape (storage down): the group series are left out of it. */
  constructor(registry: Registry, topics: TopicLabels, onCollectError: (err: unknown, what: string) => void) {
    this.#topics = topics;
    this.#onCollectError = onCollectError;
    const self = this;
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>, s: GroupSnapshot) => void) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          if (!self.#source) return;
          const snapshot = await self.#snap();
          this.reset();
          fill(this, snapshot);
        },
      });
    this.lag = gauge("tributary_consumer_group_lag", `Records a consumer group has not consumed yet: partition end offset − committed offset, per partition with a commit (topics past metrics.maxTopicLabels summed as ${OTHER_TOPIC}, partition ""). SDK groups and MQTT $share groups; MQTT sessions are in tributary_mqtt_session_lag.`, ["group", "topic", "partition"], (g, s) => {
      for (const grp of s.groups) {
        const other = new Map<string, number>();
        for (const p of grp.partitions) {
          const topic = this.#topics.label(p.topic);
          if (topic === OTHER_TOPIC) other.set(topic, (other.get(topic) ?? 0) + p.lag);
          else g.set({ group: grp.group, topic, partition: String(p.partition) }, p.lag);
        }
        for (const [topic, lag] of other) g.set({ group: grp.group, topic, partition: "" }, lag);
      }
    });
    this.committedOffset = gauge("tributary_consumer_group_committed_offset", "Committed offset (the next record to consume) of a consumer group, per partition (topics within metrics.maxTopicLabels).", ["group", "topic", "partition"], (g, s) => {
      for (const grp of s.groups) {
        for (const p of grp.partitions) {
          const topic = this.#topics.label(p.topic);
          if (topic !== OTHER_TOPIC) g.set({ group: grp.group, topic, partition: String(p.partition) }, p.committed);
        }
      }
    });
    this.members = gauge("tributary_consumer_group_members", "Members of a consumer group.", ["group"], (g, s) => {
      for (const grp of s.groups) g.set({ group: grp.group }, grp.members);
    });
    this.generation = gauge("tributary_consumer_group_generation", "Generation of a consumer group (incremented by every rebalance round).", ["group"], (g, s) => {
      for (const grp of s.groups) g.set({ group: grp.group }, grp.generation);
    });
    this.mqttSessionLag = gauge("tributary_mqtt_session_lag", "Records MQTT persistent sessions have not acknowledged yet, summed over sessions, per topic.", ["topic"], (g, s) => {
      for (const [topic, lag] of s.sessionLag) g.set({ topic }, lag);
    });
    this.rebalances = new Counter({
      name: "tributary_consumer_group_rebalances_total",
      help: "Completed rebalance rounds of a consumer group coordinated by this node.",
      labelNames: ["group"] as const,
      registers: [registry],
    });
    this.rebalanceDuration = new Histogram({
      name: "tributary_consumer_group_rebalance_duration_seconds",
      help: "Duration of rebalance rounds coordinated by this node (revocations confirmed, assignment sent).",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.mqttSessions = new Gauge({
      name: "tributary_mqtt_sessions",
      help: "MQTT sessions on this node, by state: connected, or disconnected (persistent, waiting for their client until they expire).",
      labelNames: ["state"] as const,
      registers: [registry],
      collect: () => {
        let connected = 0;
        let disconnected = 0;
        for (const s of this.#mqtt?.sessions() ?? []) {
          if (s.connection) connected++;
          else disconnected++;
        }
        this.mqttSessions.set({ state: "connected" }, connected);
        this.mqttSessions.set({ state: "disconnected" }, disconnected);
      },
    });
    this.mqttSharedGroups = new Gauge({
      name: "tributary_mqtt_shared_groups",
      help: "MQTT $share groups with members on this node (each is a consumer group: see tributary_consumer_group_*).",
      registers: [registry],
      collect: () => this.mqttSharedGroups.set(this.#mqtt?.sharedGroups() ?? 0),
    });
  }

  /** The coordinator to read groups from at scrape time. */
  setSource(source: GroupSource): void {
    this.#source = source;
  }

  setMqttSource(source: MqttSessionSource): void {
    this.#mqtt = source;
  }

  /** A `group.rebalance` event. */
  rebalanced(group: string, durationMs: number): void {
    this.rebalances.inc({ group });
    this.rebalanceDuration.observe(durationMs / 1000);
  }

  /** One snapshot per scrape, shared by the gauges above (reused for 500 ms). */
  #snap(): Promise<GroupSnapshot> {
    const now = Date.now();
    if (this.#snapshot && now - this.#snapshot.at < 500) return this.#snapshot.value;
    // A failed read leaves the group series out of this scrape (the rest of /metrics still answers).
    const value = this.#read().catch((err: unknown) => {
      this.#onCollectError(err, "consumer-groups");
      return { groups: [], sessionLag: new Map<string, number>() };
    });
    this.#snapshot = { at: now, value };
    return value;
  }

  async #read(): Promise<GroupSnapshot> {
    const source = this.#source!;
    const out: GroupSnapshot = { groups: [], sessionLag: new Map() };
    for (const listed of await source.listGroups()) {
      let d: Awaited<ReturnType<GroupSource["describeGroup"]>>;
      try {
        d = await source.describeGroup(listed.group);
      } catch (err) {
        if (isTributaryError(err, "UNKNOWN_GROUP")) continue; // deleted between list and describe
        throw err;
      }
      const partitions = d.partitions.flatMap((p) => (p.committedOffset === null || p.lag === null ? [] : [{ topic: p.topic, partition: p.partition, committed: p.committedOffset, lag: p.lag }]));
      if (listed.group.startsWith(MQTT_SESSION_GROUP_PREFIX)) {
        for (const p of partitions) {
          const topic = this.#topics.label(p.topic);
          out.sessionLag.set(topic, (out.sessionLag.get(topic) ?? 0) + p.lag);
        }
        continue;
      }
      out.groups.push({ group: listed.group, generation: d.generation, members: d.members.length, partitions });
    }
    return out;
  }
}
