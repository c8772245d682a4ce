/**
 * Runs one source connector: gives it a SourceContext whose `send` produces to the node over
 * HTTP with acks=all and the idempotent producer, then saves the source's position in the
 * offsets topic (offset-store.ts). Node outages are retried with backoff until the task
 * stops; the same batch is re-sent with the same (producerId, sequence), so the node writes
 * it once.
 *
 * Delivery: at-least-once. The position is saved after the records it covers were
 * acknowledged; a crash between the two sends those records again on the next start.
 * Within a run, retries are written once (the producer id is per run, the sequence per
 * batch). Across runs there is no stable batch to recognise: a batch read again after a
 * crash may hold more lines than the one sent before it (the file grew), so reusing its
 * sequence would make the node drop the new lines as a duplicate.
 */
import { randomBytes } from "node:crypto";
import { isTributaryError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { ConnectMetrics } from "./connect-metrics.ts";
import type { SourceConnector, SourceContext, SourceRecord } from "./connector.ts";
import { type NodeApi, type ProduceRecordJson } from "./node-api.ts";
import type { OffsetStore } from "./offset-store.ts";
import { abortableSleep, retryDelay, Stopped } from "./retry.ts";

export interface SourceTaskDeps {
  api: NodeApi;
  offsets: OffsetStore;
  metrics: ConnectMetrics;
  logger: Logger;
  onError(err: Error): void;
}

export class SourceTask {
  readonly name: string;
  readonly topic: string;
  readonly #source: SourceConnector;
  readonly #deps: SourceTaskDeps;
  readonly #abort = new AbortController();
  /** Producer id of this run for batches without a `sequence` of their own. */
  readonly #runProducerId: string;
  #runSequence = 0;
  #running: Promise<void> | undefined;

  constructor(name: string, topic: string, source: SourceConnector, deps: SourceTaskDeps) {
    this.name = name;
    this.topic = topic;
    this.#source = source;
    this.#deps = deps;
    this.#runProducerId = `connect.${name}.${randomBytes(6).toString("hex")}`;
  }

  /** Starts the source; `done` settles when it returns or fails. */
  start(onExit: (err: Error | null) => void): void {
    const ctx: SourceContext = {
      position: this.#deps.offsets.get(this.name),
      signal: this.#abort.signal,
      send: (records, position) => this.#send(records, position),
      failed: (what, err) => {
        this.#deps.metrics.failures.inc({ connector: this.name, kind: "source" });
        this.#deps.logger.warn("connect.source.failed", { connector: this.name, what, error: (err as Error)?.message ?? String(err) });
        this.#deps.onError(err as Error);
      },
    };
    this.#running = this.#source.run(ctx).then(
      () => onExit(null),
      (err: unknown) => onExit(err instanceof Stopped || this.#abort.signal.aborted ? null : (err as Error)),
    );
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  async #send(records: SourceRecord[], position: unknown): Promise<void> {
    this.#deps.metrics.recordsIn.inc({ connector: this.name }, records.length);
    const body: ProduceRecordJson[] = records.map(toProduceRecord);
    const idempotence = { producerId: this.#runProducerId, sequence: this.#runSequence++ };
    if (records.length > 0) {
      for (let attempt = 1; ; attempt++) {
        if (this.#abort.signal.aborted) throw new Stopped();
        const end = this.#deps.metrics.batchSeconds.startTimer({ connector: this.name });
        try {
          await this.#deps.api.produce(this.topic, body, idempotence);
          end();
          break;
        } catch (err) {
          this.#nodeFailure("produce", err, attempt);
          if (isTributaryError(err) && !err.retriable) throw err; // the records are refused for good: fail the connector
          await abortableSleep(retryDelay(attempt, 100, 5000), this.#abort.signal);
        }
      }
      this.#deps.metrics.recordsOut.inc({ connector: this.name }, records.length);
    }
    if (position === undefined) return; // the source keeps its position elsewhere (the MQTT bridge: the remote session)
    for (let attempt = 1; ; attempt++) {
      if (this.#abort.signal.aborted) throw new Stopped();
      try {
        await this.#deps.offsets.save(this.name, position);
        return;
      } catch (err) {
        this.#nodeFailure("save position", err, attempt);
        await abortableSleep(retryDelay(attempt, 100, 5000), this.#abort.signal);
      }
    }
  }

  #nodeFailure(what: string, err: unknown, attempt: number): void {
    this.#deps.metrics.failures.inc({ connector: this.name, kind: "node" });
    this.#deps.logger.warn("connect.source.node_failed", { connector: this.name, what, attempt, error: (err as Error).message });
    this.#deps.onError(err as Error);
  }
}

function toProduceRecord(r: SourceRecord): ProduceRecordJson {
  const out: ProduceRecordJson = { key: r.key, value: null };
  if (r.value === null) out.value = null;
  else if (typeof r.value === "string") out.value = r.value;
  else out.value = { base64: Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength).toString("base64") };
  if (r.value !== null && r.contentType) out.contentType = r.contentType;
  if (r.headers) out.headers = r.headers;
  if (r.timestamp !== undefined) out.timestamp = r.timestamp;
  return out;
}
