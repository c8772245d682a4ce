/**
 * Source positions in a compacted topic (default `connect-offsets`, one partition), keyed
 * by connector name, the value a JSON document `{ "position": … }`. Written with acks=all
 * after the records it covers were acknowledged; read back whole at start (the last record
 * per key wins; compaction keeps the topic at about one record per connector).
 *
 * Why not `__connect.offsets`: `__` topics are reserved for the node (broker/internal-topics.ts):
 * no client writes them, and on a node without auth nobody reads them. The connect process
 * is a client of the node, like Kafka Connect is of Kafka (whose `connect-offsets` is an
 * ordinary compacted topic), so its topic is an ordinary one, protected by the node's ACLs
 * like any other (docs/connect.md).
 */
import { TributaryError } from "../errors.ts";
import { type NodeApi, jsonBytes } from "./node-api.ts";

export class OffsetStore {
  readonly #api: NodeApi;
  readonly topic: string;
  #positions = new Map<string, unknown>();

  constructor(api: NodeApi, topic: string) {
    this.#api = api;
    this.topic = topic;
  }

  /** Creates the topic (compacted, one partition, no retention) unless it exists, then reads every position. */
  async load(): Promise<void> {
    await this.#api.ensureTopic({ name: this.topic, partitions: 1, cleanupPolicy: "compact", retentionMs: null, retentionBytes: null });
    const positions = new Map<string, unknown>();
    let offset = (await this.#api.describeTopic(this.topic)).partitionInfo[0]?.earliestOffset ?? 0;
    for (;;) {
      const page = await this.#api.read(this.topic, 0, offset, 1000);
      for (const r of page.records) {
        const key = r.key === null ? null : Buffer.from(jsonBytes(r.key)!).toString("utf8");
        if (key === null) continue;
        const value = jsonBytes(r.value);
        if (value === null) {
          positions.delete(key);
          continue;
        }
        try {
          positions.set(key, (JSON.parse(Buffer.from(value).toString("utf8")) as { position: unknown }).position);
        } catch (cause) {
          throw new TributaryError("CORRUPT_RECORD", `${this.topic}@${r.offset}: the position of connector "${key}" is not JSON; delete the topic's record or fix it`, { offset: r.offset }, { cause });
        }
      }
      if (page.records.length === 0 || page.nextOffset >= page.endOffset) break;
      offset = page.nextOffset;
    }
    this.#positions = positions;
  }

  /** The last saved position of `connector`, or null. */
  get(connector: string): unknown {
    return this.#positions.get(connector) ?? null;
  }

  /** Saves `position` durably (acks=all). */
  async save(connector: string, position: unknown): Promise<void> {
    await this.#api.produce(this.topic, [{ key: connector, value: JSON.stringify({ position, savedAt: Date.now() }), contentType: "application/json", partition: 0 }]);
    this.#positions.set(connector, position);
  }
}
