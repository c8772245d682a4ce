import { Counter, Histogram, type Registry } from "prom-client";
import { FastHistogram } from "./fast-histogram.ts";

/**
 * The `protocol` label of the traffic metrics: how records came in or go out. `mqtt` is
 * MQTT over TCP, TLS and WebSocket; `internal` is the node's own writes (MQTT sessions and
 * retained messages, wills) and reads with no client protocol.
 */
export const PROTOCOLS = ["http", "ws", "mqtt", "internal"] as const;

export type Protocol = (typeof PROTOCOLS)[number];

/** The `topic` label value of every topic past `maxTopicLabels`. */
export const OTHER_TOPIC = "_other";

/**
 * Bounded `topic` label values: the first `max` topics seen keep their name, every later
 * one is `_other` (MQTT auto-creates topics, so their number is unbounded). A topic keeps
 * its label value for the life of the node.
 */
export class TopicLabels {
  readonly max: number;
  readonly #admitted = new Set<string>();

  constructor(max: number) {
    this.max = max;
  }

  label(topic: string): string {
    if (this.#admitted.has(topic)) return topic;
    if (this.#admitted.size < this.max) {
      this.#admitted.add(topic);
      return topic;
    }
    return OTHER_TOPIC;
  }
}

/** Running totals of one topic, per protocol: plain numbers bumped on the hot path, read at scrape time. */
class TopicTally {
  readonly recordsIn = new Float64Array(PROTOCOLS.length);
  readonly bytesIn = new Float64Array(PROTOCOLS.length);
  readonly recordsOut = new Float64Array(PROTOCOLS.length);
  readonly bytesOut = new Float64Array(PROTOCOLS.length);
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Records a publish→deliver latency sample on one take in this many (per protocol). */
const LATENCY_SAMPLE_EVERY = 8;

/**
 * Records and bytes in and out, by protocol and (bounded) topic; publish→deliver latency;
 * backpressure pauses. The produce and delivery paths add to plain numbers (one Map lookup
 * per call, cached for a repeated topic); the counters are set from them at scrape time.
 * With `enabled: false` the hot-path calls return at once.
 */
export class TrafficMetrics {
  readonly enabled: boolean;
  readonly topics: TopicLabels;
  readonly #tallies = new Map<string, TopicTally>();
  #lastTopic = "";
  #lastTally: TopicTally | null = null;
  readonly #takes = new Uint32Array(PROTOCOLS.length);
  readonly #latency: Histogram<"protocol">;
  readonly #latencyChildren: Array<{ observe(v: number): void }>;

  readonly recordsIn: Counter<"protocol" | "topic">;
  readonly bytesIn: Counter<"protocol" | "topic">;
  readonly recordsOut: Counter<"protocol" | "topic">;
  readonly bytesOut: Counter<"protocol" | "topic">;
  readonly backpressurePauses: Counter<"gateway">;

  constructor(registry: Registry, options: { enabled: boolean; maxTopicLabels: number }) {
    this.enabled = options.enabled;
    this.topics = new TopicLabels(options.maxTopicLabels);
    const fold = () => this.#fold();
    const counter = (name: string, help: string) =>
      new Counter({ name, help: `${help} By protocol (${PROTOCOLS.join(", ")}) and topic (the first metrics.maxTopicLabels topics; the rest as ${OTHER_TOPIC}).`, labelNames: ["protocol", "topic"] as const, registers: [registry], collect: fold });
    this.recordsIn = counter("tributary_records_in_total", "Records appended to the log (produce requests that succeeded).");
    this.bytesIn = counter("tributary_bytes_in_total", "Key + value bytes of the records appended to the log.");
    this.recordsOut = counter("tributary_records_out_total", "Records handed to subscribers' deliveries (sent, or passed over by an MQTT subscription's filter), counted per subscriber.");
    this.bytesOut = counter("tributary_bytes_out_total", "Key + value bytes of tributary_records_out_total.");
    this.#latency = new Histogram({
      name: "tributary_publish_deliver_latency_seconds",
      help: `Time from a record's timestamp (set when it is published) to its hand-over to a subscriber's connection, by protocol; one delivery in ${LATENCY_SAMPLE_EVERY} is sampled.`,
      labelNames: ["protocol"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
      collect: () => latencyFast.fold(),
    });
    // Exported from zero (rate() over the first observations then sees them as an increase).
    for (const protocol of PROTOCOLS) this.#latency.zero({ protocol });
    const latencyFast = new FastHistogram(this.#latency, LATENCY_BUCKETS);
    this.#latencyChildren = PROTOCOLS.map((protocol) => latencyFast.labels({ protocol }));
    this.backpressurePauses = new Counter({
      name: "tributary_backpressure_pauses_total",
      help: "Times a connection's delivery paused because its send buffer passed limits.maxBufferedBytes (a connection that stays paused for limits.slowConsumerGraceMs is dropped: tributary_slow_consumer_disconnects_total), by gateway.",
      labelNames: ["gateway"] as const,
      registers: [registry],
    });
    for (const gateway of ["ws", "mqtt", "mqtt-ws"]) this.backpressurePauses.labels({ gateway }).inc(0);
  }

