import mqtt, { type IClientPublishOptions, type MqttClient } from "mqtt";

export interface FleetOptions {
  url: string;
  /** Number of simulated devices (one MQTT connection each). */
  count: number;
  /** Readings per second per device. */
  rate: number;
  qos: 0 | 1 | 2;
  /** Stop after this many ms (Infinity = until stop()). */
  durationMs: number;
  /** First topic level; readings go to `<prefix>/<device>/<metric>`. */
  prefix: string;
  protocolVersion: 4 | 5;
  username?: string;
  password?: string;
  /** Devices connecting at the same time while the fleet starts. */
  connectConcurrency: number;
}

export interface FleetStats {
  devices: number;
  connected: number;
  sent: number;
  /** QoS 0: written to the socket; QoS 1/2: acknowledged by the broker (PUBACK / PUBCOMP). */
  acked: number;
  errors: number;
  startedAt: number;
  elapsedMs: number;
  ackLatency: { p50: number; p99: number } | null;
}

const METRICS = ["temperature", "humidity", "battery"] as const;
/** MQTT 5 PUBLISH properties of a reading: JSON text (docs/mqtt.md, content types). */
const JSON_PROPERTIES = { contentType: "application/json", payloadFormatIndicator: true } as const;

/** A fleet of simulated MQTT sensor devices publishing JSON readings. */
export class Fleet {
  readonly options: FleetOptions;
  readonly #clients: MqttClient[] = [];
  #sent = 0;
  #acked = 0;
  #errors = 0;
  #startedAt = 0;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #tokens: number[] = [];
  #seq: number[] = [];
  readonly #latencies: number[] = [];
  #lastError = "";

  constructor(options: FleetOptions) {
    this.options = options;
  }

  get lastError(): string {
    return this.#lastError;
  }

  stats(): FleetStats {
    const lat = [...this.#latencies].sort((a, b) => a - b);
    const pct = (q: number) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!;
    return {
      devices: this.options.count,
      connected: this.#finalConnected ?? this.#clients.reduce((n, c) => n + (c?.connected ? 1 : 0), 0),
      sent: this.#sent,
      acked: this.#acked,
      errors: this.#errors,
      startedAt: this.#startedAt,
      elapsedMs: this.#startedAt ? Date.now() - this.#startedAt : 0,
      ackLatency: lat.length ? { p50: pct(0.5), p99: pct(0.99) } : null,
    };
  }

  /** Connects every device, then publishes until the duration elapses or stop() is called. */
  async run(): Promise<FleetStats> {
    this.#startedAt = Date.now();
    const { count, connectConcurrency } = this.options;
    let next = 0;
    const connectOne = async (): Promise<void> => {
      while (next < count && !this.#stopped) {
        const i = next++;
        this.#clients[i] = await this.#connect(i);
      }
    };
    this.#tokens = new Array(count).fill(0);
    this.#seq = new Array(count).fill(0);
    this.#timer = setInterval(() => this.#tick(), 50);
    await Promise.all(Array.from({ length: Math.min(connectConcurrency, count) }, connectOne));
    const remaining = this.options.durationMs - (Date.now() - this.#startedAt);
    if (!this.#stopped && Number.isFinite(remaining)) await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(0, remaining));
      this.#onStop = () => {
        clearTimeout(t);
        resolve();
      };
    });
    else if (!this.#stopped) await new Promise<void>((resolve) => (this.#onStop = resolve));
    await this.#shutdown();
    return this.stats();
  }

  #onStop: (() => void) | null = null;

  stop(): void {
    this.#stopped = true;
    this.#onStop?.();
  }

  #connect(i: number): Promise<MqttClient> {
    const id = deviceId(i);
    const client = mqtt.connect(this.options.url, {
      clientId: id,
      protocolVersion: this.options.protocolVersion,
      username: this.options.username,
      password: this.options.password,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      keepalive: 30,
    });
    client.on("error", (err) => {
      this.#errors++;
      this.#lastError = err.message;
    });
    return new Promise((resolve) => {
      const done = () => resolve(client);
      client.once("connect", done);
      client.once("error", done);
    });
  }

  #tick(): void {
    if (this.#stopped) return;
    const perTick = (this.options.rate * 50) / 1000;
    for (let i = 0; i < this.#clients.length; i++) {
      const client = this.#clients[i];
      if (!client || !client.connected) continue;
      this.#tokens[i]! += perTick;
      while (this.#tokens[i]! >= 1) {
        this.#tokens[i]! -= 1;
        this.#publish(client, i);
      }
    }
  }

  #publish(client: MqttClient, i: number): void {
    const seq = this.#seq[i]!++;
    const metric = METRICS[seq % METRICS.length]!;
    const device = deviceId(i);
    const value = reading(metric, i, seq);
    const payload = JSON.stringify({ device, metric, value, seq, ts: Date.now() });
    const t0 = performance.now();
    this.#sent++;
    // MQTT 5 says what the payload is (Content Type, UTF-8 indicator): every reader decodes it as JSON. MQTT 3.1.1 cannot.
    const options: IClientPublishOptions = this.options.protocolVersion === 5 ? { qos: this.options.qos, properties: JSON_PROPERTIES } : { qos: this.options.qos };
    client.publish(`${this.options.prefix}/${device}/${metric}`, payload, options, (err) => {
      if (err) {
        this.#errors++;
        this.#lastError = err.message;
        return;
      }
      this.#acked++;
      if (this.#latencies.length < 200_000) this.#latencies.push(performance.now() - t0);
    });
  }

  #finalConnected: number | null = null;

  async #shutdown(): Promise<void> {
    this.#finalConnected = this.#clients.reduce((n, c) => n + (c?.connected ? 1 : 0), 0);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#stopped = true;
    // Let in-flight QoS 1/2 publishes complete (bounded wait).
    const deadline = Date.now() + 3000;
    while (this.options.qos > 0 && this.#acked + this.#errors < this.#sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await Promise.all(this.#clients.filter(Boolean).map((c) => new Promise<void>((resolve) => c.end(false, {}, () => resolve()))));
  }
}

export function deviceId(i: number): string {
  return `dev-${String(i + 1).padStart(5, "0")}`;
}

function reading(metric: (typeof METRICS)[number], device: number, seq: number): number {
  const wave = Math.sin((seq + device * 7) / 20);
  switch (metric) {
    case "temperature":
      return Math.round((21 + 4 * wave + (device % 5)) * 10) / 10;
    case "humidity":
      return Math.round((45 + 15 * wave) * 10) / 10;
    case "battery":
      return Math.max(0, 100 - ((seq / 3) % 100));
  }
}