  #tally(topic: string): TopicTally {
    if (topic === this.#lastTopic && this.#lastTally) return this.#lastTally;
    let tally = this.#tallies.get(topic);
    if (!tally) this.#tallies.set(topic, (tally = new TopicTally()));
    this.#lastTopic = topic;
    this.#lastTally = tally;
    return tally;
  }

  /** `records` records of `bytes` key + value bytes were appended to `topic` for a `protocol` client. */
  produced(protocol: Protocol, topic: string, records: number, bytes: number): void {
    if (!this.enabled) return;
    const tally = this.#tally(topic);
    const i = PROTOCOLS.indexOf(protocol);
    tally.recordsIn[i]! += records;
    tally.bytesIn[i]! += bytes;
  }

  /**
   * A subscriber's delivery took `count` records (`bytes` key + value bytes) starting with
   * `first`: counts them and, on one call in LATENCY_SAMPLE_EVERY, their publish→deliver
   * latency (first record's timestamp).
   */
  delivered(protocol: Protocol, topic: string, count: number, bytes: number, first: { timestamp: number }): void {
    if (!this.enabled || count <= 0) return;
    const i = PROTOCOLS.indexOf(protocol);
    const tally = this.#tally(topic);
    tally.recordsOut[i]! += count;
    tally.bytesOut[i]! += bytes;
    if (++this.#takes[i]! % LATENCY_SAMPLE_EVERY === 1) {
      const age = (Date.now() - first.timestamp) / 1000;
      if (age >= 0) this.#latencyChildren[i]!.observe(age);
    }
  }

  /** Sets the four counters from the tallies (topics past the label limit summed as `_other`). */
  #fold(): void {
    const sums = new Map<string, TopicTally>();
    for (const [topic, tally] of this.#tallies) {
      const label = this.topics.label(topic);
      let sum = sums.get(label);
      if (!sum) sums.set(label, (sum = new TopicTally()));
      for (let i = 0; i < PROTOCOLS.length; i++) {
        sum.recordsIn[i]! += tally.recordsIn[i]!;
        sum.bytesIn[i]! += tally.bytesIn[i]!;
        sum.recordsOut[i]! += tally.recordsOut[i]!;
        sum.bytesOut[i]! += tally.bytesOut[i]!;
      }
    }
    const set = (counter: Counter<"protocol" | "topic">, pick: (t: TopicTally) => Float64Array) => {
      counter.reset();
      for (const [topic, sum] of sums) {
        const values = pick(sum);
        for (let i = 0; i < PROTOCOLS.length; i++) if (values[i]! > 0) counter.inc({ protocol: PROTOCOLS[i]!, topic }, values[i]!);
      }
    };
    set(this.recordsIn, (t) => t.recordsIn);
    set(this.bytesIn, (t) => t.bytesIn);
    set(this.recordsOut, (t) => t.recordsOut);
    set(this.bytesOut, (t) => t.bytesOut);
  }
}
